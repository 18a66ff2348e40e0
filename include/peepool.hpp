// peepool.hpp: a header-only C++17 RAII wrapper over peepool's C API
// (peepool.h). Link with libpeepool (CMake: peepool::peepool; pkg-config:
// peepool).
//
//   peepool::pool pool("sqlite:app.db?max_connections=8&timeout=5");
//   {
//       peepool::connection conn = pool.connect();      // checked out
//       conn.execute("INSERT INTO users(name) VALUES (?)", "charlie");
//       peepool::result res = conn.query("SELECT id, name FROM users");
//       for (std::size_t r = 0; r < res.rows(); ++r)
//           std::cout << res.get<std::int64_t>(r, 0) << ' ' << res.text(r, 1) << '\n';
//   }                                                    // back to the pool
//
// Ownership:
// - pool: owns the pool_t. Move-only. A connection taken from it keeps the
//   pool_t alive, so pool_free runs when the pool object and every
//   connection from it are gone (never while one is still in use).
// - connection: a checked-out pool_conn_t. Move-only. Its destructor gives
//   it back (pool_release, which rolls back an open transaction);
//   release() does the same early, close() closes it for good
//   (pool_manual_close).
// - result: owns a pool_result_t; freed by its destructor. Independent of
//   the connection and pool. Move-only. Views it hands out (text(),
//   column_name(), get<std::string_view>) live as long as the result.
// - transaction: begins on construction; commit() commits; its destructor
//   rolls back unless committed.
//
// Errors: every failing C call throws peepool::error carrying the status
// code, the message (pool_last_error(), read right after the failing call on
// the same thread) and the SQLSTATE (pool_last_sqlstate()). Destructors
// never throw.
//
// Threads: a pool may be shared by any number of threads (connect() from
// each); a connection is used by one thread at a time but may move between
// threads; a result may be read by several threads at once.
#ifndef PEEPOOL_HPP
#define PEEPOOL_HPP

#include <peepool.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace peepool {

/// A failed peepool call: status() is the pool_status_t, what() the
/// library's message, sqlstate() the SQLSTATE of a database error ("" when
/// there is none; SQLite gives its extended result code).
class error : public std::runtime_error {
public:
    error(pool_status_t status, const std::string &message, std::string sqlstate = {})
        : std::runtime_error(message), status_(status), sqlstate_(std::move(sqlstate)) {}

    pool_status_t status() const noexcept { return status_; }
    const std::string &sqlstate() const noexcept { return sqlstate_; }

private:
    pool_status_t status_;
    std::string sqlstate_;
};

namespace detail {

/// Throws the error of the C call that just returned `status` on this
/// thread. Reads the message and SQLSTATE before any other pool_ call.
inline error last_error(pool_status_t status) {
    std::string message = pool_last_error();
    std::string sqlstate = pool_last_sqlstate();
    if (message.empty()) message = pool_status_str(static_cast<int>(status));
    return error(status, message, std::move(sqlstate));
}

[[noreturn]] inline void throw_last(pool_status_t status) { throw last_error(status); }

inline void check(pool_status_t status) {
    if (status != POOL_OK) throw_last(status);
}

using logger_fn = std::function<void(int, const char *)>;

/// What a pool and its connections share: the pool_t and every logger
/// ever installed (a log call in flight on another thread may still use a
/// replaced one, so they live as long as the pool_t).
struct pool_state {
    pool_t *handle = nullptr;
    std::mutex loggers_mutex;
    std::vector<std::unique_ptr<logger_fn>> loggers;

    explicit pool_state(pool_t *p) noexcept : handle(p) {}
    pool_state(const pool_state &) = delete;
    pool_state &operator=(const pool_state &) = delete;
    ~pool_state() { pool_free(handle); }  // no callback runs after this returns
};

extern "C" inline void peepool_hpp_log_trampoline(void *user_data, int level, const char *message) {
    try {
        (*static_cast<logger_fn *>(user_data))(level, message);
    } catch (...) {
        // An exception must not unwind into the library; the line is dropped.
    }
}

/// A NUL-terminated SQL string: a C string or a std::string.
class sql_text {
public:
    sql_text(const char *s) noexcept : s_(s) {}          // NOLINT: implicit on purpose
    sql_text(const std::string &s) noexcept : s_(s.c_str()) {}  // NOLINT
    const char *c_str() const noexcept { return s_; }

private:
    const char *s_;
};

}  // namespace detail

