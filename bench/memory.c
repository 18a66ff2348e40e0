/* memory: resident memory per idle connection, per backend, through peepool
 * and its peers. One line per peer and backend:
 *
 *   mem_<peer>_<db>  <median bytes per connection>  <connections>
 *
 * (the second column is bytes, not ns). Each measurement runs in a child
 * forked from this process before it opened anything, so every one starts
 * from the same heap: memory freed by an earlier measurement cannot be
 * reused and hide a later one's cost. The child opens one connection and
 * runs `SELECT 1` on it (libraries initialised, pool threads started),
 * reads VmRSS from /proc/self/statm, opens N more connections that each run
 * `SELECT 1` and then sit idle (in the pool for the pools, held open for
 * the raw clients), reads VmRSS again, and reports the difference / N.
 *
 *   peepool  N+1 checkouts held at once (the first reuses the baseline
 *            connection), each with a SELECT 1, then all released: N+1 idle
 *            connections (pool_stats must agree)
 *   raw      N more sqlite3 / PGconn / MYSQL handles held open
 *   libzdb   N+1 getConnection held at once, each with a SELECT 1, then all
 *            closed (back to the pool, idle)
 *
 * <db>: sqlite_file, sqlite_memory (peepool's shared memdb database; the
 * raw peer opens the same kind of database next to a keeper connection),
 * postgres, mysql. N is BENCH_MEM_CONNS (default 20). Client side only:
 * the server's memory per connection (a PostgreSQL backend process, a
 * MariaDB thread) is not counted. Environment: as query.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <peepool.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef HAVE_ZDB
#include <zdb.h>
#endif
#ifdef HAVE_SQLITE3
#include <sqlite3.h>
#endif
#ifdef HAVE_LIBPQ
#include <libpq-fe.h>
#endif
#ifdef HAVE_MARIADB
#include <mysql.h>
#endif

#define MAX_CONNS 256

static long rss_bytes(void) {
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* What a child measures: open(i) opens connection i (i = 0 is the
 * baseline one) and runs SELECT 1 on it; settle() makes the opened ones
 * idle; close_all() frees everything. Each returns 0 on success. */
struct target {
    const char *url;
    int n;
    int (*open)(struct target *t, int i);
    int (*settle)(struct target *t);
    void (*close_all)(struct target *t);
    void *state;
};

/* In the child: the per-connection bytes, or a negative value on failure. */
static double measure(struct target *t) {
    long before, after;
    int i;
    if (t->open(t, 0) != 0) return -1;
    before = rss_bytes();
    for (i = 1; i <= t->n; i++)
        if (t->open(t, i) != 0) return -1;
    if (t->settle && t->settle(t) != 0) return -1;
    after = rss_bytes();
    t->close_all(t);
    if (before < 0 || after < 0) return -1;
    return (double)(after - before) / (double)t->n;
}

