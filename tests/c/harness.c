#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *g_url = NULL;
const char *g_argv0 = NULL;
enum backend_kind g_kind = BACKEND_SQLITE;

int is_sqlite(void) { return g_kind == BACKEND_SQLITE || g_kind == BACKEND_SQLITE_MEMORY; }
int is_server(void) { return g_kind == BACKEND_POSTGRES || g_kind == BACKEND_MYSQL; }
int behind_txn_pooler(void) {
    const char *env = getenv("PEEPOOL_TEST_TXN_POOLER");
    return env != NULL && strcmp(env, "1") == 0;
}

int zero_rows_lack_columns(void) {
    const char *opt = g_kind == BACKEND_POSTGRES ? strstr(g_url, "statement_cache=") : NULL;
    if (opt == NULL || (opt != g_url && opt[-1] != '?' && opt[-1] != '&')) return 0;
    opt += strlen("statement_cache=");
    return opt[0] == '0' && (opt[1] == '\0' || opt[1] == '&');
}

void url_with(char *out, size_t n, const char *options) {
    if (options == NULL || options[0] == '\0') {
        snprintf(out, n, "%s", g_url);
    } else {
        snprintf(out, n, "%s%c%s", g_url, strchr(g_url, '?') ? '&' : '?', options);
    }
}

pool_t *open_pool(const char *options) {
    char url[1024];
    pool_t *pool = NULL;
    url_with(url, sizeof url, options);
    if (!CHECK_OK(pool_new(url, &pool))) {
        fprintf(stderr, "    (url: %s)\n", url);
        return NULL;
    }
    CHECK(pool != NULL);
    return pool;
}

void sql_fmt(char *out, size_t n, const char *fmt, ...) {
    char tmp[4096];
    va_list ap;
    size_t i, o = 0;
    int k = 0;
    char quote = 0;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    for (i = 0; tmp[i] != '\0' && o + 12 < n; i++) {
        char ch = tmp[i];
        if (quote) {
            if (ch == quote) quote = 0;
            out[o++] = ch;
        } else if (ch == '\'' || ch == '"') {
            quote = ch;
            out[o++] = ch;
        } else if (ch == '?' && g_kind == BACKEND_POSTGRES) {
            o += (size_t)snprintf(out + o, n - o, "$%d", ++k);
        } else {
            out[o++] = ch;
        }
    }
    out[o] = '\0';
}

void table_name(char *out, size_t n, const char *suffix) {
    snprintf(out, n, "pp_%ld_%s", (long)getpid(), suffix);
}

const char *blob_type(void) { return g_kind == BACKEND_POSTGRES ? "BYTEA" : "BLOB"; }

void slow_sql(char *out, size_t n) {
    const char *env = getenv("PEEPOOL_TEST_SLOW_ROWS");
    long rows = env ? atol(env) : 3000000L;
    switch (g_kind) {
    case BACKEND_POSTGRES:
        snprintf(out, n, "SELECT pg_sleep(0.3)");
        break;
    case BACKEND_MYSQL:
        snprintf(out, n, "SELECT SLEEP(0.3)");
        break;
    default:
        snprintf(out, n,
                 "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %ld) "
                 "SELECT count(*) FROM c",
                 rows > 0 ? rows : 3000000L);
        break;
    }
}

pool_status_t exec0(pool_conn_t c, const char *sql) { return pool_execute(c, sql, NULL, 0, NULL); }

long long count_rows(pool_conn_t c, const char *table) {
    char sql[256];
    pool_result_t *res = NULL;
    int64_t v = -1;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    if (pool_query(c, sql, NULL, 0, &res) != POOL_OK) return -1;
    if (pool_result_rows(res) != 1 || pool_result_int64(res, 0, 0, &v) != POOL_OK) v = -1;
    pool_result_free(res);
    return (long long)v;
}

pool_stats_t stats_of(pool_t *pool) {
    pool_stats_t s;
    memset(&s, 0, sizeof s);
    CHECK_OK(pool_stats(pool, &s));
    return s;
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sleep_seconds(double s) {
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int wait_until(pool_t *pool, int (*pred)(const pool_stats_t *s, long long arg), long long arg,
               double timeout) {
    double end = now_seconds() + timeout;
    for (;;) {
        pool_stats_t s;
        memset(&s, 0, sizeof s);
        if (pool_stats(pool, &s) == POOL_OK && pred(&s, arg)) return 1;
        if (now_seconds() > end) return 0;
        sleep_seconds(0.01);
    }
}
