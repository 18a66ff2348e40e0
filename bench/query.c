/* query: checkout + statement + release, one thread, through peepool and
 * its peers, on SQLite in memory, PostgreSQL and MariaDB.
 *
 *   <peer>_<db>_select1   SELECT 1, read the one value back
 *   <peer>_<db>_param     SELECT ? / SELECT $1 with one int64 parameter
 *
 * peepool: pool_connect + pool_query + pool_result_int64 + pool_result_free
 * + pool_release. raw sqlite3: a prepared statement held by hand (step,
 * column, reset). libpq: PQexecParams on a held connection. libmariadb:
 * mysql_query + store_result on a held connection (select1) and a held
 * mysql_stmt (param). libzdb: getConnection + executeQuery (select1) or
 * prepareStatement + executeQuery (param, as a pool user must: its
 * statements die with the checkout) + Connection_close.
 *
 * Environment: BENCH_PG_URL (default
 * postgres://postgres@127.0.0.1:5432/test?sslmode=disable), BENCH_MYSQL_URL
 * (default mysql://root@127.0.0.1:3306/test), BENCH_ZDB_PG_URL,
 * BENCH_ZDB_MYSQL_URL (libzdb's spelling of the same servers; libzdb uses
 * no TLS unless use-ssl=true), BENCH_ONLY=sqlite|postgres|mysql (a
 * comma-separated subset). A server that cannot be reached is skipped.
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

struct pp_ctx {
    pool_t *pool;
    const char *sql;
    int param;
};

static int pp_query(void *vctx, long ops) {
    struct pp_ctx *ctx = vctx;
    long i;
    for (i = 0; i < ops; i++) {
        pool_conn_t c;
        pool_result_t *r = NULL;
        pool_value_t arg = pool_int64(i);
        int64_t v = -1;
        if (pool_connect(ctx->pool, &c) != POOL_OK) {
            fprintf(stderr, "pool_connect: %s\n", pool_last_error());
            return -1;
        }
        if (pool_query(c, ctx->sql, ctx->param ? &arg : NULL, ctx->param ? 1 : 0, &r) != POOL_OK) {
            fprintf(stderr, "pool_query: %s\n", pool_last_error());
            pool_release(ctx->pool, c);
            return -1;
        }
        pool_result_int64(r, 0, 0, &v);
        pool_result_free(r);
        if (pool_release(ctx->pool, c) != POOL_OK) return -1;
        if (v != (ctx->param ? i : 1)) {
            fprintf(stderr, "peepool: got %lld\n", (long long)v);
            return -1;
        }
    }
    return 0;
}

static void run_peepool(const char *db, const char *url, const char *param_sql, long ops) {
    char name[96];
    struct pp_ctx ctx;
    pool_conn_t c;
    if (pool_new(url, &ctx.pool) != POOL_OK) {
        printf("# peepool %s: pool_new(%s): %s (skipped)\n", db, url, pool_last_error());
        return;
    }
    if (pool_connect(ctx.pool, &c) != POOL_OK) {
        printf("# peepool %s: %s (skipped)\n", db, pool_last_error());
        pool_free(ctx.pool);
        return;
    }
    pool_release(ctx.pool, c);
    ctx.sql = "SELECT 1";
    ctx.param = 0;
    snprintf(name, sizeof name, "peepool_%s_select1", db);
    bench_run(name, pp_query, &ctx, ops);
    ctx.sql = param_sql;
    ctx.param = 1;
    snprintf(name, sizeof name, "peepool_%s_param", db);
    bench_run(name, pp_query, &ctx, ops);
    pool_free(ctx.pool);
}

/* The same with check_on_checkout=false (named peepool_nocheck_<db>_...):
 * how much of a server cycle the liveness check costs. */
static void run_peepool_nocheck(const char *db, const char *url, const char *param_sql, long ops) {
    char full[1024], label[64];
    snprintf(full, sizeof full, "%s%scheck_on_checkout=false", url, strchr(url, '?') ? "&" : "?");
    snprintf(label, sizeof label, "nocheck_%s", db);
    run_peepool(label, full, param_sql, ops);
}

/* ---- libzdb ------------------------------------------------------------- */

#ifdef HAVE_ZDB
struct zdb_ctx {
    ConnectionPool_T pool;
    const char *param_sql;
};

static int zdb_select1(void *vctx, long ops) {
    struct zdb_ctx *ctx = vctx;
    long i;
    for (i = 0; i < ops; i++) {
        Connection_T c = ConnectionPool_getConnection(ctx->pool);
        ResultSet_T r;
        if (!c) return -1;
        r = Connection_executeQuery(c, "SELECT 1");
        if (!ResultSet_next(r) || ResultSet_getLLong(r, 1) != 1) {
            Connection_close(c);
            return -1;
        }
        Connection_close(c);
    }
    return 0;
}

