/* Stress: many threads doing random pool operations for a bounded time,
 * with the pool's invariants checked throughout and at the end, and, on a
 * server, the server's own view of the pool's sessions.
 *
 *   stress <url> [seconds] [threads] [seed]     defaults: 3 s, 32 threads,
 *                                               a seed from the clock
 *
 * Each thread draws its operations from its own PRNG seeded with seed +
 * thread index; the seed is printed so that a failing run's sequences can be
 * replayed (the interleaving of threads cannot). Operations: connect,
 * query, execute, begin, commit, rollback, release, manual close, close
 * idle, close stale, close all, stats. Checked:
 *   - every status is one the operation documents, every failure has a
 *     message;
 *   - stats: open <= max_connections, open = idle + in_use,
 *     opened_total - closed_total = open;
 *   - after pool_release / pool_manual_close the old handle is
 *     POOL_ERR_INVALID_HANDLE; a handle is INVALID_HANDLE before its release
 *     only when pool_close_stale ran meanwhile (it reclaims on purpose);
 *   - committed rows are all in the table, rolled back ones are not;
 *   - at the end nothing is in use, nothing waits;
 *   - PostgreSQL / MariaDB: every connection the pool opens records its
 *     pg_backend_pid() / CONNECTION_ID() (init_sql); while running, at most
 *     max_connections of them are live in pg_stat_activity /
 *     information_schema.PROCESSLIST, and after pool_free none is.
 *
 * The short run is a ctest per backend; the long soak is the same binary
 * with e.g. 600 seconds. Prints "N passed, N failed"; exits 1 on failure. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <ctype.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

CHECK_DEFINE_COUNTERS;

#define MAX_CONNECTIONS 8
#define MIN_CONNECTIONS 2
#define HELD_MAX 2 /* connections one thread holds at once */

static pool_t *g_pool;
static double g_deadline;
static char g_rows[128];   /* the table rows are committed into */
static char g_ids[128];    /* server: ids of every session the pool opened */
static char g_marker[64];  /* PostgreSQL application_name of the pool */
/* Bumped before every pool_close_stale: a handle checked out in an earlier
 * epoch may have been reclaimed. */
static atomic_ulong g_stale_epoch;
static atomic_int g_running = 1;
static atomic_ulong g_ops, g_reclaimed_seen, g_exhausted, g_locked;

/* xorshift64*: small, good enough, and the same everywhere. */
static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static unsigned rng_below(uint64_t *s, unsigned n) { return (unsigned)(rng_next(s) >> 33) % n; }

struct held {
    pool_conn_t conn;
    unsigned long epoch; /* g_stale_epoch at checkout */
    int in_tx;
    int pending; /* rows inserted in the open transaction */
};

struct worker {
    pthread_t thread;
    int index;
    uint64_t rng;
    struct held held[HELD_MAX];
    int nheld;
    long long committed; /* rows this thread committed */
};

/* A failure message must say something. */
static void check_message(pool_status_t st, const char *op) {
    const char *msg = pool_last_error();
    if (st != POOL_OK && !(msg != NULL && msg[0] != '\0')) {
        char what[128];
        snprintf(what, sizeof what, "%s failed with status %d and an empty message", op, (int)st);
        check_record(0, __FILE__, __LINE__, what, NULL);
    }
}

/* SQLite lets one writer in at a time: a statement may give up on the lock
 * (SQLITE_BUSY after busy_timeout, or at once where waiting would deadlock;
 * SQLITE_LOCKED in a shared memory database). */
static int sqlite_lock_error(pool_status_t st) {
    const char *msg = pool_last_error();
    if (!is_sqlite() || st != POOL_ERR_DATABASE) return 0;
    return strstr(msg, "locked") != NULL || strstr(msg, "busy") != NULL;
}