/// Bytes to bind as a BLOB parameter. Borrows the bytes: they must outlive
/// the call that uses them.
struct blob {
    const void *data = nullptr;
    std::size_t size = 0;

    blob(const void *d, std::size_t n) noexcept : data(d), size(n) {}
    template <class Byte, class = std::enable_if_t<sizeof(Byte) == 1 && std::is_trivial_v<Byte>>>
    blob(const std::vector<Byte> &v) noexcept : data(v.data()), size(v.size()) {}  // NOLINT
};

/// One statement parameter: nullptr (SQL NULL), bool and integers (INT64;
/// an unsigned value above INT64_MAX throws POOL_ERR_INVALID_ARGUMENT),
/// float/double, text (const char *, std::string, std::string_view) or a
/// blob. A value made from a std::string rvalue keeps the string (copies
/// share it); otherwise it borrows text and blob bytes like pool_value_t,
/// and they must outlive the execute()/query() call that uses it.
class value {
public:
    value(std::nullptr_t) noexcept : v_(pool_null()) {}  // NOLINT: implicit on purpose
    template <class T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
    value(T v) : v_(pool_int64(to_int64(v))) {}  // NOLINT
    value(double v) noexcept : v_(pool_double(v)) {}  // NOLINT
    value(float v) noexcept : v_(pool_double(static_cast<double>(v))) {}  // NOLINT
    value(const char *s) noexcept : v_(pool_text(s)) {}  // NOLINT (nullptr: SQL NULL)
    value(const std::string &s) noexcept : v_(pool_text_n(s.data(), s.size())) {}  // NOLINT
    value(std::string &&s)  // NOLINT
        : owned_(std::make_shared<const std::string>(std::move(s))),
          v_(pool_text_n(owned_->data(), owned_->size())) {}
    value(std::string_view s) noexcept : v_(pool_text_n(s.empty() ? "" : s.data(), s.size())) {}  // NOLINT
    value(blob b) noexcept : v_(pool_blob(b.data, b.size)) {}  // NOLINT

    /// The C value (borrowing what this value borrows).
    const pool_value_t &c_value() const noexcept { return v_; }

private:
    template <class T>
    static std::int64_t to_int64(T v) {
        if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
            if (v > static_cast<T>(std::numeric_limits<std::int64_t>::max()))
                throw error(POOL_ERR_INVALID_ARGUMENT,
                            "peepool::value: unsigned integer above INT64_MAX");
        }
        return static_cast<std::int64_t>(v);
    }

    std::shared_ptr<const std::string> owned_;  // before v_, which points into it
    pool_value_t v_;
};