static int zdb_param(void *vctx, long ops) {
    struct zdb_ctx *ctx = vctx;
    long i;
    for (i = 0; i < ops; i++) {
        Connection_T c = ConnectionPool_getConnection(ctx->pool);
        PreparedStatement_T st;
        ResultSet_T r;
        if (!c) return -1;
        st = Connection_prepareStatement(c, "%s", ctx->param_sql);
        PreparedStatement_setLLong(st, 1, i);
        r = PreparedStatement_executeQuery(st);
        if (!ResultSet_next(r) || ResultSet_getLLong(r, 1) != i) {
            Connection_close(c);
            return -1;
        }
        Connection_close(c);
    }
    return 0;
}

/* ConnectionPool_start throws when it cannot connect; catch it here. */
static int zdb_start(ConnectionPool_T pool, const char *db) {
    volatile int ok = 1;
    TRY {
        ConnectionPool_start(pool);
    }
    ELSE {
        printf("# libzdb %s: %s (skipped)\n", db, Exception_frame.message);
        ok = 0;
    }
    END_TRY;
    return ok;
}

static void run_zdb(const char *db, const char *url_s, const char *param_sql, long ops) {
    char name[64];
    struct zdb_ctx ctx;
    URL_T url = URL_new(url_s);
    if (!url) {
        printf("# libzdb %s: bad URL %s (skipped)\n", db, url_s);
        return;
    }
    ctx.pool = ConnectionPool_new(url);
    ctx.param_sql = param_sql;
    ConnectionPool_setInitialConnections(ctx.pool, 1);
    ConnectionPool_setMaxConnections(ctx.pool, 4);
    if (zdb_start(ctx.pool, db)) {
        snprintf(name, sizeof name, "libzdb_%s_select1", db);
        bench_run(name, zdb_select1, &ctx, ops);
        snprintf(name, sizeof name, "libzdb_%s_param", db);
        bench_run(name, zdb_param, &ctx, ops);
        ConnectionPool_stop(ctx.pool);
    }
    ConnectionPool_free(&ctx.pool);
    URL_free(&url);
}
#endif

/* ---- raw sqlite3 -------------------------------------------------------- */

#ifdef HAVE_SQLITE3
static int raw_sqlite(void *vctx, long ops) {
    sqlite3_stmt *st = vctx;
    int param = sqlite3_bind_parameter_count(st) > 0;
    long i;
    for (i = 0; i < ops; i++) {
        if (param) sqlite3_bind_int64(st, 1, i);
        if (sqlite3_step(st) != SQLITE_ROW) return -1;
        if (sqlite3_column_int64(st, 0) != (param ? i : 1)) return -1;
        sqlite3_reset(st);
    }
    return 0;
}

static void run_raw_sqlite(long ops) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    printf("# sqlite3 (raw peer) %s\n", sqlite3_libversion());
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) return;
    if (sqlite3_prepare_v2(db, "SELECT 1", -1, &st, NULL) == SQLITE_OK)
        bench_run("raw_sqlite_select1", raw_sqlite, st, ops);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db, "SELECT ?", -1, &st, NULL) == SQLITE_OK)
        bench_run("raw_sqlite_param", raw_sqlite, st, ops);
    sqlite3_finalize(st);
    sqlite3_close(db);
}
#endif

/* ---- libpq --------------------------------------------------------------- */

#ifdef HAVE_LIBPQ
struct pq_ctx {
    PGconn *conn;
    int param;
};

static int raw_pq(void *vctx, long ops) {
    struct pq_ctx *ctx = vctx;
    long i;
    for (i = 0; i < ops; i++) {
        char buf[32];
        const char *vals[1];
        PGresult *r;
        long long v;
        snprintf(buf, sizeof buf, "%ld", i);
        vals[0] = buf;
        r = ctx->param ? PQexecParams(ctx->conn, "SELECT $1::int8", 1, NULL, vals, NULL, NULL, 0)
                       : PQexecParams(ctx->conn, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "libpq: %s\n", PQresultErrorMessage(r));
            PQclear(r);
            return -1;
        }
        v = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (v != (ctx->param ? i : 1)) return -1;
    }
    return 0;
}

static void run_raw_pq(const char *url, long ops) {
    struct pq_ctx ctx;
    ctx.conn = PQconnectdb(url);
    if (PQstatus(ctx.conn) != CONNECTION_OK) {
        printf("# libpq: %s (skipped)\n", PQerrorMessage(ctx.conn));
        PQfinish(ctx.conn);
        return;
    }
    printf("# libpq %d, server %d, TLS %s\n", PQlibVersion(), PQserverVersion(ctx.conn),
           PQsslInUse(ctx.conn) ? "on" : "off");
    ctx.param = 0;
    bench_run("libpq_postgres_select1", raw_pq, &ctx, ops);
    ctx.param = 1;
    bench_run("libpq_postgres_param", raw_pq, &ctx, ops);
    PQfinish(ctx.conn);
}
#endif

/* ---- libmariadb ----------------------------------------------------------- */

