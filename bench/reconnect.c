/* reconnect: what a fresh connection costs, per backend, against a pooled
 * cycle. Every row does the same work per operation, a connection, one
 * `SELECT 1` read back, and the connection given up; only whether the
 * connection is new differs:
 *
 *   peepool_<db>_pooled        pool_connect + query + pool_release (reused)
 *   peepool_<db>_manual_close  pool_connect + query + pool_manual_close:
 *                              every checkout opens a new connection
 *   raw_<db>_connect           the raw client: sqlite3_open_v2 / PQconnectdb /
 *                              mysql_real_connect, the query, close
 *   libzdb_<db>_newpool        libzdb: a pool of one started, used once and
 *                              stopped (libzdb cannot close one connection on
 *                              demand: its inactivity timeout is >= 1 s)
 *
 * stale_timeout cannot force a new connection per cycle: peepool reads
 * CLOCK_MONOTONIC_COARSE (a tick of a few ms), so a connection opened and
 * released within one tick is not yet older than any lifetime; a first
 * version with stale_timeout=0.000001 saw 1 connection opened for 10,201
 * SQLite cycles and 30 for 511 PostgreSQL ones. manual_close is what a
 * user forcing reconnects would call.
 *
 * <db>: sqlite_file (a file in /tmp), sqlite_memory (peepool's
 * sqlite::memory:, a memdb database shared by the pool and kept alive by a
 * keeper connection; the raw peer opens the same kind of memdb database
 * next to a keeper of its own), postgres, mysql. After each peepool
 * reconnect series pool_stats must show a new connection per cycle, or the
 * row is not printed. Environment: as query.c (BENCH_PG_URL, ...,
 * BENCH_ONLY=sqlite|postgres|mysql).
 */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <peepool.h>
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

/* ---- peepool ------------------------------------------------------------ */

enum pp_mode { PP_POOLED, PP_MANUAL_CLOSE };

struct pp_ctx {
    pool_t *pool;
    enum pp_mode mode;
};

static int pp_cycle(void *vctx, long ops) {
    struct pp_ctx *ctx = vctx;
    long i;
    for (i = 0; i < ops; i++) {
        pool_conn_t c;
        pool_result_t *r = NULL;
        int64_t v = -1;
        if (pool_connect(ctx->pool, &c) != POOL_OK) {
            fprintf(stderr, "pool_connect: %s\n", pool_last_error());
            return -1;
        }
        if (pool_query(c, "SELECT 1", NULL, 0, &r) != POOL_OK) {
            fprintf(stderr, "pool_query: %s\n", pool_last_error());
            pool_manual_close(ctx->pool, c);
            return -1;
        }
        pool_result_int64(r, 0, 0, &v);
        pool_result_free(r);
        if ((ctx->mode == PP_MANUAL_CLOSE ? pool_manual_close(ctx->pool, c)
                                          : pool_release(ctx->pool, c)) != POOL_OK)
            return -1;
        if (v != 1) return -1;
    }
    return 0;
}

static uint64_t pp_opened(pool_t *pool) {
    pool_stats_t st;
    return pool_stats(pool, &st) == POOL_OK ? st.opened_total : 0;
}

/* One series on a fresh pool; for the reconnect mode, checks that every
 * cycle opened a connection (else the figure would be a pooled one). */
static void run_peepool(const char *db, const char *url, enum pp_mode mode, long ops) {
    static const char *const suffix[] = {"pooled", "manual_close"};
    char full[1024], name[96];
    struct pp_ctx ctx;
    uint64_t opened0;
    double median;
    long total = ops / 10 + 1 + (long)bench_runs() * ops;
    snprintf(full, sizeof full, "%s%smax_connections=4", url, strchr(url, '?') ? "&" : "?");
    snprintf(name, sizeof name, "peepool_%s_%s", db, suffix[mode]);
    if (pool_new(full, &ctx.pool) != POOL_OK) {
        printf("# %s: pool_new: %s (skipped)\n", name, pool_last_error());
        return;
    }
    ctx.mode = mode;
    if (pp_cycle(&ctx, 1) != 0) { /* reachable? */
        printf("# %s: %s (skipped)\n", name, pool_last_error());
        pool_free(ctx.pool);
        return;
    }
    opened0 = pp_opened(ctx.pool);
    if (bench_measure(name, pp_cycle, &ctx, ops, &median) == 0) {
        uint64_t opened = pp_opened(ctx.pool) - opened0;
        if (mode == PP_MANUAL_CLOSE && opened < (uint64_t)total)
            printf("# %s: only %llu connections opened for %ld cycles (not printed)\n", name,
                   (unsigned long long)opened, total);
        else
            printf("%s\t%.1f\t%ld\n", name, median, ops);
        fflush(stdout);
    }
    pool_free(ctx.pool);
}