/// The rows of a query, all in memory. Rows and columns count from 0; an
/// index out of range throws POOL_ERR_INVALID_ARGUMENT.
class result {
public:
    result() noexcept = default;
    explicit result(pool_result_t *r) noexcept : r_(r) {}
    result(result &&o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    result &operator=(result &&o) noexcept {
        if (this != &o) {
            pool_result_free(r_);
            r_ = std::exchange(o.r_, nullptr);
        }
        return *this;
    }
    result(const result &) = delete;
    result &operator=(const result &) = delete;
    ~result() { pool_result_free(r_); }

    std::size_t rows() const noexcept { return pool_result_rows(r_); }
    std::size_t columns() const noexcept { return pool_result_columns(r_); }

    /// The name of column `col`, valid as long as this result.
    std::string_view column_name(std::size_t col) const {
        const char *name = nullptr;
        detail::check(pool_result_column_name(r_, col, &name));
        return name;
    }

    /// The cell's kind: one of the POOL_TYPE_* constants.
    std::uint32_t type(std::size_t row, std::size_t col) const {
        std::uint32_t t = POOL_TYPE_NULL;
        detail::check(pool_result_type(r_, row, col, &t));
        return t;
    }

    bool is_null(std::size_t row, std::size_t col) const {
        bool n = false;
        detail::check(pool_result_is_null(r_, row, col, &n));
        return n;
    }

    /// The cell as text (the database client's text form), valid as long as
    /// this result. A NULL cell throws POOL_ERR_CONVERSION.
    std::string_view text(std::size_t row, std::size_t col) const {
        const char *s = nullptr;
        std::size_t len = 0;
        detail::check(pool_result_text(r_, row, col, &s, &len));
        return std::string_view(s, len);
    }

    /// The cell's bytes (a binary value's raw bytes, any other value's text).
    std::vector<unsigned char> bytes(std::size_t row, std::size_t col) const {
        const void *p = nullptr;
        std::size_t len = 0;
        detail::check(pool_result_blob(r_, row, col, &p, &len));
        const auto *b = static_cast<const unsigned char *>(p);
        return std::vector<unsigned char>(b, b + len);
    }

    /// The cell as T: std::int64_t (or another integer type it fits),
    /// double, std::string, std::string_view (valid as long as this
    /// result), std::vector<unsigned char>, or std::optional of one of
    /// these (std::nullopt for NULL). A value that does not convert, NULL
    /// included when T is not optional, throws POOL_ERR_CONVERSION.
    template <class T>
    T get(std::size_t row, std::size_t col) const {
        if constexpr (is_optional<T>::value) {
            if (is_null(row, col)) return std::nullopt;
            return get<typename T::value_type>(row, col);
        } else if constexpr (std::is_same_v<T, bool>) {
            return get<std::int64_t>(row, col) != 0;
        } else if constexpr (std::is_integral_v<T>) {
            std::int64_t v = 0;
            detail::check(pool_result_int64(r_, row, col, &v));
            bool fits = true;
            if constexpr (std::is_signed_v<T> && sizeof(T) < sizeof(std::int64_t)) {
                fits = v >= std::numeric_limits<T>::min() && v <= std::numeric_limits<T>::max();
            } else if constexpr (std::is_unsigned_v<T>) {
                fits = v >= 0 && static_cast<std::uint64_t>(v) <=
                                     static_cast<std::uint64_t>(std::numeric_limits<T>::max());
            }
            if (!fits)
                throw error(POOL_ERR_CONVERSION,
                            "peepool::result::get: " + std::to_string(v) + " out of range");
            return static_cast<T>(v);
        } else if constexpr (std::is_same_v<T, double> || std::is_same_v<T, float>) {
            double v = 0;
            detail::check(pool_result_double(r_, row, col, &v));
            return static_cast<T>(v);
        } else if constexpr (std::is_same_v<T, std::string_view>) {
            return text(row, col);
        } else if constexpr (std::is_same_v<T, std::string>) {
            return std::string(text(row, col));
        } else if constexpr (std::is_same_v<T, std::vector<unsigned char>>) {
            return bytes(row, col);
        } else {
            static_assert(sizeof(T) == 0, "peepool::result::get: unsupported type");
        }
    }

    /// The C result, still owned by this object.
    pool_result_t *c_result() const noexcept { return r_; }

private:
    template <class T>
    struct is_optional : std::false_type {};
    template <class T>
    struct is_optional<std::optional<T>> : std::true_type {};

    pool_result_t *r_ = nullptr;
};

template <class... Args>
inline constexpr bool all_values_v = (std::is_constructible_v<value, Args> && ...);

/// A checked-out connection. Move-only; the destructor gives it back to
/// the pool. An empty connection (default-constructed, moved from,
/// released or closed) throws POOL_ERR_INVALID_HANDLE when used.
class connection {
public:
    connection() noexcept = default;
    connection(connection &&o) noexcept
        : state_(std::move(o.state_)), c_(std::exchange(o.c_, pool_conn_t{0})),
          owned_(o.owned_) {}
    connection &operator=(connection &&o) noexcept {
        if (this != &o) {
            give_back();
            state_ = std::move(o.state_);
            c_ = std::exchange(o.c_, pool_conn_t{0});
            owned_ = o.owned_;
        }
        return *this;
    }
    connection(const connection &) = delete;
    connection &operator=(const connection &) = delete;
    ~connection() { give_back(); }

    /// Whether this object holds a connection.
    bool valid() const noexcept { return c_.id != 0; }
    explicit operator bool() const noexcept { return valid(); }
    /// The C handle, still owned by this object.
    pool_conn_t handle() const noexcept { return c_; }