static void check_stats(const pool_stats_t *s, const char *where) {
    char what[256];
    int ok = s->open <= MAX_CONNECTIONS && s->in_use <= MAX_CONNECTIONS &&
             s->open == s->idle + s->in_use && s->opened_total - s->closed_total == s->open &&
             s->max_connections == MAX_CONNECTIONS;
    snprintf(what, sizeof what,
             "stats invariants (%s): max=%" PRIu64 " open=%" PRIu64 " idle=%" PRIu64
             " in_use=%" PRIu64 " opened_total=%" PRIu64 " closed_total=%" PRIu64,
             where, s->max_connections, s->open, s->idle, s->in_use, s->opened_total,
             s->closed_total);
    check_record(ok, __FILE__, __LINE__, what, NULL);
}

/* The handle was checked out in an epoch before the last close_stale. */
static int maybe_reclaimed(const struct held *h) {
    return atomic_load(&g_stale_epoch) != h->epoch;
}

static void forget(struct worker *w, int i) {
    w->held[i] = w->held[--w->nheld];
}

/* A handle that is gone must stay gone. */
static void check_dead(pool_conn_t old) {
    CHECK_STATUS(exec0(old, "SELECT 1"), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(pool_begin(old), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(pool_release(g_pool, old), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(pool_manual_close(g_pool, old), POOL_ERR_INVALID_HANDLE);
}

/* A statement on a held connection returned st: accept OK, a reclaimed
 * handle (then drop it), an SQLite lock conflict; anything else fails.
 * Returns 1 when the connection is still usable. */
static int statement_outcome(struct worker *w, int i, pool_status_t st, const char *op) {
    struct held *h = &w->held[i];
    check_message(st, op);
    if (st == POOL_OK) return 1;
    if (st == POOL_ERR_INVALID_HANDLE && maybe_reclaimed(h)) {
        atomic_fetch_add(&g_reclaimed_seen, 1);
        check_dead(h->conn);
        forget(w, i);
        return 0;
    }
    if (sqlite_lock_error(st)) {
        atomic_fetch_add(&g_locked, 1);
        return 1;
    }
    {
        char what[256];
        snprintf(what, sizeof what, "%s on a held connection: unexpected status %d (%s)", op,
                 (int)st, pool_status_str(st));
        check_record(0, __FILE__, __LINE__, what, NULL);
    }
    return 1;
}

static void op_connect(struct worker *w) {
    pool_conn_t c;
    unsigned long epoch = atomic_load(&g_stale_epoch);
    pool_status_t st;
    if (w->nheld == HELD_MAX) return;
    st = pool_connect(g_pool, &c);
    check_message(st, "pool_connect");
    if (st == POOL_ERR_EXHAUSTED) {
        atomic_fetch_add(&g_exhausted, 1);
        CHECK_EQ(c.id, 0);
        CHECK_CONTAINS(pool_last_error(), "in_use=");
        return;
    }
    if (!CHECK_OK(st)) return;
    CHECK(c.id != 0);
    w->held[w->nheld].conn = c;
    w->held[w->nheld].epoch = epoch;
    w->held[w->nheld].in_tx = 0;
    w->held[w->nheld].pending = 0;
    w->nheld++;
}

static void op_query(struct worker *w, int i) {
    char sql[128];
    pool_value_t v = pool_int64((int64_t)rng_below(&w->rng, 1000000));
    pool_result_t *res = NULL;
    pool_status_t st;
    sql_fmt(sql, sizeof sql,
            g_kind == BACKEND_POSTGRES ? "SELECT CAST(? AS BIGINT) + 1" : "SELECT ? + 1");
    st = pool_query(w->held[i].conn, sql, &v, 1, &res);
    if (statement_outcome(w, i, st, "pool_query") && st == POOL_OK) {
        int64_t got = -1;
        CHECK_EQ(pool_result_rows(res), 1);
        CHECK_OK(pool_result_int64(res, 0, 0, &got));
        CHECK_EQ(got, v.i64 + 1);
    }
    if (st != POOL_OK) CHECK(res == NULL);
    pool_result_free(res);
}

static void op_insert(struct worker *w, int i) {
    char sql[256];
    pool_value_t v[2];
    uint64_t affected = 99;
    pool_status_t st;
    v[0] = pool_int64(w->index);
    v[1] = pool_int64((int64_t)rng_below(&w->rng, 1000));
    sql_fmt(sql, sizeof sql, "INSERT INTO %s(th, v) VALUES (?, ?)", g_rows);
    st = pool_execute(w->held[i].conn, sql, v, 2, &affected);
    if (statement_outcome(w, i, st, "pool_execute") && st == POOL_OK) {
        CHECK_EQ(affected, 1);
        if (w->held[i].in_tx)
            w->held[i].pending++;
        else
            w->committed++; /* autocommit */
    }
    if (st != POOL_OK) CHECK_EQ(affected, 0);
}

static void op_begin(struct worker *w, int i) {
    pool_status_t st;
    if (w->held[i].in_tx) return;
    st = pool_begin(w->held[i].conn);
    if (statement_outcome(w, i, st, "pool_begin") && st == POOL_OK) {
        w->held[i].in_tx = 1;
        w->held[i].pending = 0;
    }
}

static void op_end_tx(struct worker *w, int i, int commit) {
    pool_status_t st;
    if (!w->held[i].in_tx) return;
    st = commit ? pool_commit(w->held[i].conn) : pool_rollback(w->held[i].conn);
    if (statement_outcome(w, i, st, commit ? "pool_commit" : "pool_rollback")) {
        if (st == POOL_OK) {
            if (commit) w->committed += w->held[i].pending;
            w->held[i].in_tx = 0;
            w->held[i].pending = 0;
        } else if (commit) {
            /* a commit SQLite refused leaves the transaction open */
            CHECK_OK(pool_rollback(w->held[i].conn));
            w->held[i].in_tx = 0;
            w->held[i].pending = 0;
        }
    }
}

/* Release or manual close; an open transaction is rolled back by the pool. */
static void op_give_back(struct worker *w, int i, int manual) {
    struct held h = w->held[i];
    pool_status_t st = manual ? pool_manual_close(g_pool, h.conn) : pool_release(g_pool, h.conn);
    check_message(st, manual ? "pool_manual_close" : "pool_release");
    if (st == POOL_ERR_INVALID_HANDLE && maybe_reclaimed(&h)) {
        atomic_fetch_add(&g_reclaimed_seen, 1);
    } else {
        CHECK_OK(st);
    }
    forget(w, i);
    check_dead(h.conn);
}

static void op_stats(void) {
    pool_stats_t s;
    if (CHECK_OK(pool_stats(g_pool, &s))) check_stats(&s, "while running");
}

static void *worker_main(void *arg) {
    struct worker *w = (struct worker *)arg;
    while (now_seconds() < g_deadline) {
        unsigned r = rng_below(&w->rng, 1000);
        int i = w->nheld > 0 ? (int)rng_below(&w->rng, (unsigned)w->nheld) : -1;
        atomic_fetch_add(&g_ops, 1);
        if (i < 0 || r < 30) {
            /* a second connection now and then: holding one while waiting
             * for another is what makes waiters time out */
            op_connect(w);
        } else if (r < 400) {
            op_query(w, i);
        } else if (r < 550) {
            op_insert(w, i);
        } else if (r < 620) {
            op_begin(w, i);
        } else if (r < 670) {
            op_end_tx(w, i, 1);
        } else if (r < 700) {
            op_end_tx(w, i, 0);
        } else if (r < 850) {
            op_give_back(w, i, 0);
        } else if (r < 880) {
            op_give_back(w, i, 1);
        } else if (r < 890) {
            size_t n = 99;
            CHECK_OK(pool_close_idle(g_pool, &n));
            CHECK(n <= MAX_CONNECTIONS);
        } else if (r < 894) {
            size_t n = 99;
            /* reclaims only what another thread has held for a while */
            double age = 0.05 + (double)rng_below(&w->rng, 450) / 1000.0;
            atomic_fetch_add(&g_stale_epoch, 1);
            CHECK_OK(pool_close_stale(g_pool, age, &n));
            CHECK(n <= MAX_CONNECTIONS);
        } else if (r < 898) {
            CHECK_OK(pool_close_all(g_pool));
        } else if (r < 960) {
            op_stats();
        } else {
            /* hold what we have for a while: others wait, close_stale bites */
            sleep_seconds((double)rng_below(&w->rng, 30) / 1000.0);
        }
    }
    while (w->nheld > 0) {
        if (w->held[0].in_tx && rng_below(&w->rng, 2)) op_end_tx(w, 0, 1);
        if (w->nheld > 0) op_give_back(w, 0, 0);
    }
    return NULL;
}

/* ---- the server's view ---------------------------------------------------- */

/* Percent-encode s into out (for an option value in the URL). */
static void url_encode(char *out, size_t n, const char *s) {
    size_t o = 0;
    for (; *s && o + 4 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '_' || ch == '.' || ch == '-')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, n - o, "%%%02X", ch);
    }
    out[o] = '\0';
}

/* How many of the pool's sessions the server has (recorded ids that are
 * live, on PostgreSQL also sessions under the pool's application_name that
 * were never recorded); -1 when the query failed. */
static long long server_sessions(pool_t *observer) {
    char sql[512];
    pool_conn_t c;
    pool_result_t *res = NULL;
    int64_t a = -1, b = 0;
    if (g_kind == BACKEND_POSTGRES) {
        snprintf(sql, sizeof sql,
                 "SELECT (SELECT count(*) FROM pg_stat_activity a JOIN %s i ON a.pid = i.id"
                 " WHERE a.application_name = '%s'),"
                 " (SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s')",
                 g_ids, g_marker, g_marker);
    } else {
        snprintf(sql, sizeof sql,
                 "SELECT count(*), 0 FROM information_schema.PROCESSLIST p JOIN %s i"
                 " ON p.ID = i.id",
                 g_ids);
    }
    if (!CHECK_OK(pool_connect(observer, &c))) return -1;
    if (CHECK_OK(pool_query(c, sql, NULL, 0, &res))) {
        CHECK_OK(pool_result_int64(res, 0, 0, &a));
        CHECK_OK(pool_result_int64(res, 0, 1, &b));
    }
    pool_result_free(res);
    CHECK_OK(pool_release(observer, c));
    return a > b ? a : b;
}

static long long count_ids(pool_t *observer) {
    pool_conn_t c;
    long long n = -1;
    if (!CHECK_OK(pool_connect(observer, &c))) return -1;
    n = count_rows(c, g_ids);
    CHECK_OK(pool_release(observer, c));
    return n;
}

/* Samples the server's count of our sessions. A session the pool has
 * closed can linger for a moment (the server ends it asynchronously) while
 * the pool already opened its replacement, so a count above the limit is a
 * failure only when it does not come back under it within 2 s. */
static void *monitor_main(void *arg) {
    pool_t *observer = (pool_t *)arg;
    unsigned long samples = 0, over = 0;
    while (atomic_load(&g_running)) {
        long long n = server_sessions(observer);
        samples++;
        if (n > MAX_CONNECTIONS) {
            double until = now_seconds() + 2.0;
            over++;
            while (n > MAX_CONNECTIONS && now_seconds() < until) {
                sleep_seconds(0.02);
                n = server_sessions(observer);
            }
            if (!CHECK(n <= MAX_CONNECTIONS))
                fprintf(stderr, "    server shows %lld sessions of the pool, max %d\n", n,
                        MAX_CONNECTIONS);
        }
        op_stats();
        sleep_seconds(0.1);
    }
    fprintf(stderr, "stress: server view sampled %lu times (%lu above max for a moment)\n",
            samples, over);
    return NULL;
}

#ifdef __linux__
/* Threads of this process named name (from /proc/self/task/<tid>/comm);
 * -1 when /proc cannot be read. */
static int threads_named(const char *name) {
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) {
        char path[300], comm[64] = "";
        FILE *f;
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        f = fopen(path, "r");
        if (!f) continue; /* the thread ended meanwhile */
        if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
        if (strcmp(comm, name) == 0) n++;
    }
    closedir(d);
    return n;
}
#endif

