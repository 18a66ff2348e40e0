// The C++ wrapper (include/peepool.hpp) against one backend:
//
//   test_cpp <url> | --url-env NAME <default-url>
//
// Scoped return, release/close, exceptions (bad URL, database error,
// exhausted pool, bad getters), moves, the transaction guard, threads,
// result getters and parameters, maintenance calls, the logger and the
// per-thread connection. Prints "N passed, N failed"; exits 1 on failure.
#include <peepool.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<int> g_passed{0};
std::atomic<int> g_failed{0};
std::mutex g_out;
std::string g_url;
enum class kind { sqlite, postgres, mysql } g_kind = kind::sqlite;

void check_at(bool ok, const char *expr, const char *file, int line) {
    if (ok) {
        ++g_passed;
        return;
    }
    ++g_failed;
    std::lock_guard<std::mutex> lock(g_out);
    std::cerr << "  FAIL " << file << ":" << line << ": " << expr << "\n";
}
#define CHECK(e) check_at(static_cast<bool>(e), #e, __FILE__, __LINE__)

// Runs `fn` and checks that it throws peepool::error with `status`;
// returns the error for further checks.
template <class F>
std::optional<peepool::error> expect_error(pool_status_t status, F fn, const char *what, int line) {
    try {
        fn();
    } catch (const peepool::error &e) {
        bool ok = e.status() == status && std::strlen(e.what()) > 0;
        check_at(ok, what, __FILE__, line);
        if (!ok) {
            std::lock_guard<std::mutex> lock(g_out);
            std::cerr << "    got status " << e.status() << ": " << e.what() << "\n";
        }
        return e;
    } catch (const std::exception &e) {
        check_at(false, what, __FILE__, line);
        std::lock_guard<std::mutex> lock(g_out);
        std::cerr << "    got another exception: " << e.what() << "\n";
        return std::nullopt;
    }
    check_at(false, what, __FILE__, line);
    std::lock_guard<std::mutex> lock(g_out);
    std::cerr << "    no exception\n";
    return std::nullopt;
}
#define EXPECT_ERROR(status, body) expect_error(status, [&] { body; }, #status ": " #body, __LINE__)

std::string url_with(const std::string &options) {
    if (options.empty()) return g_url;
    return g_url + (g_url.find('?') == std::string::npos ? "?" : "&") + options;
}

// The n-th (1-based) placeholder in this backend's syntax.
std::string ph(int n) { return g_kind == kind::postgres ? "$" + std::to_string(n) : "?"; }

std::string table(const char *suffix) {
    return "pp_cpp_" + std::to_string(static_cast<long>(getpid())) + "_" + suffix;
}

const char *blob_type() { return g_kind == kind::postgres ? "BYTEA" : "BLOB"; }

std::int64_t count_rows(peepool::connection &c, const std::string &t) {
    return c.query("SELECT count(*) FROM " + t).get<std::int64_t>(0, 0);
}

void scoped_return() {
    peepool::pool pool(url_with("max_connections=2"));
    {
        peepool::connection c = pool.connect();
        CHECK(c.valid());
        CHECK(pool.stats().in_use == 1);
        c.execute("SELECT 1");
    }
    pool_stats_t s = pool.stats();
    CHECK(s.in_use == 0);
    CHECK(s.idle == 1);
    {
        peepool::connection a = pool.connect();
        peepool::connection b = pool.connect();
        CHECK(pool.stats().in_use == 2);
        CHECK(pool.stats().opened_total == 2);
    }
    CHECK(pool.stats().in_use == 0);
    // A connection that leaves its scope by an exception goes back too.
    try {
        peepool::connection c = pool.connect();
        c.execute("SELECT no_such_column_at_all FROM no_such_table_at_all");
    } catch (const peepool::error &) {
    }
    CHECK(pool.stats().in_use == 0);
}

void release_and_close() {
    peepool::pool pool(url_with("max_connections=2"));
    peepool::connection c = pool.connect();
    c.release();
    CHECK(!c.valid());
    CHECK(pool.stats().in_use == 0);
    EXPECT_ERROR(POOL_ERR_INVALID_HANDLE, c.execute("SELECT 1"));
    EXPECT_ERROR(POOL_ERR_INVALID_HANDLE, c.release());

    peepool::connection d = pool.connect();
    d.close();
    CHECK(!d);
    pool_stats_t s = pool.stats();
    CHECK(s.in_use == 0);
    CHECK(s.closed_manual == 1);
    CHECK(s.open == s.idle);
}