#ifdef HAVE_MARIADB
static int raw_my_query(void *vctx, long ops) {
    MYSQL *m = vctx;
    long i;
    for (i = 0; i < ops; i++) {
        MYSQL_RES *res;
        MYSQL_ROW row;
        if (mysql_query(m, "SELECT 1") != 0) {
            fprintf(stderr, "libmariadb: %s\n", mysql_error(m));
            return -1;
        }
        res = mysql_store_result(m);
        if (!res) return -1;
        row = mysql_fetch_row(res);
        if (!row || atoll(row[0]) != 1) {
            mysql_free_result(res);
            return -1;
        }
        mysql_free_result(res);
    }
    return 0;
}

static int raw_my_stmt(void *vctx, long ops) {
    MYSQL_STMT *st = vctx;
    long i;
    for (i = 0; i < ops; i++) {
        MYSQL_BIND in, out;
        long long arg = i, v = -1;
        memset(&in, 0, sizeof in);
        memset(&out, 0, sizeof out);
        in.buffer_type = MYSQL_TYPE_LONGLONG;
        in.buffer = &arg;
        out.buffer_type = MYSQL_TYPE_LONGLONG;
        out.buffer = &v;
        if (mysql_stmt_bind_param(st, &in) || mysql_stmt_execute(st) ||
            mysql_stmt_bind_result(st, &out) || mysql_stmt_fetch(st) != 0) {
            fprintf(stderr, "libmariadb stmt: %s\n", mysql_stmt_error(st));
            return -1;
        }
        while (mysql_stmt_fetch(st) == 0) {
        }
        mysql_stmt_free_result(st);
        if (v != i) return -1;
    }
    return 0;
}

static void run_raw_my(const char *url, long ops) {
    char user[64], pass[64], host[128], db[64];
    unsigned port;
    MYSQL *m;
    MYSQL_STMT *st;
    if (bench_parse_mysql_url(url, user, pass, host, &port, db) != 0) return;
    m = mysql_init(NULL);
    if (!mysql_real_connect(m, host, user, *pass ? pass : NULL, db, port, NULL, 0)) {
        printf("# libmariadb: %s (skipped)\n", mysql_error(m));
        mysql_close(m);
        return;
    }
    printf("# libmariadb %s, server %s, TLS %s\n", mysql_get_client_info(),
           mysql_get_server_info(m), mysql_get_ssl_cipher(m) ? "on" : "off");
    bench_run("libmariadb_mysql_select1", raw_my_query, m, ops);
    st = mysql_stmt_init(m);
    if (st && mysql_stmt_prepare(st, "SELECT ?", 8) == 0)
        bench_run("libmariadb_mysql_param", raw_my_stmt, st, ops);
    else
        fprintf(stderr, "libmariadb prepare: %s\n", mysql_error(m));
    if (st) mysql_stmt_close(st);
    mysql_close(m);
}
#endif

int main(void) {
    long local = bench_ops(200000), remote = bench_ops(2000);
    const char *pg = bench_env("BENCH_PG_URL", BENCH_PG_DEFAULT);
    const char *my = bench_env("BENCH_MYSQL_URL", BENCH_MYSQL_DEFAULT);

    printf("# peepool %s\n", pool_version());
    if (bench_wanted("sqlite")) {
        run_peepool("sqlite", "sqlite::memory:?max_connections=4", "SELECT ?", local);
#ifdef HAVE_SQLITE3
        run_raw_sqlite(local);
#else
        printf("# sqlite3: not found at configure time, skipped\n");
#endif
#ifdef HAVE_ZDB
        {
            char url_s[128];
            snprintf(url_s, sizeof url_s, "sqlite:///tmp/peepool_bench_query_%ld.db", (long)getpid());
            run_zdb("sqlite", url_s, "SELECT ?", local / 4);
            unlink(url_s + strlen("sqlite://"));
        }
#endif
    }
    if (bench_wanted("postgres")) {
        run_peepool("postgres", pg, "SELECT $1::int8", remote);
        run_peepool_nocheck("postgres", pg, "SELECT $1::int8", remote);
#ifdef HAVE_LIBPQ
        run_raw_pq(pg, remote);
#else
        printf("# libpq: not found at configure time, skipped\n");
#endif
#ifdef HAVE_ZDB
        /* libzdb's placeholders are '?' on every backend */
        run_zdb("postgres", bench_env("BENCH_ZDB_PG_URL", BENCH_ZDB_PG_DEFAULT),
                "SELECT ?::int8", remote);
#endif
    }
    if (bench_wanted("mysql")) {
        run_peepool("mysql", my, "SELECT ?", remote);
        run_peepool_nocheck("mysql", my, "SELECT ?", remote);
#ifdef HAVE_MARIADB
        run_raw_my(my, remote);
#else
        printf("# libmariadb: not found at configure time, skipped\n");
#endif
#ifdef HAVE_ZDB
        run_zdb("mysql", bench_env("BENCH_ZDB_MYSQL_URL", BENCH_ZDB_MYSQL_DEFAULT),
                "SELECT ?", remote);
#endif
    }
#ifndef HAVE_ZDB
    printf("# libzdb: not found at configure time, skipped\n");
#endif
    return 0;
}