static pool_status_t exec_on(pool_t *pool, const char *sql) {
    pool_conn_t c;
    pool_status_t st = pool_connect(pool, &c);
    if (st != POOL_OK) return st;
    st = exec0(c, sql);
    CHECK_OK(pool_release(pool, c));
    return st;
}

static enum backend_kind kind_of(const char *url) {
    if (strncmp(url, "sqlite::memory:", 15) == 0) return BACKEND_SQLITE_MEMORY;
    if (strncmp(url, "sqlite", 6) == 0) return BACKEND_SQLITE;
    if (strncmp(url, "postgres", 8) == 0) return BACKEND_POSTGRES;
    return BACKEND_MYSQL;
}

int main(int argc, char **argv) {
    double seconds = 3.0;
    int nthreads = 32, i;
    uint64_t seed;
    struct worker *workers;
    pool_t *observer = NULL;
    pthread_t monitor;
    char sql[512], opts[1024], enc[512], url[2048];
    long long committed = 0;
    pool_stats_t s;

    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: %s <url> [seconds] [threads] [seed]\n", argv[0]);
        return 2;
    }
    g_url = argv[1];
    g_argv0 = argv[0];
    g_kind = kind_of(g_url);
    if (argc > 2) seconds = atof(argv[2]);
    if (argc > 3) nthreads = atoi(argv[3]);
    seed = argc > 4 ? strtoull(argv[4], NULL, 0)
                    : (uint64_t)time(NULL) * 2654435761ULL ^ (uint64_t)getpid();
    if (seconds <= 0 || nthreads <= 0 || nthreads > 1024) {
        fprintf(stderr, "stress: seconds must be > 0 and threads in 1..1024\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("stress: %s, %.1f s, %d threads, seed %" PRIu64 " (replay: %s '%s' %g %d %" PRIu64
           ")\n",
           g_url, seconds, nthreads, seed, argv[0], g_url, seconds, nthreads, seed);

    table_name(g_rows, sizeof g_rows, "stress_rows");
    table_name(g_ids, sizeof g_ids, "stress_ids");
    snprintf(g_marker, sizeof g_marker, "peepool_stress_%ld", (long)getpid());
    snprintf(opts, sizeof opts,
             "max_connections=%d&min_connections=%d&timeout=0.05&stale_timeout=2&stale_jitter=0.5"
             "&idle_timeout=0.5&check_idle=0.05",
             MAX_CONNECTIONS, MIN_CONNECTIONS);
    if (is_server()) {
        /* The tables exist before the pool opens its first connection. */
        observer = open_pool("max_connections=1&timeout=10");
        if (!observer) return check_summary();
        snprintf(sql, sizeof sql, "CREATE TABLE %s(id BIGINT)", g_ids);
        CHECK_OK(exec_on(observer, sql));
        snprintf(sql, sizeof sql, "CREATE TABLE %s(th INTEGER, v INTEGER)", g_rows);
        CHECK_OK(exec_on(observer, sql));
        snprintf(sql, sizeof sql, "INSERT INTO %s(id) VALUES (%s)", g_ids,
                 g_kind == BACKEND_POSTGRES ? "pg_backend_pid()" : "CONNECTION_ID()");
        url_encode(enc, sizeof enc, sql);
        snprintf(opts + strlen(opts), sizeof opts - strlen(opts), "&init_sql=%s%s%s", enc,
                 g_kind == BACKEND_POSTGRES ? "&application_name=" : "",
                 g_kind == BACKEND_POSTGRES ? g_marker : "");
    }
    url_with(url, sizeof url, opts);
    if (!CHECK_OK(pool_new(url, &g_pool))) {
        fprintf(stderr, "    (url: %s)\n", url);
        pool_free(observer);
        return check_summary();
    }
    if (is_sqlite()) {
        snprintf(sql, sizeof sql, "CREATE TABLE %s(th INTEGER, v INTEGER)", g_rows);
        CHECK_OK(exec_on(g_pool, sql));
    }

    workers = calloc((size_t)nthreads, sizeof *workers);
    if (!workers) return 2;
    g_deadline = now_seconds() + seconds;
    if (observer) pthread_create(&monitor, NULL, monitor_main, observer);
    for (i = 0; i < nthreads; i++) {
        workers[i].index = i;
        workers[i].rng = seed + (uint64_t)i * 0x9E3779B97F4A7C15ULL;
        if (workers[i].rng == 0) workers[i].rng = 1;
        pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
    }
    for (i = 0; i < nthreads; i++) {
        pthread_join(workers[i].thread, NULL);
        committed += workers[i].committed;
    }
    atomic_store(&g_running, 0);
    if (observer) pthread_join(monitor, NULL);
    free(workers);

    /* Quiescent: every handle is back, nobody waits. */
    if (CHECK_OK(pool_stats(g_pool, &s))) {
        check_stats(&s, "after the threads");
        CHECK_EQ(s.in_use, 0);
        CHECK_EQ(s.waiting, 0);
        CHECK(s.checkouts > 0);
        printf("stress: %lu ops, %" PRIu64 " checkouts, %" PRIu64 " opened, %" PRIu64
               " closed (stale %" PRIu64 ", idle %" PRIu64 ", dead %" PRIu64 ", manual %" PRIu64
               ", reclaimed %" PRIu64 ", cleared %" PRIu64 "), %lu exhausted, %lu reclaimed"
               " handles seen, %lu SQLite lock conflicts, %lld rows committed\n",
               atomic_load(&g_ops), s.checkouts, s.opened_total, s.closed_total, s.closed_stale,
               s.closed_idle, s.closed_dead, s.closed_manual, s.closed_reclaimed,
               s.closed_cleared, atomic_load(&g_exhausted), atomic_load(&g_reclaimed_seen),
               atomic_load(&g_locked), committed);
        CHECK_EQ(s.closed_dead, 0); /* nothing killed our connections */
    }
    {
        pool_conn_t c;
        if (CHECK_OK(pool_connect(g_pool, &c))) {
            CHECK_EQ(count_rows(c, g_rows), committed);
            if (is_sqlite()) {
                snprintf(sql, sizeof sql, "DROP TABLE %s", g_rows);
                CHECK_OK(exec0(c, sql));
            }
            CHECK_OK(pool_release(g_pool, c));
        }
    }
    CHECK_OK(pool_close_all(g_pool));
    if (CHECK_OK(pool_stats(g_pool, &s))) {
        check_stats(&s, "after pool_close_all");
        CHECK_EQ(s.in_use, 0);
    }
#ifdef __linux__
    /* min_connections starts a maintenance thread; it runs library code, so
     * it must be gone when pool_free returns (a program may dlclose the
     * library next). */
    CHECK_EQ(threads_named("peepool-maint"), 1);
#endif
    pool_free(g_pool);
#ifdef __linux__
    CHECK_EQ(threads_named("peepool-maint"), 0);
#endif

    if (observer) {
        /* Every session the pool ever opened is gone (the server ends a
         * session asynchronously: give it up to 10 s). */
        double until = now_seconds() + 10.0;
        long long live = server_sessions(observer), ids = count_ids(observer);
        while (live != 0 && now_seconds() < until) {
            sleep_seconds(0.05);
            live = server_sessions(observer);
        }
        printf("stress: the server recorded %lld sessions of the pool; %lld still live\n", ids,
               live);
        CHECK_EQ(live, 0);
        CHECK(ids >= (long long)s.opened_total);
        snprintf(sql, sizeof sql, "DROP TABLE %s", g_rows);
        CHECK_OK(exec_on(observer, sql));
        snprintf(sql, sizeof sql, "DROP TABLE %s", g_ids);
        CHECK_OK(exec_on(observer, sql));
        pool_free(observer);
    }
    return check_summary();
}