void exceptions() {
    {
        auto e = EXPECT_ERROR(POOL_ERR_CONFIG, peepool::pool p("nosuchscheme://x"));
        CHECK(e && e->sqlstate().empty());
    }
    {
        auto e = EXPECT_ERROR(POOL_ERR_CONFIG, peepool::pool p(url_with("bogus_option=1")));
        CHECK(e && std::string(e->what()).find("bogus_option") != std::string::npos);
    }
    EXPECT_ERROR(POOL_ERR_CONFIG, peepool::pool p(url_with("max_connections=-1")));

    peepool::pool pool(url_with("max_connections=1"));
    {
        peepool::connection c = pool.connect();
        auto e = EXPECT_ERROR(POOL_ERR_DATABASE, c.execute("SELECT * FROM pp_cpp_no_such_table"));
        CHECK(e && !e->sqlstate().empty());
        e = EXPECT_ERROR(POOL_ERR_DATABASE, c.query("THIS IS NOT SQL"));
        CHECK(e && !e->sqlstate().empty());
        // The connection still works after a database error.
        CHECK(c.query("SELECT 1").get<std::int64_t>(0, 0) == 1);

        // max_connections=1, no timeout: a second checkout fails at once.
        auto x = EXPECT_ERROR(POOL_ERR_EXHAUSTED, pool.connect());
        CHECK(x && std::string(x->what()).find("in_use=1") != std::string::npos);
        CHECK(pool.stats().timeouts == 1);
    }
    // Free again once the first one is back.
    peepool::connection c = pool.connect();
    CHECK(c.valid());
    // Messages come from the failing call, not a later one on this thread.
    try {
        c.execute("SELECT * FROM pp_cpp_other_missing_table");
        CHECK(false);
    } catch (const peepool::error &e) {
        CHECK(std::string(e.what()).find("pp_cpp_other_missing_table") != std::string::npos);
    }
    // An error is a std::runtime_error too.
    try {
        c.execute("SELECT * FROM pp_cpp_no_such_table");
        CHECK(false);
    } catch (const std::runtime_error &e) {
        CHECK(std::strlen(e.what()) > 0);
    }
    // Unsigned above INT64_MAX cannot be a parameter.
    EXPECT_ERROR(POOL_ERR_INVALID_ARGUMENT,
                 c.execute("SELECT " + ph(1), std::numeric_limits<std::uint64_t>::max()));
}