/* ---- raw clients ---------------------------------------------------------- */

#ifdef HAVE_SQLITE3
static int raw_sqlite(void *vctx, long ops) {
    const char *uri = vctx;
    long i;
    for (i = 0; i < ops; i++) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int ok;
        if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                            NULL) != SQLITE_OK) {
            fprintf(stderr, "sqlite3_open_v2(%s): %s\n", uri, sqlite3_errmsg(db));
            sqlite3_close(db);
            return -1;
        }
        ok = sqlite3_prepare_v2(db, "SELECT 1", -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == 1;
        sqlite3_finalize(st);
        sqlite3_close(db);
        if (!ok) return -1;
    }
    return 0;
}
#endif

#ifdef HAVE_LIBPQ
static int raw_pq(void *vctx, long ops) {
    const char *url = vctx;
    long i;
    for (i = 0; i < ops; i++) {
        PGconn *c = PQconnectdb(url);
        PGresult *r;
        int ok;
        if (PQstatus(c) != CONNECTION_OK) {
            fprintf(stderr, "libpq: %s\n", PQerrorMessage(c));
            PQfinish(c);
            return -1;
        }
        r = PQexecParams(c, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
        ok = PQresultStatus(r) == PGRES_TUPLES_OK && atoll(PQgetvalue(r, 0, 0)) == 1;
        PQclear(r);
        PQfinish(c);
        if (!ok) return -1;
    }
    return 0;
}
#endif

#ifdef HAVE_MARIADB
struct my_target {
    char user[64], pass[64], host[128], db[64];
    unsigned port;
};

static int raw_my(void *vctx, long ops) {
    struct my_target *t = vctx;
    long i;
    for (i = 0; i < ops; i++) {
        MYSQL *m = mysql_init(NULL);
        MYSQL_RES *res;
        MYSQL_ROW row;
        int ok;
        if (!mysql_real_connect(m, t->host, t->user, *t->pass ? t->pass : NULL, t->db, t->port,
                                NULL, 0)) {
            fprintf(stderr, "libmariadb: %s\n", mysql_error(m));
            mysql_close(m);
            return -1;
        }
        ok = mysql_query(m, "SELECT 1") == 0 && (res = mysql_store_result(m)) != NULL;
        if (ok) {
            row = mysql_fetch_row(res);
            ok = row && atoll(row[0]) == 1;
            mysql_free_result(res);
        }
        mysql_close(m);
        if (!ok) return -1;
    }
    return 0;
}
#endif

/* ---- libzdb ----------------------------------------------------------------- */

#ifdef HAVE_ZDB
/* One pool of one, used once; its own function so that the setjmp behind
 * TRY cannot clobber the caller's loop counter. */
static int zdb_once(URL_T url) {
    ConnectionPool_T pool = ConnectionPool_new(url);
    volatile int ok = 1;
    ConnectionPool_setInitialConnections(pool, 1);
    ConnectionPool_setMaxConnections(pool, 1);
    TRY {
        Connection_T c;
        ResultSet_T r;
        ConnectionPool_start(pool);
        c = ConnectionPool_getConnection(pool);
        if (!c) {
            ok = 0;
        } else {
            r = Connection_executeQuery(c, "SELECT 1");
            ok = ResultSet_next(r) && ResultSet_getLLong(r, 1) == 1;
            Connection_close(c);
        }
    }
    ELSE {
        fprintf(stderr, "libzdb: %s\n", Exception_frame.message);
        ok = 0;
    }
    END_TRY;
    ConnectionPool_stop(pool);
    ConnectionPool_free(&pool);
    return ok ? 0 : -1;
}

static int zdb_newpool(void *vctx, long ops) {
    long i;
    for (i = 0; i < ops; i++)
        if (zdb_once(vctx) != 0) return -1;
    return 0;
}

static void run_zdb(const char *db, const char *url_s, long ops) {
    char name[64];
    URL_T url = URL_new(url_s);
    if (!url) {
        printf("# libzdb %s: bad URL (skipped)\n", db);
        return;
    }
    snprintf(name, sizeof name, "libzdb_%s_newpool", db);
    if (zdb_newpool(url, 1) == 0)
        bench_run(name, zdb_newpool, url, ops);
    else
        printf("# %s: cannot connect (skipped)\n", name);
    URL_free(&url);
}
#endif

static void run_all_peepool(const char *db, const char *url, long pooled_ops, long ops) {
    run_peepool(db, url, PP_POOLED, pooled_ops);
    run_peepool(db, url, PP_MANUAL_CLOSE, ops);
}

int main(void) {
    long local = bench_ops(2000), remote = bench_ops(100), pooled_remote = bench_ops(2000);
    const char *pg = bench_env("BENCH_PG_URL", BENCH_PG_DEFAULT);
    const char *my = bench_env("BENCH_MYSQL_URL", BENCH_MYSQL_DEFAULT);

    printf("# peepool %s\n", pool_version());
    if (bench_wanted("sqlite")) {
        char path[128], uri[160];
        snprintf(path, sizeof path, "/tmp/peepool_bench_reconnect_%ld.db", (long)getpid());
        snprintf(uri, sizeof uri, "sqlite:%s", path);
        run_all_peepool("sqlite_file", uri, local * 50, local);
        run_all_peepool("sqlite_memory", "sqlite::memory:", local * 50, local);
#ifdef HAVE_SQLITE3
        {
            char mem[96];
            sqlite3 *keeper = NULL;
            printf("# sqlite3 (raw peer) %s\n", sqlite3_libversion());
            snprintf(uri, sizeof uri, "file:%s", path);
            bench_run("raw_sqlite_file_connect", raw_sqlite, uri, local);
            /* As peepool's sqlite::memory:, a memdb database that a keeper
             * connection holds open, so each open attaches to it. */
            snprintf(mem, sizeof mem, "file:/peepool-bench-%ld?vfs=memdb", (long)getpid());
            if (sqlite3_open_v2(mem, &keeper,
                                SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                                NULL) == SQLITE_OK)
                bench_run("raw_sqlite_memory_connect", raw_sqlite, mem, local);
            else
                printf("# raw sqlite memdb: %s (skipped)\n", sqlite3_errmsg(keeper));
            sqlite3_close(keeper);
        }
#else
        printf("# sqlite3: not found at configure time, skipped\n");
#endif
#ifdef HAVE_ZDB
        snprintf(uri, sizeof uri, "sqlite://%s", path);
        run_zdb("sqlite_file", uri, local);
        printf("# libzdb sqlite_memory: no shared in-memory database in libzdb's URLs (skipped)\n");
#endif
        unlink(path);
    }
    if (bench_wanted("postgres")) {
        run_all_peepool("postgres", pg, pooled_remote, remote);
#ifdef HAVE_LIBPQ
        bench_run("raw_postgres_connect", raw_pq, (void *)pg, remote);
#else
        printf("# libpq: not found at configure time, skipped\n");
#endif
#ifdef HAVE_ZDB
        run_zdb("postgres", bench_env("BENCH_ZDB_PG_URL", BENCH_ZDB_PG_DEFAULT), remote);
#endif
    }
    if (bench_wanted("mysql")) {
        run_all_peepool("mysql", my, pooled_remote, remote);
#ifdef HAVE_MARIADB
        {
            struct my_target t;
            if (bench_parse_mysql_url(my, t.user, t.pass, t.host, &t.port, t.db) == 0)
                bench_run("raw_mysql_connect", raw_my, &t, remote);
        }
#else
        printf("# libmariadb: not found at configure time, skipped\n");
#endif
#ifdef HAVE_ZDB
        run_zdb("mysql", bench_env("BENCH_ZDB_MYSQL_URL", BENCH_ZDB_MYSQL_DEFAULT), remote);
#endif
    }
#ifndef HAVE_ZDB
    printf("# libzdb: not found at configure time, skipped\n");
#endif
    return 0;
}