    /// Gives the connection back to the pool now (rolling back an open
    /// transaction). Empty afterwards, also when it throws (a revoked
    /// handle: POOL_ERR_INVALID_HANDLE), except on POOL_ERR_BUSY.
    void release() { finish(false); }

    /// Closes the connection for good instead of returning it
    /// (pool_manual_close); its place in the pool is free again. Empty
    /// afterwards, as for release().
    void close() { finish(true); }

    /// Runs a statement with parameters (anything a peepool::value is made
    /// from); returns the number of rows changed.
    template <class... Args, std::enable_if_t<all_values_v<const Args &...>, int> = 0>
    std::uint64_t execute(detail::sql_text sql, const Args &...args) {
        const value values[] = {value(args)..., value(nullptr)};  // args stay borrowed
        pool_value_t params[sizeof...(Args) + 1] = {};
        for (std::size_t i = 0; i < sizeof...(Args); ++i) params[i] = values[i].c_value();
        return execute_c(sql.c_str(), params, sizeof...(Args));
    }
    /// As execute() with a parameter list built at run time.
    std::uint64_t execute(detail::sql_text sql, const std::vector<value> &params) {
        std::vector<pool_value_t> c = to_c(params);
        return execute_c(sql.c_str(), c.data(), c.size());
    }

    /// Runs a query with parameters; returns all its rows.
    template <class... Args, std::enable_if_t<all_values_v<const Args &...>, int> = 0>
    result query(detail::sql_text sql, const Args &...args) {
        const value values[] = {value(args)..., value(nullptr)};  // args stay borrowed
        pool_value_t params[sizeof...(Args) + 1] = {};
        for (std::size_t i = 0; i < sizeof...(Args); ++i) params[i] = values[i].c_value();
        return query_c(sql.c_str(), params, sizeof...(Args));
    }
    /// As query() with a parameter list built at run time.
    result query(detail::sql_text sql, const std::vector<value> &params) {
        std::vector<pool_value_t> c = to_c(params);
        return query_c(sql.c_str(), c.data(), c.size());
    }

    void begin() { detail::check(pool_begin(c_)); }
    void commit() { detail::check(pool_commit(c_)); }
    void rollback() { detail::check(pool_rollback(c_)); }

private:
    friend class pool;
    connection(std::shared_ptr<detail::pool_state> state, pool_conn_t c, bool owned) noexcept
        : state_(std::move(state)), c_(c), owned_(owned) {}

    static std::vector<pool_value_t> to_c(const std::vector<value> &params) {
        std::vector<pool_value_t> c;
        c.reserve(params.size());
        for (const value &v : params) c.push_back(v.c_value());
        return c;
    }

    std::uint64_t execute_c(const char *sql, const pool_value_t *params, std::size_t n) {
        std::uint64_t affected = 0;
        detail::check(pool_execute(c_, sql, n ? params : nullptr, n, &affected));
        return affected;
    }

    result query_c(const char *sql, const pool_value_t *params, std::size_t n) {
        pool_result_t *r = nullptr;
        detail::check(pool_query(c_, sql, n ? params : nullptr, n, &r));
        return result(r);
    }

    void finish(bool close_for_good) {
        if (!valid() || !state_)
            throw error(POOL_ERR_INVALID_HANDLE, "peepool::connection: no connection held");
        pool_t *p = state_->handle;
        pool_status_t s = close_for_good ? pool_manual_close(p, c_) : pool_release(p, c_);
        if (s == POOL_OK) {
            c_ = pool_conn_t{0};
            state_.reset();
            return;
        }
        error e = detail::last_error(s);  // read before anything else calls in
        if (s != POOL_ERR_BUSY) {         // busy: still ours, try again later
            c_ = pool_conn_t{0};
            state_.reset();
        }
        throw e;
    }

    void give_back() noexcept {
        if (c_.id != 0 && owned_ && state_) pool_release(state_->handle, c_);
        c_ = pool_conn_t{0};
        state_.reset();
    }

    std::shared_ptr<detail::pool_state> state_;
    pool_conn_t c_{0};
    bool owned_ = true;
};

/// Begins a transaction on construction; commit() commits it; destroyed
/// (or rollback()) without commit() it rolls back. Not movable; borrows
/// the connection, which must outlive it.
class transaction {
public:
    explicit transaction(connection &conn) : conn_(&conn) { conn_->begin(); }
    transaction(const transaction &) = delete;
    transaction &operator=(const transaction &) = delete;
    ~transaction() {
        if (!done_) pool_rollback(conn_->handle());  // errors ignored: no throw here
    }