void moves() {
    peepool::pool pool(url_with("max_connections=3"));
    peepool::connection a = pool.connect();
    pool_conn_t h = a.handle();
    peepool::connection b(std::move(a));
    CHECK(!a.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty
    CHECK(b.handle().id == h.id);
    CHECK(pool.stats().in_use == 1);

    peepool::connection c = pool.connect();
    CHECK(pool.stats().in_use == 2);
    b = std::move(c);  // b's old connection goes back
    CHECK(pool.stats().in_use == 1);
    CHECK(b.valid());

    std::vector<peepool::connection> held;
    held.push_back(std::move(b));
    held.push_back(pool.connect());
    held.push_back(pool.connect());
    CHECK(pool.stats().in_use == 3);
    held.clear();
    CHECK(pool.stats().in_use == 0);

    // Moving the pool keeps its connections working.
    peepool::connection d = pool.connect();
    peepool::pool other(std::move(pool));
    CHECK(pool.handle() == nullptr);  // NOLINT(bugprone-use-after-move)
    EXPECT_ERROR(POOL_ERR_INVALID_ARGUMENT, pool.connect());
    CHECK(d.query("SELECT 1").rows() == 1);
    CHECK(other.stats().in_use == 1);
    d.release();
    CHECK(other.stats().in_use == 0);

    // Results move too.
    peepool::connection e = other.connect();
    peepool::result r = e.query("SELECT 7");
    peepool::result r2(std::move(r));
    CHECK(r.rows() == 0);  // NOLINT(bugprone-use-after-move)
    CHECK(r2.get<std::int64_t>(0, 0) == 7);
    r = std::move(r2);
    CHECK(r.get<int>(0, 0) == 7);

    // A connection may outlive the pool object: the pool stays alive for it.
    peepool::connection kept;
    {
        peepool::pool p(url_with("max_connections=1"));
        kept = p.connect();
    }
    CHECK(kept.query("SELECT 1").get<std::int64_t>(0, 0) == 1);
    kept.release();
}

void transaction_guard() {
    peepool::pool pool(url_with("max_connections=2"));
    std::string t = table("tx");
    peepool::connection c = pool.connect();
    c.execute("CREATE TABLE " + t + " (n BIGINT)");
    std::string insert = "INSERT INTO " + t + " (n) VALUES (" + ph(1) + ")";
    {
        peepool::transaction tx(c);
        CHECK(c.execute(insert, 1) == 1);
        CHECK(count_rows(c, t) == 1);
    }  // not committed: rolled back
    CHECK(count_rows(c, t) == 0);
    {
        peepool::transaction tx(c);
        c.execute(insert, 2);
        tx.commit();
    }
    CHECK(count_rows(c, t) == 1);
    try {
        peepool::transaction tx(c);
        c.execute(insert, 3);
        throw std::runtime_error("abandon");
    } catch (const std::runtime_error &) {
    }
    CHECK(count_rows(c, t) == 1);
    {
        peepool::transaction tx(c);
        c.execute(insert, 4);
        tx.rollback();
    }
    CHECK(count_rows(c, t) == 1);
    // Manual begin/commit/rollback.
    c.begin();
    c.execute(insert, 5);
    c.rollback();
    CHECK(count_rows(c, t) == 1);
    c.begin();
    c.execute(insert, 6);
    c.commit();
    CHECK(count_rows(c, t) == 2);
    // A transaction left open is rolled back when the connection goes back.
    {
        peepool::connection d = pool.connect();
        d.begin();
        d.execute(insert, 7);
    }
    CHECK(count_rows(c, t) == 2);
    c.execute("DROP TABLE " + t);
}

void threads() {
    constexpr int kThreads = 8;
    constexpr int kRounds = 10;
    peepool::pool pool(url_with("max_connections=3&timeout=30"));
    std::string t = table("threads");
    pool.connect().execute("CREATE TABLE " + t + " (thread BIGINT, n BIGINT, name VARCHAR(64))");
    std::string insert =
        "INSERT INTO " + t + " (thread, n, name) VALUES (" + ph(1) + ", " + ph(2) + ", " + ph(3) + ")";
    std::atomic<int> errors{0};
    std::atomic<int> most_in_use{0};
    std::vector<std::thread> workers;
    for (int i = 0; i < kThreads; ++i) {
        workers.emplace_back([&, i] {
            for (int n = 0; n < kRounds; ++n) {
                try {
                    peepool::connection c = pool.connect();
                    int in_use = static_cast<int>(pool.stats().in_use);
                    int seen = most_in_use.load();
                    while (in_use > seen && !most_in_use.compare_exchange_weak(seen, in_use)) {
                    }
                    std::string name = "thread " + std::to_string(i);
                    c.execute(insert, i, n, name);
                    peepool::result r = c.query("SELECT count(*) FROM " + t + " WHERE thread = " + ph(1), i);
                    if (r.get<std::int64_t>(0, 0) != n + 1) ++errors;
                } catch (const peepool::error &e) {
                    ++errors;
                    std::lock_guard<std::mutex> lock(g_out);
                    std::cerr << "    thread " << i << ": " << e.what() << "\n";
                }
            }
        });
    }
    for (std::thread &w : workers) w.join();
    CHECK(errors == 0);
    CHECK(most_in_use <= 3);
    pool_stats_t s = pool.stats();
    CHECK(s.in_use == 0);
    CHECK(s.open <= 3);
    CHECK(s.checkouts >= kThreads * kRounds);
    peepool::connection c = pool.connect();
    CHECK(count_rows(c, t) == kThreads * kRounds);
    c.execute("DROP TABLE " + t);

    // A waiter with a bounded wait gets EXHAUSTED when nothing comes back,
    // and a connection when one does.
    peepool::pool small(url_with("max_connections=1&timeout=0.2"));
    peepool::connection held = small.connect();
    std::atomic<int> status{-1};
    std::thread waiter([&] {
        try {
            small.connect();
            status = POOL_OK;
        } catch (const peepool::error &e) {
            status = e.status();
        }
    });
    waiter.join();
    CHECK(status == POOL_ERR_EXHAUSTED);
    peepool::pool waits(url_with("max_connections=1&timeout=10"));
    peepool::connection first = waits.connect();
    std::thread later([&] {
        try {
            peepool::connection c2 = waits.connect();
            status = c2.valid() ? POOL_OK : POOL_ERR_INTERNAL;
        } catch (const peepool::error &e) {
            status = e.status();
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    first.release();
    later.join();
    CHECK(status == POOL_OK);
}

void results_and_parameters() {
    peepool::pool pool(url_with(""));
    peepool::connection c = pool.connect();
    std::string t = table("values");
    c.execute("CREATE TABLE " + t + " (i BIGINT, d DOUBLE PRECISION, s VARCHAR(64), v VARCHAR(64), b " +
              blob_type() + ", n BIGINT)");
    const unsigned char bytes[] = {0, 1, 2, 255};
    std::string s = "héllo";
    std::string_view sv = "view";
    CHECK(c.execute("INSERT INTO " + t + " (i, d, s, v, b, n) VALUES (" + ph(1) + ", " + ph(2) + ", " +
                        ph(3) + ", " + ph(4) + ", " + ph(5) + ", " + ph(6) + ")",
                    std::int64_t{-42}, 2.5, s, sv, peepool::blob(bytes, sizeof bytes), nullptr) == 1);
    // Parameters built at run time, C strings, small integer types.
    std::vector<peepool::value> params{7, 0.25, "c string", std::string("str"), nullptr, 8u};
    c.execute("INSERT INTO " + t + " (i, d, s, v, b, n) VALUES (" + ph(1) + ", " + ph(2) + ", " + ph(3) +
                  ", " + ph(4) + ", " + ph(5) + ", " + ph(6) + ")",
              params);

    peepool::result r = c.query("SELECT i, d, s, v, b, n FROM " + t + " ORDER BY i");
    CHECK(r.rows() == 2);
    CHECK(r.columns() == 6);
    CHECK(r.column_name(0) == "i");
    CHECK(r.column_name(5) == "n");
    EXPECT_ERROR(POOL_ERR_INVALID_ARGUMENT, r.column_name(6));

    CHECK(r.get<std::int64_t>(0, 0) == -42);
    CHECK(r.get<int>(0, 0) == -42);
    CHECK(r.text(0, 0) == "-42");
    CHECK(r.get<double>(0, 1) == 2.5);
    CHECK(r.get<std::string>(0, 2) == s);
    CHECK(r.get<std::string_view>(0, 3) == "view");
    CHECK(r.text(0, 2) == s);
    {
        std::vector<unsigned char> got = r.get<std::vector<unsigned char>>(0, 4);
        CHECK(got == std::vector<unsigned char>(bytes, bytes + sizeof bytes));
    }
    CHECK(r.is_null(0, 5));
    CHECK(!r.is_null(0, 0));
    CHECK(r.type(0, 5) == POOL_TYPE_NULL);
    CHECK(r.get<std::optional<std::int64_t>>(0, 5) == std::nullopt);
    CHECK(r.get<std::optional<std::int64_t>>(0, 0) == std::int64_t{-42});
    EXPECT_ERROR(POOL_ERR_CONVERSION, r.get<std::int64_t>(0, 5));
    EXPECT_ERROR(POOL_ERR_CONVERSION, r.text(0, 5));
    EXPECT_ERROR(POOL_ERR_CONVERSION, r.get<std::int64_t>(0, 2));
    EXPECT_ERROR(POOL_ERR_INVALID_ARGUMENT, r.get<std::int64_t>(2, 0));
    EXPECT_ERROR(POOL_ERR_INVALID_ARGUMENT, r.is_null(0, 6));

    CHECK(r.get<std::uint8_t>(1, 0) == 7);
    CHECK(r.get<double>(1, 1) == 0.25);
    CHECK(r.text(1, 2) == "c string");
    CHECK(r.get<std::string>(1, 3) == "str");
    CHECK(r.is_null(1, 4));
    CHECK(r.get<std::int64_t>(1, 5) == 8);

    // Range checks of narrower integer types.
    peepool::result big = c.query("SELECT 1000");
    EXPECT_ERROR(POOL_ERR_CONVERSION, big.get<std::int8_t>(0, 0));
    CHECK(big.get<std::int16_t>(0, 0) == 1000);
    peepool::result neg = c.query("SELECT -1");
    EXPECT_ERROR(POOL_ERR_CONVERSION, neg.get<unsigned>(0, 0));

    // A result outlives its connection and pool.
    c.execute("DROP TABLE " + t);
    c.release();
    CHECK(r.get<std::int64_t>(0, 0) == -42);

    // An empty result.
    peepool::result none;
    CHECK(none.rows() == 0 && none.columns() == 0);
    EXPECT_ERROR(POOL_ERR_INVALID_ARGUMENT, none.text(0, 0));
}

void maintenance() {
    peepool::pool pool(url_with("max_connections=4"));
    {
        peepool::connection a = pool.connect();
        peepool::connection b = pool.connect();
    }
    CHECK(pool.stats().idle == 2);
    CHECK(pool.close_idle() == 2);
    CHECK(pool.stats().open == 0);

    peepool::connection held = pool.connect();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(pool.close_stale(0.01) == 1);
    EXPECT_ERROR(POOL_ERR_INVALID_HANDLE, held.execute("SELECT 1"));
    EXPECT_ERROR(POOL_ERR_INVALID_ARGUMENT, pool.close_stale(-1.0));
    // held's destructor quietly drops the revoked handle.

    peepool::connection c = pool.connect();
    { peepool::connection idle = pool.connect(); }
    pool.close_all();
    CHECK(pool.stats().idle == 0);
    CHECK(c.query("SELECT 1").rows() == 1);  // condemned, still works until released
    c.release();
    CHECK(pool.stats().open == 0);
}

void logger() {
    peepool::pool pool(url_with(""));
    std::atomic<int> lines{0};
    std::atomic<int> bad_level{0};
    pool.set_logger([&](int level, const char *message) {
        if (level < POOL_LOG_ERROR || level > POOL_LOG_DEBUG || message == nullptr) ++bad_level;
        ++lines;
    });
    { peepool::connection c = pool.connect(); }
    CHECK(lines > 0);
    CHECK(bad_level == 0);
    // A replaced logger no longer gets lines; a throwing one is harmless.
    int before = lines;
    pool.set_logger([](int, const char *) { throw std::runtime_error("from the logger"); });
    { peepool::connection c = pool.connect(); }
    CHECK(lines == before);
    pool.set_logger(nullptr);
    { peepool::connection c = pool.connect(); }
    CHECK(lines == before);
}

void thread_connection() {
    peepool::pool pool(url_with("max_connections=2"));
    {
        peepool::connection a = pool.thread_connect();
        peepool::connection b = pool.thread_connect();
        CHECK(a.handle().id == b.handle().id);
        CHECK(pool.stats().in_use == 1);
    }
    // Not released by the objects: the thread still holds it.
    CHECK(pool.stats().in_use == 1);
    pool.thread_release();
    CHECK(pool.stats().in_use == 0);
    pool.thread_release();  // none held: fine
    std::thread other([&] {
        peepool::connection c = pool.thread_connect();
        c.execute("SELECT 1");
    });
    other.join();  // goes back when the thread exits
    CHECK(pool.stats().in_use == 0);
}

void version() {
    CHECK(std::string(peepool::version()) == PEEPOOL_VERSION_STRING);
}

void run(const char *name, void (*fn)()) {
    int failed_before = g_failed;
    try {
        fn();
    } catch (const peepool::error &e) {
        ++g_failed;
        std::cerr << "  FAIL uncaught peepool::error " << e.status() << " [" << e.sqlstate()
                  << "]: " << e.what() << "\n";
    } catch (const std::exception &e) {
        ++g_failed;
        std::cerr << "  FAIL uncaught exception: " << e.what() << "\n";
    }
    std::cerr << "[" << (g_failed == failed_before ? "ok" : "FAIL") << "] " << name << "\n";
}

}  // namespace

int main(int argc, char **argv) {
    if (argc == 4 && std::strcmp(argv[1], "--url-env") == 0) {
        const char *env = std::getenv(argv[2]);
        g_url = env && env[0] ? env : argv[3];
    } else if (argc == 2) {
        g_url = argv[1];
    } else {
        std::cerr << "usage: " << argv[0] << " <url> | --url-env NAME <default-url>\n";
        return 2;
    }
    if (g_url.rfind("postgres", 0) == 0) {
        g_kind = kind::postgres;
    } else if (g_url.rfind("mysql", 0) == 0 || g_url.rfind("mariadb", 0) == 0) {
        g_kind = kind::mysql;
    }
    std::cerr << "test_cpp: " << g_url << "\n";
    run("version", version);
    run("scoped return", scoped_return);
    run("release and close", release_and_close);
    run("exceptions", exceptions);
    run("moves", moves);
    run("transaction guard", transaction_guard);
    run("threads", threads);
    run("results and parameters", results_and_parameters);
    run("maintenance", maintenance);
    run("logger", logger);
    run("per-thread connection", thread_connection);
    std::cout << g_passed << " passed, " << g_failed << " failed\n";
    return g_failed == 0 ? 0 : 1;
}