/* Runs `measure` in BENCH_RUNS children, prints the median. */
static void run(const char *name, struct target *t) {
    double v[BENCH_MAX_RUNS];
    int runs = bench_runs(), i;
    for (i = 0; i < runs; i++) {
        int fd[2], status;
        double got = -1;
        pid_t pid;
        if (pipe(fd) != 0) return;
        fflush(stdout);
        pid = fork();
        if (pid < 0) return;
        if (pid == 0) {
            double r;
            close(fd[0]);
            r = measure(t);
            if (write(fd[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(2);
            _exit(0);
        }
        close(fd[1]);
        if (read(fd[0], &got, sizeof got) != (ssize_t)sizeof got) got = -1;
        close(fd[0]);
        waitpid(pid, &status, 0);
        if (got < 0) {
            printf("# %s: failed in run %d (skipped)\n", name, i);
            return;
        }
        v[i] = got;
    }
    printf("%s\t%.0f\t%d\n", name, bench_median(v, runs), t->n);
    fflush(stdout);
}

/* ---- peepool ------------------------------------------------------------ */

struct pp_state {
    pool_t *pool;
    pool_conn_t held[MAX_CONNS + 2];
};

static int select1(pool_conn_t c) {
    pool_result_t *r = NULL;
    int64_t v = -1;
    if (pool_query(c, "SELECT 1", NULL, 0, &r) != POOL_OK) {
        fprintf(stderr, "pool_query: %s\n", pool_last_error());
        return -1;
    }
    pool_result_int64(r, 0, 0, &v);
    pool_result_free(r);
    return v == 1 ? 0 : -1;
}

static int pp_open(struct target *t, int i) {
    struct pp_state *s = t->state;
    if (i == 0) {
        char url[1024];
        snprintf(url, sizeof url, "%s%smax_connections=%d", t->url, strchr(t->url, '?') ? "&" : "?",
                 t->n + 1);
        if (pool_new(url, &s->pool) != POOL_OK) {
            fprintf(stderr, "pool_new: %s\n", pool_last_error());
            return -1;
        }
    }
    if (pool_connect(s->pool, &s->held[i]) != POOL_OK) {
        fprintf(stderr, "pool_connect: %s\n", pool_last_error());
        return -1;
    }
    if (select1(s->held[i]) != 0) return -1;
    /* The baseline connection goes back at once and is reused as the
     * first of the N + 1 held below, so N new ones are opened after it. */
    if (i == 0) return pool_release(s->pool, s->held[0]) == POOL_OK ? 0 : -1;
    return 0;
}

static int pp_settle(struct target *t) {
    struct pp_state *s = t->state;
    pool_stats_t st;
    int i;
    /* held[1..n] took the baseline connection and n - 1 new ones; one more
     * makes n new connections on top of the baseline. */
    if (pp_open(t, t->n + 1) != 0) return -1;
    for (i = 1; i <= t->n + 1; i++)
        if (pool_release(s->pool, s->held[i]) != POOL_OK) return -1;
    if (pool_stats(s->pool, &st) != POOL_OK || st.idle != (uint64_t)t->n + 1) {
        fprintf(stderr, "peepool: %llu idle, expected %d\n", (unsigned long long)st.idle, t->n + 1);
        return -1;
    }
    return 0;
}

static void pp_close(struct target *t) {
    struct pp_state *s = t->state;
    pool_free(s->pool);
}

static void run_peepool(const char *db, const char *url, int n) {
    static struct pp_state s;
    struct target t = {url, n, pp_open, pp_settle, pp_close, &s};
    char name[64];
    snprintf(name, sizeof name, "mem_peepool_%s", db);
    run(name, &t);
}

/* ---- raw sqlite3 -------------------------------------------------------- */

#ifdef HAVE_SQLITE3
static sqlite3 *sq_held[MAX_CONNS + 2];

static int sq_open(struct target *t, int i) {
    sqlite3_stmt *st = NULL;
    int ok;
    if (i == 0 && strstr(t->url, "vfs=memdb")) {
        /* the keeper, as peepool's sqlite::memory: has */
        if (sqlite3_open_v2(t->url, &sq_held[MAX_CONNS + 1],
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                            NULL) != SQLITE_OK)
            return -1;
    }
    if (sqlite3_open_v2(t->url, &sq_held[i],
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                        NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite3_open_v2: %s\n", sqlite3_errmsg(sq_held[i]));
        return -1;
    }
    ok = sqlite3_prepare_v2(sq_held[i], "SELECT 1", -1, &st, NULL) == SQLITE_OK &&
         sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == 1;
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

static void sq_close(struct target *t) {
    int i;
    for (i = 0; i <= t->n; i++) sqlite3_close(sq_held[i]);
    sqlite3_close(sq_held[MAX_CONNS + 1]);
}
#endif

/* ---- libpq --------------------------------------------------------------- */

#ifdef HAVE_LIBPQ
static PGconn *pq_held[MAX_CONNS + 1];

static int pq_open(struct target *t, int i) {
    PGresult *r;
    int ok;
    pq_held[i] = PQconnectdb(t->url);
    if (PQstatus(pq_held[i]) != CONNECTION_OK) {
        fprintf(stderr, "libpq: %s\n", PQerrorMessage(pq_held[i]));
        return -1;
    }
    r = PQexecParams(pq_held[i], "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
    ok = PQresultStatus(r) == PGRES_TUPLES_OK && atoll(PQgetvalue(r, 0, 0)) == 1;
    PQclear(r);
    return ok ? 0 : -1;
}

static void pq_close(struct target *t) {
    int i;
    for (i = 0; i <= t->n; i++) PQfinish(pq_held[i]);
}
#endif

/* ---- libmariadb ----------------------------------------------------------- */

#ifdef HAVE_MARIADB
static MYSQL *my_held[MAX_CONNS + 1];

static int my_open(struct target *t, int i) {
    char user[64], pass[64], host[128], db[64];
    unsigned port;
    MYSQL_RES *res;
    MYSQL_ROW row;
    int ok;
    if (bench_parse_mysql_url(t->url, user, pass, host, &port, db) != 0) return -1;
    my_held[i] = mysql_init(NULL);
    if (!mysql_real_connect(my_held[i], host, user, *pass ? pass : NULL, db, port, NULL, 0)) {
        fprintf(stderr, "libmariadb: %s\n", mysql_error(my_held[i]));
        return -1;
    }
    if (mysql_query(my_held[i], "SELECT 1") != 0) return -1;
    res = mysql_store_result(my_held[i]);
    if (!res) return -1;
    row = mysql_fetch_row(res);
    ok = row && atoll(row[0]) == 1;
    mysql_free_result(res);
    return ok ? 0 : -1;
}

static void my_close(struct target *t) {
    int i;
    for (i = 0; i <= t->n; i++) mysql_close(my_held[i]);
}
#endif

/* ---- libzdb ------------------------------------------------------------- */

#ifdef HAVE_ZDB
static ConnectionPool_T zdb_pool;
static URL_T zdb_url;
static Connection_T zdb_held[MAX_CONNS + 2];

/* Outside the loops that call it, so the setjmp behind TRY cannot clobber
 * their counters. */
static int zdb_open(struct target *t, int i) {
    volatile int ok = 1;
    if (i == 0) {
        zdb_url = URL_new(t->url);
        if (!zdb_url) return -1;
        zdb_pool = ConnectionPool_new(zdb_url);
        ConnectionPool_setInitialConnections(zdb_pool, 1);
        ConnectionPool_setMaxConnections(zdb_pool, t->n + 1);
    }
    TRY {
        ResultSet_T r;
        if (i == 0) ConnectionPool_start(zdb_pool);
        zdb_held[i] = ConnectionPool_getConnection(zdb_pool);
        if (!zdb_held[i]) {
            ok = 0;
        } else {
            r = Connection_executeQuery(zdb_held[i], "SELECT 1");
            ok = ResultSet_next(r) && ResultSet_getLLong(r, 1) == 1;
        }
    }
    ELSE {
        fprintf(stderr, "libzdb: %s\n", Exception_frame.message);
        ok = 0;
    }
    END_TRY;
    /* as with peepool: the baseline connection is reused by the first of
     * the held ones */
    if (ok && i == 0) Connection_close(zdb_held[0]);
    return ok ? 0 : -1;
}

static int zdb_settle(struct target *t) {
    int i;
    /* as for peepool: one more makes n new connections on top of the
     * baseline */
    if (zdb_open(t, t->n + 1) != 0) return -1;
    for (i = 1; i <= t->n + 1; i++) Connection_close(zdb_held[i]);
    return ConnectionPool_size(zdb_pool) == t->n + 1 ? 0 : -1;
}

static void zdb_close(struct target *t) {
    (void)t;
    ConnectionPool_stop(zdb_pool);
    ConnectionPool_free(&zdb_pool);
    URL_free(&zdb_url);
}

static void run_zdb(const char *db, const char *url, int n) {
    struct target t = {url, n, zdb_open, zdb_settle, zdb_close, NULL};
    char name[64];
    snprintf(name, sizeof name, "mem_libzdb_%s", db);
    run(name, &t);
}
#endif

int main(void) {
    int n = atoi(bench_env("BENCH_MEM_CONNS", "20"));
    const char *pg = bench_env("BENCH_PG_URL", BENCH_PG_DEFAULT);
    const char *my = bench_env("BENCH_MYSQL_URL", BENCH_MYSQL_DEFAULT);
    if (n < 1) n = 1;
    if (n > MAX_CONNS - 1) n = MAX_CONNS - 1;

    printf("# peepool %s, %d idle connections per measurement, bytes of VmRSS each\n",
           pool_version(), n);
    if (bench_wanted("sqlite")) {
        char path[128], url[160];
        snprintf(path, sizeof path, "/tmp/peepool_bench_memory_%ld.db", (long)getpid());
        snprintf(url, sizeof url, "sqlite:%s", path);
        run_peepool("sqlite_file", url, n);
        run_peepool("sqlite_memory", "sqlite::memory:", n);
#ifdef HAVE_SQLITE3
        {
            struct target t = {NULL, n, sq_open, NULL, sq_close, NULL};
            char uri[160], mem[96];
            snprintf(uri, sizeof uri, "file:%s", path);
            t.url = uri;
            run("mem_raw_sqlite_file", &t);
            snprintf(mem, sizeof mem, "file:/peepool-bench-%ld?vfs=memdb", (long)getpid());
            t.url = mem;
            run("mem_raw_sqlite_memory", &t);
        }
#endif
#ifdef HAVE_ZDB
        snprintf(url, sizeof url, "sqlite://%s", path);
        run_zdb("sqlite_file", url, n);
#endif
        unlink(path);
    }
    if (bench_wanted("postgres")) {
        run_peepool("postgres", pg, n);
#ifdef HAVE_LIBPQ
        {
            struct target t = {pg, n, pq_open, NULL, pq_close, NULL};
            run("mem_raw_postgres", &t);
        }
#endif
#ifdef HAVE_ZDB
        run_zdb("postgres", bench_env("BENCH_ZDB_PG_URL", BENCH_ZDB_PG_DEFAULT), n);
#endif
    }
    if (bench_wanted("mysql")) {
        run_peepool("mysql", my, n);
#ifdef HAVE_MARIADB
        {
            struct target t = {my, n, my_open, NULL, my_close, NULL};
            run("mem_raw_mysql", &t);
        }
#endif
#ifdef HAVE_ZDB
        run_zdb("mysql", bench_env("BENCH_ZDB_MYSQL_URL", BENCH_ZDB_MYSQL_DEFAULT), n);
#endif
    }
    return 0;
}