    void commit() {
        conn_->commit();  // a failed COMMIT is rolled back by the destructor
        done_ = true;
    }
    void rollback() {
        done_ = true;
        conn_->rollback();
    }

private:
    connection *conn_;
    bool done_ = false;
};

/// A connection pool. Move-only; see the top of this file for ownership.
class pool {
public:
    /// Creates a pool from a URL (see the README for schemes and options);
    /// throws error (POOL_ERR_CONFIG for a bad URL or option).
    explicit pool(detail::sql_text url) {
        pool_t *p = nullptr;
        detail::check(pool_new(url.c_str(), &p));
        state_ = std::make_shared<detail::pool_state>(p);
    }
    pool(pool &&) noexcept = default;
    pool &operator=(pool &&) noexcept = default;
    pool(const pool &) = delete;
    pool &operator=(const pool &) = delete;
    ~pool() = default;  // pool_free once no connection from it remains

    /// Checks a connection out, waiting up to the pool's `timeout`; throws
    /// error (POOL_ERR_EXHAUSTED, POOL_ERR_CONNECT, POOL_ERR_CLOSED).
    connection connect() {
        pool_conn_t c{0};
        detail::check(pool_connect(handle(), &c));
        return connection(state_, c, true);
    }

    /// The calling thread's own connection (pool_thread_connect): the same
    /// one on every call from this thread. The object does not release it
    /// when destroyed; it goes back with thread_release(), with release()
    /// or close() on any object holding it, or when the thread exits.
    connection thread_connect() {
        pool_conn_t c{0};
        detail::check(pool_thread_connect(handle(), &c));
        return connection(state_, c, false);
    }

    /// Gives back the calling thread's own connection, if any.
    void thread_release() { detail::check(pool_thread_release(handle())); }

    pool_stats_t stats() const {
        pool_stats_t s{};
        detail::check(pool_stats(handle(), &s));
        return s;
    }

    /// Closes every idle connection; returns how many.
    std::size_t close_idle() {
        std::size_t n = 0;
        detail::check(pool_close_idle(handle(), &n));
        return n;
    }

    /// Revokes connections checked out longer than `age_seconds`; returns
    /// how many. Their holders get POOL_ERR_INVALID_HANDLE afterwards.
    std::size_t close_stale(double age_seconds) {
        std::size_t n = 0;
        detail::check(pool_close_stale(handle(), age_seconds, &n));
        return n;
    }

    /// Closes idle connections now and in-use ones when they come back.
    void close_all() { detail::check(pool_close_all(handle())); }

    /// Sends log lines (level POOL_LOG_ERROR..POOL_LOG_DEBUG, message valid
    /// during the call) to `fn`, from any thread, possibly several at once;
    /// an empty `fn` goes back to stderr (PEEPOOL_LOG). `fn` is kept alive
    /// with the pool; exceptions it throws are swallowed. It must not call
    /// back into this pool.
    void set_logger(std::function<void(int, const char *)> fn) {
        detail::pool_state &st = state();
        std::lock_guard<std::mutex> lock(st.loggers_mutex);
        if (!fn) {
            detail::check(pool_set_logger(st.handle, nullptr, nullptr));
            return;
        }
        auto owned = std::make_unique<detail::logger_fn>(std::move(fn));
        detail::check(pool_set_logger(st.handle, &detail::peepool_hpp_log_trampoline, owned.get()));
        st.loggers.push_back(std::move(owned));
    }

    /// The C pool, still owned by this object (NULL after a move).
    pool_t *handle() const noexcept { return state_ ? state_->handle : nullptr; }

private:
    detail::pool_state &state() const {
        if (!state_) throw error(POOL_ERR_INVALID_ARGUMENT, "peepool::pool: moved-from pool");
        return *state_;
    }

    std::shared_ptr<detail::pool_state> state_;
};

/// The library's version, e.g. "0.1.0".
inline const char *version() noexcept { return pool_version(); }

}  // namespace peepool

#endif  // PEEPOOL_HPP
