/* Misuse through the C ABI: NULL for every pointer argument, invalid UTF-8,
 * stale / double-released / foreign / forged / null handles, malformed URLs,
 * unknown options and bad option values. Never undefined behaviour: a status
 * code and a message that names the bad argument. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void null_pointers(pool_t *pool) {
    pool_t *p = (pool_t *)&p;
    pool_conn_t c, good;
    pool_stats_t s;
    size_t n = 5;
    pool_result_t *res = (pool_result_t *)&n;
    pool_value_t one = pool_int64(1);
    const char *str = "x";
    const void *data = &n;
    size_t len = 3;
    uint32_t type = 9;
    bool isnull = true;
    int64_t i64 = 3;
    double f64 = 3;

    CHECK_STATUS(pool_new(NULL, &p), POOL_ERR_INVALID_ARGUMENT);
    CHECK(p == NULL);
    CHECK_CONTAINS(pool_last_error(), "url");
    CHECK_STATUS(pool_new("sqlite::memory:", NULL), POOL_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pool_last_error(), "out");
    pool_free(NULL);

    c.id = 9;
    CHECK_STATUS(pool_connect(NULL, &c), POOL_ERR_INVALID_ARGUMENT);
    CHECK_EQ(c.id, 0);
    CHECK_CONTAINS(pool_last_error(), "pool");
    CHECK_STATUS(pool_connect(pool, NULL), POOL_ERR_INVALID_ARGUMENT);
    CHECK_EQ(stats_of(pool).in_use, 0); /* nothing leaked */
    if (!CHECK_OK(pool_connect(pool, &good))) return;
    CHECK_STATUS(pool_release(NULL, good), POOL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(pool_manual_close(NULL, good), POOL_ERR_INVALID_ARGUMENT);
    n = 5;
    CHECK_STATUS(pool_close_idle(NULL, &n), POOL_ERR_INVALID_ARGUMENT);
    CHECK_EQ(n, 0);
    CHECK_STATUS(pool_close_stale(NULL, 1.0, &n), POOL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(pool_close_all(NULL), POOL_ERR_INVALID_ARGUMENT);
    c.id = 9;
    CHECK_STATUS(pool_thread_connect(NULL, &c), POOL_ERR_INVALID_ARGUMENT);
    CHECK_EQ(c.id, 0);
    CHECK_STATUS(pool_thread_connect(pool, NULL), POOL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(pool_thread_release(NULL), POOL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(pool_stats(NULL, &s), POOL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(pool_stats(pool, NULL), POOL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(pool_set_logger(NULL, NULL, NULL), POOL_ERR_INVALID_ARGUMENT);
    CHECK_OK(pool_set_logger(pool, NULL, NULL)); /* fn NULL: remove */

    CHECK_STATUS(pool_execute(good, NULL, NULL, 0, NULL), POOL_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pool_last_error(), "sql");
    CHECK_STATUS(pool_execute(good, "SELECT 1", NULL, 1, NULL), POOL_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pool_last_error(), "params");
    CHECK_OK(pool_execute(good, "SELECT 1", NULL, 0, NULL)); /* params NULL ok with 0 */
    CHECK_STATUS(pool_query(good, NULL, NULL, 0, &res), POOL_ERR_INVALID_ARGUMENT);
    CHECK(res == NULL);
    res = (pool_result_t *)&n;
    CHECK_STATUS(pool_query(good, "SELECT 1", NULL, 1, &res), POOL_ERR_INVALID_ARGUMENT);
    CHECK(res == NULL);
    CHECK_STATUS(pool_query(good, "SELECT 1", NULL, 0, NULL), POOL_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pool_last_error(), "out");
    {
        /* a bad value: unknown type, text with NULL data and a length */
        pool_value_t bad = one;
        bad.type = 99;
        CHECK_STATUS(pool_execute(good, "SELECT 1", &bad, 1, NULL), POOL_ERR_INVALID_ARGUMENT);
        bad.type = POOL_TYPE_TEXT;
        bad.data = NULL;
        bad.len = 4;
        CHECK_STATUS(pool_execute(good, "SELECT 1", &bad, 1, NULL), POOL_ERR_INVALID_ARGUMENT);
        CHECK_CONTAINS(pool_last_error(), "parameter 1");
        bad.type = POOL_TYPE_BLOB;
        CHECK_STATUS(pool_execute(good, "SELECT 1", &bad, 1, NULL), POOL_ERR_INVALID_ARGUMENT);
    }

    CHECK_EQ(pool_result_rows(NULL), 0);
    CHECK_EQ(pool_result_columns(NULL), 0);
    CHECK_STATUS(pool_result_column_name(NULL, 0, &str), POOL_ERR_INVALID_ARGUMENT);
    CHECK(str == NULL);
    CHECK_STATUS(pool_result_type(NULL, 0, 0, &type), POOL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(pool_result_is_null(NULL, 0, 0, &isnull), POOL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(pool_result_int64(NULL, 0, 0, &i64), POOL_ERR_INVALID_ARGUMENT);
    CHECK_EQ(i64, 0);
    CHECK_STATUS(pool_result_double(NULL, 0, 0, &f64), POOL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(pool_result_text(NULL, 0, 0, &str, &len), POOL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(pool_result_blob(NULL, 0, 0, &data, &len), POOL_ERR_INVALID_ARGUMENT);
    CHECK(data == NULL);
    pool_result_free(NULL);
    res = NULL;
    if (CHECK_OK(pool_query(good, "SELECT 1 AS one", NULL, 0, &res))) {
        CHECK_STATUS(pool_result_column_name(res, 0, NULL), POOL_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(pool_result_type(res, 0, 0, NULL), POOL_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(pool_result_is_null(res, 0, 0, NULL), POOL_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(pool_result_int64(res, 0, 0, NULL), POOL_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(pool_result_double(res, 0, 0, NULL), POOL_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(pool_result_text(res, 0, 0, NULL, &len), POOL_ERR_INVALID_ARGUMENT);
        CHECK_OK(pool_result_text(res, 0, 0, &str, NULL)); /* len may be NULL */
        CHECK_STATUS(pool_result_blob(res, 0, 0, NULL, &len), POOL_ERR_INVALID_ARGUMENT);
        pool_result_free(res);
    }
    CHECK_OK(pool_release(pool, good));
}

static void invalid_utf8(pool_t *pool) {
    pool_t *p = NULL;
    pool_conn_t c;
    pool_value_t v[2];
    pool_result_t *res = NULL;
    CHECK_STATUS(pool_new("sqlite:\xff\xfe.db", &p), POOL_ERR_INVALID_ARGUMENT);
    CHECK(p == NULL);
    CHECK_CONTAINS(pool_last_error(), "url");
    CHECK_CONTAINS(pool_last_error(), "UTF-8");
    if (!CHECK_OK(pool_connect(pool, &c))) return;
    CHECK_STATUS(exec0(c, "SELECT '\xc3\x28'"), POOL_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pool_last_error(), "sql");
    CHECK_STATUS(pool_query(c, "SELECT '\xc3\x28'", NULL, 0, &res), POOL_ERR_INVALID_ARGUMENT);
    v[0] = pool_int64(1);
    v[1] = pool_text("ok\xff");
    CHECK_STATUS(pool_query(c, g_kind == BACKEND_POSTGRES ? "SELECT $1, $2" : "SELECT ?, ?", v, 2,
                            &res),
                 POOL_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pool_last_error(), "parameter 2");
    CHECK(res == NULL);
    CHECK_OK(exec0(c, "SELECT 1")); /* the connection is unharmed */
    CHECK_OK(pool_release(pool, c));
}

static void bad_handles(pool_t *pool) {
    pool_t *other = open_pool("");
    pool_conn_t c, nullh, forged;
    int i;
    if (!other) return;
    if (!CHECK_OK(pool_connect(pool, &c))) return;
    /* release to the wrong pool: refused, and the handle stays good */
    CHECK_STATUS(pool_release(other, c), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(pool_manual_close(other, c), POOL_ERR_INVALID_HANDLE);
    CHECK_OK(exec0(c, "SELECT 1"));
    CHECK_OK(pool_release(pool, c));
    /* double release, use after release */
    CHECK_STATUS(pool_release(pool, c), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(exec0(c, "SELECT 1"), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(pool_begin(c), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(pool_commit(c), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(pool_rollback(c), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(pool_manual_close(pool, c), POOL_ERR_INVALID_HANDLE);
    {
        /* the slot is reused with a new generation: the old id stays dead */
        pool_conn_t again;
        CHECK_OK(pool_connect(pool, &again));
        CHECK(again.id != c.id);
        CHECK_STATUS(exec0(c, "SELECT 1"), POOL_ERR_INVALID_HANDLE);
        CHECK_OK(exec0(again, "SELECT 1"));
        CHECK_OK(pool_release(pool, again));
    }
    /* the null handle */
    nullh.id = 0;
    CHECK_STATUS(exec0(nullh, "SELECT 1"), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(pool_release(pool, nullh), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(pool_begin(nullh), POOL_ERR_INVALID_HANDLE);
    /* forged ids */
    srand((unsigned)getpid());
    for (i = 0; i < 50; i++) {
        forged.id = ((uint64_t)rand() << 40) ^ ((uint64_t)rand() << 20) ^ (uint64_t)rand();
        forged.id |= 1;
        CHECK_STATUS(exec0(forged, "SELECT 1"), POOL_ERR_INVALID_HANDLE);
        CHECK_STATUS(pool_release(pool, forged), POOL_ERR_INVALID_HANDLE);
    }
    forged.id = UINT64_MAX;
    CHECK_STATUS(pool_commit(forged), POOL_ERR_INVALID_HANDLE);
    CHECK_EQ(stats_of(pool).in_use, 0);
    pool_free(other);
}

static void bad_urls_and_options(void) {
    static const char *malformed[] = {
        "", "sqlite", "nosuchscheme://host/db", "://host/db", ":memory:",
        "sqlite::memory:?max_connections=%zz", "sqlite::memory:?%ff=1",
    };
    static const struct {
        const char *options;
        const char *name;
    } bad_values[] = {
        {"max_connections=-1", "max_connections"},
        {"max_connections=abc", "max_connections"},
        {"min_connections=5&max_connections=2", "min_connections"},
        {"stale_timeout=-3", "stale_timeout"},
        {"stale_jitter=1", "stale_jitter"},
        {"idle_timeout=nan", "idle_timeout"},
        {"timeout=soon", "timeout"},
        {"timeout=-1", "timeout"},
        {"connect_timeout=x", "connect_timeout"},
        {"check_on_checkout=maybe", "check_on_checkout"},
        {"check_idle=-1", "check_idle"},
        {"statement_cache=-1", "statement_cache"},
        {"leak_threshold=inf", "leak_threshold"},
        {"timeout=1&timeout=2", "timeout"},
    };
    size_t i;
    char url[1024];
    pool_t *p;
    for (i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        p = (pool_t *)&p;
        if (!CHECK_STATUS(pool_new(malformed[i], &p), POOL_ERR_CONFIG))
            fprintf(stderr, "    (url: \"%s\")\n", malformed[i]);
        CHECK(p == NULL);
        CHECK(strlen(pool_last_error()) > 0);
        if (p && p != (pool_t *)&p) pool_free(p);
    }
    url_with(url, sizeof url, "bogus_option=1");
    p = NULL;
    CHECK_STATUS(pool_new(url, &p), POOL_ERR_CONFIG);
    CHECK_CONTAINS(pool_last_error(), "bogus_option");
    pool_free(p);
    for (i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        url_with(url, sizeof url, bad_values[i].options);
        p = NULL;
        if (!CHECK_STATUS(pool_new(url, &p), POOL_ERR_CONFIG))
            fprintf(stderr, "    (url: \"%s\")\n", url);
        CHECK_CONTAINS(pool_last_error(), bad_values[i].name);
        pool_free(p);
    }
    /* every option accepted with a good value (statement_cache only when the
     * URL under test does not set it already: an option given twice is an error) */
    url_with(url, sizeof url,
             strstr(g_url, "statement_cache=") != NULL
                 ? "max_connections=5&min_connections=0&stale_timeout=300&stale_jitter=0.1&"
                   "idle_timeout=60&timeout=inf&connect_timeout=5&check_on_checkout=yes&"
                   "check_idle=0.5&init_sql=&leak_threshold=30"
                 : "max_connections=5&min_connections=0&stale_timeout=300&stale_jitter=0.1&"
                   "idle_timeout=60&timeout=inf&connect_timeout=5&check_on_checkout=yes&"
                   "check_idle=0.5&init_sql=&statement_cache=0&leak_threshold=30");
    p = NULL;
    CHECK_OK(pool_new(url, &p));
    pool_free(p);
}

void test_misuse(void) {
    pool_t *pool = open_pool("");
    if (!pool) return;
    null_pointers(pool);
    invalid_utf8(pool);
    bad_handles(pool);
    bad_urls_and_options();
    CHECK_EQ(stats_of(pool).in_use, 0);
    pool_free(pool);
}
