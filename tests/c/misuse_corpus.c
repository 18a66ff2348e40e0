/* The misuse corpus: one named case per way a C caller can get the ABI
 * wrong, each checked against the status documented in include/peepool.h
 * (DESIGN.md section 3a) and for a message that names the cause; after
 * every case the pool must still work and hold nothing.
 *
 *   misuse_corpus <url>        e.g. sqlite::memory:,
 *                              postgres://postgres@127.0.0.1:5432/test
 *
 * Prints each case with its result and the number of cases; meant to run
 * under valgrind or AddressSanitizer as well. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

CHECK_DEFINE_COUNTERS;

static pool_t *P; /* the pool every case may use, over the URL under test */

/* st must be want; on failure the message must be non-empty and contain
 * needle (when given). */
static void expect_at(pool_status_t st, pool_status_t want, const char *needle, const char *file,
                      int line) {
    char what[256];
    const char *msg = pool_last_error();
    snprintf(what, sizeof what, "status %d (%s), expected %d (%s)", (int)st, pool_status_str(st),
             (int)want, pool_status_str(want));
    check_record(st == want, file, line, what, NULL);
    if (want != POOL_OK) {
        check_record(msg != NULL && msg[0] != '\0', file, line, "the message is not empty", NULL);
        if (needle) check_contains_record(msg, needle, file, line, "pool_last_error()");
    }
}
#define EXPECT(st, want, needle) expect_at((st), (want), (needle), __FILE__, __LINE__)

static pool_conn_t take(void) {
    pool_conn_t c = {0};
    CHECK_OK(pool_connect(P, &c));
    return c;
}

static void give(pool_conn_t c) { CHECK_OK(pool_release(P, c)); }

/* A query that gives one row: "SELECT 1 AS one, NULL AS nul, 'abc' AS word". */
static pool_result_t *one_row(void) {
    pool_conn_t c = take();
    pool_result_t *res = NULL;
    CHECK_OK(pool_query(c, "SELECT 1 AS one, NULL AS nul, 'abc' AS word", NULL, 0, &res));
    give(c);
    return res;
}

/* Every call on a handle that is no longer valid is INVALID_HANDLE. */
static void all_invalid(pool_t *pool, pool_conn_t c) {
    pool_result_t *res = (pool_result_t *)&res;
    uint64_t affected = 7;
    EXPECT(pool_execute(c, "SELECT 1", NULL, 0, &affected), POOL_ERR_INVALID_HANDLE, "conn");
    CHECK_EQ(affected, 0);
    EXPECT(pool_query(c, "SELECT 1", NULL, 0, &res), POOL_ERR_INVALID_HANDLE, NULL);
    CHECK(res == NULL);
    EXPECT(pool_begin(c), POOL_ERR_INVALID_HANDLE, NULL);
    EXPECT(pool_commit(c), POOL_ERR_INVALID_HANDLE, NULL);
    EXPECT(pool_rollback(c), POOL_ERR_INVALID_HANDLE, NULL);
    EXPECT(pool_release(pool, c), POOL_ERR_INVALID_HANDLE, NULL);
    EXPECT(pool_manual_close(pool, c), POOL_ERR_INVALID_HANDLE, NULL);
}

/* ---- NULL in every pointer ------------------------------------------------ */

static void new_null_url(void) {
    pool_t *p = (pool_t *)&p;
    EXPECT(pool_new(NULL, &p), POOL_ERR_INVALID_ARGUMENT, "'url' is NULL");
    CHECK(p == NULL);
}
static void new_null_out(void) {
    EXPECT(pool_new("sqlite::memory:", NULL), POOL_ERR_INVALID_ARGUMENT, "'out' is NULL");
}
static void free_null(void) {
    pool_free(NULL);
    pool_result_free(NULL);
    CHECK_STR(pool_last_error(), "");
}
static void connect_null_pool(void) {
    pool_conn_t c = {42};
    EXPECT(pool_connect(NULL, &c), POOL_ERR_INVALID_ARGUMENT, "'pool' is NULL");
    CHECK_EQ(c.id, 0);
}
static void connect_null_out(void) {
    EXPECT(pool_connect(P, NULL), POOL_ERR_INVALID_ARGUMENT, "'out' is NULL");
}
static void release_null_pool(void) {
    pool_conn_t c = take();
    EXPECT(pool_release(NULL, c), POOL_ERR_INVALID_ARGUMENT, "'pool' is NULL");
    give(c); /* still checked out, still ours */
}
static void manual_close_null_pool(void) {
    pool_conn_t c = take();
    EXPECT(pool_manual_close(NULL, c), POOL_ERR_INVALID_ARGUMENT, "'pool' is NULL");
    give(c);
}
static void close_idle_null_pool(void) {
    size_t n = 5;
    EXPECT(pool_close_idle(NULL, &n), POOL_ERR_INVALID_ARGUMENT, "'pool' is NULL");
    CHECK_EQ(n, 0);
}
static void close_stale_null_pool(void) {
    size_t n = 5;
    EXPECT(pool_close_stale(NULL, 1.0, &n), POOL_ERR_INVALID_ARGUMENT, "'pool' is NULL");
    CHECK_EQ(n, 0);
}
static void close_all_null_pool(void) {
    EXPECT(pool_close_all(NULL), POOL_ERR_INVALID_ARGUMENT, "'pool' is NULL");
}
static void thread_connect_null_pool(void) {
    pool_conn_t c = {42};
    EXPECT(pool_thread_connect(NULL, &c), POOL_ERR_INVALID_ARGUMENT, "'pool' is NULL");
    CHECK_EQ(c.id, 0);
}
static void thread_connect_null_out(void) {
    EXPECT(pool_thread_connect(P, NULL), POOL_ERR_INVALID_ARGUMENT, "'out' is NULL");
}
static void thread_release_null_pool(void) {
    EXPECT(pool_thread_release(NULL), POOL_ERR_INVALID_ARGUMENT, "'pool' is NULL");
}
static void stats_null_pool(void) {
    pool_stats_t s;
    memset(&s, 0xff, sizeof s);
    EXPECT(pool_stats(NULL, &s), POOL_ERR_INVALID_ARGUMENT, "'pool' is NULL");
    CHECK_EQ(s.open, 0);
    CHECK_EQ(s.max_connections, 0);
}
static void stats_null_out(void) {
    EXPECT(pool_stats(P, NULL), POOL_ERR_INVALID_ARGUMENT, "'out' is NULL");
}
static void set_logger_null_pool(void) {
    EXPECT(pool_set_logger(NULL, NULL, NULL), POOL_ERR_INVALID_ARGUMENT, "'pool' is NULL");
}
static void execute_null_sql(void) {
    pool_conn_t c = take();
    uint64_t affected = 7;
    EXPECT(pool_execute(c, NULL, NULL, 0, &affected), POOL_ERR_INVALID_ARGUMENT, "'sql' is NULL");
    CHECK_EQ(affected, 0);
    give(c);
}
static void execute_null_params(void) {
    pool_conn_t c = take();
    EXPECT(pool_execute(c, "SELECT 1", NULL, 2, NULL), POOL_ERR_INVALID_ARGUMENT, "'params'");
    give(c);
}
static void query_null_sql(void) {
    pool_conn_t c = take();
    pool_result_t *res = (pool_result_t *)&c;
    EXPECT(pool_query(c, NULL, NULL, 0, &res), POOL_ERR_INVALID_ARGUMENT, "'sql' is NULL");
    CHECK(res == NULL);
    give(c);
}
static void query_null_out(void) {
    pool_conn_t c = take();
    EXPECT(pool_query(c, "SELECT 1", NULL, 0, NULL), POOL_ERR_INVALID_ARGUMENT, "'out' is NULL");
    give(c);
}
static void query_null_params(void) {
    pool_conn_t c = take();
    pool_result_t *res = (pool_result_t *)&c;
    EXPECT(pool_query(c, "SELECT 1", NULL, 1, &res), POOL_ERR_INVALID_ARGUMENT, "'params'");
    CHECK(res == NULL);
    give(c);
}
static void result_null_res(void) {
    const char *s = "x";
    const void *d = &s;
    size_t len = 3;
    uint32_t t = 9;
    bool isnull = true;
    int64_t i = 3;
    double f = 3;
    CHECK_EQ(pool_result_rows(NULL), 0);
    CHECK_EQ(pool_result_columns(NULL), 0);
    EXPECT(pool_result_column_name(NULL, 0, &s), POOL_ERR_INVALID_ARGUMENT, "'res' is NULL");
    CHECK(s == NULL);
    EXPECT(pool_result_type(NULL, 0, 0, &t), POOL_ERR_INVALID_ARGUMENT, "'res' is NULL");
    CHECK_EQ(t, POOL_TYPE_NULL);
    EXPECT(pool_result_is_null(NULL, 0, 0, &isnull), POOL_ERR_INVALID_ARGUMENT, "'res' is NULL");
    CHECK(!isnull);
    EXPECT(pool_result_int64(NULL, 0, 0, &i), POOL_ERR_INVALID_ARGUMENT, "'res' is NULL");
    CHECK_EQ(i, 0);
    EXPECT(pool_result_double(NULL, 0, 0, &f), POOL_ERR_INVALID_ARGUMENT, "'res' is NULL");
    CHECK(f == 0.0);
    s = "x";
    EXPECT(pool_result_text(NULL, 0, 0, &s, &len), POOL_ERR_INVALID_ARGUMENT, "'res' is NULL");
    CHECK(s == NULL);
    CHECK_EQ(len, 0);
    EXPECT(pool_result_blob(NULL, 0, 0, &d, &len), POOL_ERR_INVALID_ARGUMENT, "'res' is NULL");
    CHECK(d == NULL);
}
static void result_null_outs(void) {
    pool_result_t *res = one_row();
    size_t len = 3;
    const char *s = NULL;
    const void *d = NULL;
    if (!res) return;
    EXPECT(pool_result_column_name(res, 0, NULL), POOL_ERR_INVALID_ARGUMENT, "'out' is NULL");
    EXPECT(pool_result_type(res, 0, 0, NULL), POOL_ERR_INVALID_ARGUMENT, "'out' is NULL");
    EXPECT(pool_result_is_null(res, 0, 0, NULL), POOL_ERR_INVALID_ARGUMENT, "'out' is NULL");
    EXPECT(pool_result_int64(res, 0, 0, NULL), POOL_ERR_INVALID_ARGUMENT, "'out' is NULL");
    EXPECT(pool_result_double(res, 0, 0, NULL), POOL_ERR_INVALID_ARGUMENT, "'out' is NULL");
    EXPECT(pool_result_text(res, 0, 0, NULL, &len), POOL_ERR_INVALID_ARGUMENT, "'out' is NULL");
    EXPECT(pool_result_text(res, 0, 2, &s, NULL), POOL_OK, NULL); /* len may be NULL */
    CHECK_STR(s, "abc");
    EXPECT(pool_result_blob(res, 0, 0, NULL, &len), POOL_ERR_INVALID_ARGUMENT, "'out' is NULL");
    EXPECT(pool_result_blob(res, 0, 0, &d, NULL), POOL_ERR_INVALID_ARGUMENT, "'len' is NULL");
    CHECK(d == NULL);
    pool_result_free(res);
}

/* ---- bad parameters ------------------------------------------------------- */

static void param_run(pool_value_t *v, size_t n, pool_status_t want, const char *needle) {
    pool_conn_t c = take();
    char sql[64];
    pool_result_t *res = (pool_result_t *)&c;
    sql_fmt(sql, sizeof sql, "SELECT %s", n > 1 ? "?, ?" : "?");
    EXPECT(pool_execute(c, sql, v, n, NULL), want, needle);
    EXPECT(pool_query(c, sql, v, n, &res), want, needle);
    if (want != POOL_OK) CHECK(res == NULL);
    if (res != (pool_result_t *)&c) pool_result_free(res);
    give(c);
}
static void param_unknown_type(void) {
    pool_value_t v = pool_int64(1);
    v.type = 99;
    param_run(&v, 1, POOL_ERR_INVALID_ARGUMENT, "parameter 1 has unknown type 99");
}
static void param_numeric_type_refused(void) {
    /* result-only kinds cannot be passed in */
    pool_value_t v = pool_int64(1);
    v.type = POOL_TYPE_NUMERIC;
    param_run(&v, 1, POOL_ERR_INVALID_ARGUMENT, "parameter 1");
}
static void param_text_null_data(void) {
    pool_value_t v[2];
    v[0] = pool_int64(1);
    v[1] = pool_text_n("x", 1);
    v[1].data = NULL;
    v[1].len = 4;
    param_run(v, 2, POOL_ERR_INVALID_ARGUMENT, "parameter 2");
}
static void param_blob_null_data(void) {
    pool_value_t v = pool_blob(NULL, 8);
    param_run(&v, 1, POOL_ERR_INVALID_ARGUMENT, "parameter 1");
}
static void param_blob_empty_ok(void) {
    pool_value_t v = pool_blob(NULL, 0); /* documented: an empty blob */
    param_run(&v, 1, POOL_OK, NULL);
}
static void param_text_null_is_null(void) {
    pool_value_t v = pool_text(NULL); /* documented: a NULL parameter */
    CHECK_EQ(v.type, POOL_TYPE_NULL);
    param_run(&v, 1, POOL_OK, NULL);
}
static void param_nparams_huge(void) {
    pool_conn_t c = take();
    pool_value_t v = pool_int64(1);
    EXPECT(pool_execute(c, "SELECT 1", &v, SIZE_MAX, NULL), POOL_ERR_INVALID_ARGUMENT, "nparams");
    give(c);
}
/* A parameter count that does not match the placeholders is
 * INVALID_ARGUMENT wherever the library can tell before sending (SQLite,
 * MariaDB, PostgreSQL with too few values); PostgreSQL with too many is the
 * server's own error (it cannot infer the extra parameters' types: 42P18),
 * as with libpq. Either way the message says what was wrong and the
 * connection stays usable. */
static void count_mismatch(pool_status_t st, pool_status_t want) {
    const char *msg = pool_last_error();
    if (!CHECK(st == want))
        fprintf(stderr, "    status %s, want %s: %s\n", pool_status_str(st), pool_status_str(want), msg);
    CHECK(strstr(msg, "param") != NULL || strstr(msg, "bind") != NULL ||
          strstr(msg, "argument") != NULL);
}
static void param_too_many(void) {
    pool_conn_t c = take();
    pool_value_t v[3] = {pool_int64(1), pool_int64(2), pool_int64(3)};
    char sql[64];
    sql_fmt(sql, sizeof sql, "SELECT ?");
    count_mismatch(pool_execute(c, sql, v, 3, NULL),
                   g_kind == BACKEND_POSTGRES ? POOL_ERR_DATABASE : POOL_ERR_INVALID_ARGUMENT);
    CHECK_OK(exec0(c, "SELECT 1"));
    give(c);
}
static void param_too_few(void) {
    pool_conn_t c = take();
    pool_value_t v = pool_int64(1);
    char sql[64];
    sql_fmt(sql, sizeof sql, "SELECT ?, ?, ?");
    count_mismatch(pool_execute(c, sql, &v, 1, NULL), POOL_ERR_INVALID_ARGUMENT);
    CHECK_OK(exec0(c, "SELECT 1"));
    give(c);
}

/* ---- results out of range and conversions -------------------------------- */

static void result_column_out_of_range(void) {
    pool_result_t *res = one_row();
    const char *s = "x";
    int64_t i = 5;
    if (!res) return;
    EXPECT(pool_result_column_name(res, 3, &s), POOL_ERR_INVALID_ARGUMENT, "column");
    CHECK(s == NULL);
    EXPECT(pool_result_int64(res, 0, SIZE_MAX, &i), POOL_ERR_INVALID_ARGUMENT, "column");
    CHECK_EQ(i, 0);
    pool_result_free(res);
}
static void result_row_out_of_range(void) {
    pool_result_t *res = one_row();
    const char *s = "x";
    size_t len = 4;
    bool b = true;
    if (!res) return;
    EXPECT(pool_result_text(res, 1, 0, &s, &len), POOL_ERR_INVALID_ARGUMENT, "row");
    CHECK(s == NULL);
    CHECK_EQ(len, 0);
    EXPECT(pool_result_is_null(res, SIZE_MAX, 0, &b), POOL_ERR_INVALID_ARGUMENT, "row");
    pool_result_free(res);
}
static void result_null_cell_conversion(void) {
    pool_result_t *res = one_row();
    int64_t i = 5;
    double f = 5;
    const char *s = "x";
    if (!res) return;
    EXPECT(pool_result_int64(res, 0, 1, &i), POOL_ERR_CONVERSION, "NULL");
    CHECK_EQ(i, 0);
    EXPECT(pool_result_double(res, 0, 1, &f), POOL_ERR_CONVERSION, "NULL");
    EXPECT(pool_result_text(res, 0, 1, &s, NULL), POOL_ERR_CONVERSION, "NULL");
    CHECK(s == NULL);
    pool_result_free(res);
}
static void result_text_as_number(void) {
    pool_result_t *res = one_row();
    int64_t i = 5;
    double f = 5;
    if (!res) return;
    EXPECT(pool_result_int64(res, 0, 2, &i), POOL_ERR_CONVERSION, "abc");
    EXPECT(pool_result_double(res, 0, 2, &f), POOL_ERR_CONVERSION, "abc");
    pool_result_free(res);
}

/* ---- stale, forged, foreign handles --------------------------------------- */

static void null_handle(void) {
    pool_conn_t c = {0};
    all_invalid(P, c);
    EXPECT(exec0(c, "SELECT 1"), POOL_ERR_INVALID_HANDLE, "null handle");
}
static void forged_random(void) {
    int i;
    srand((unsigned)getpid());
    for (i = 0; i < 100; i++) {
        pool_conn_t c;
        c.id = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand() ^ 1;
        EXPECT(exec0(c, "SELECT 1"), POOL_ERR_INVALID_HANDLE, NULL);
        EXPECT(pool_release(P, c), POOL_ERR_INVALID_HANDLE, NULL);
    }
}
static void forged_all_ones(void) {
    pool_conn_t c = {UINT64_MAX};
    all_invalid(P, c);
}
static void forged_next_generation(void) {
    /* a real handle one generation on: the slot is real, the id is not */
    pool_conn_t c = take(), f = c;
    f.id = c.id + 1;
    all_invalid(P, f);
    CHECK_OK(exec0(c, "SELECT 1"));
    give(c);
}
static void forged_other_slot(void) {
    pool_conn_t c = take(), f = c;
    f.id = c.id ^ ((uint64_t)7 << 32);
    all_invalid(P, f);
    give(c);
}
static void forged_other_tag(void) {
    pool_conn_t c = take(), f = c;
    f.id = c.id ^ ((uint64_t)0x5a5 << 52);
    all_invalid(P, f);
    give(c);
}
static void double_release(void) {
    pool_conn_t c = take();
    give(c);
    EXPECT(pool_release(P, c), POOL_ERR_INVALID_HANDLE, NULL);
}
static void use_after_release(void) {
    pool_conn_t c = take();
    give(c);
    all_invalid(P, c);
}
static void use_after_release_slot_reused(void) {
    pool_conn_t c = take(), again;
    give(c);
    again = take(); /* LIFO: the same connection and slot, a new id */
    CHECK(again.id != c.id);
    all_invalid(P, c);
    CHECK_OK(exec0(again, "SELECT 1"));
    give(again);
}
static void use_after_manual_close(void) {
    pool_conn_t c = take();
    CHECK_OK(pool_manual_close(P, c));
    all_invalid(P, c);
}
static void release_after_manual_close(void) {
    pool_conn_t c = take();
    CHECK_OK(pool_manual_close(P, c));
    EXPECT(pool_release(P, c), POOL_ERR_INVALID_HANDLE, NULL);
    EXPECT(pool_manual_close(P, c), POOL_ERR_INVALID_HANDLE, NULL);
}
static void release_to_wrong_pool(void) {
    pool_t *other = open_pool("");
    pool_conn_t c = take();
    if (!other) return;
    EXPECT(pool_release(other, c), POOL_ERR_INVALID_HANDLE, NULL);
    CHECK_OK(exec0(c, "SELECT 1")); /* still ours, still good */
    CHECK_EQ(stats_of(other).in_use, 0);
    give(c);
    pool_free(other);
}
static void manual_close_on_wrong_pool(void) {
    pool_t *other = open_pool("");
    pool_conn_t c = take();
    if (!other) return;
    EXPECT(pool_manual_close(other, c), POOL_ERR_INVALID_HANDLE, NULL);
    CHECK_OK(exec0(c, "SELECT 1"));
    give(c);
    pool_free(other);
}
static void foreign_handle_released_here(void) {
    pool_t *other = open_pool("");
    pool_conn_t c;
    if (!other) return;
    CHECK_OK(pool_connect(other, &c));
    EXPECT(pool_release(P, c), POOL_ERR_INVALID_HANDLE, NULL);
    CHECK_OK(exec0(c, "SELECT 1"));
    CHECK_OK(pool_release(other, c));
    pool_free(other);
}
static void use_after_close_stale(void) {
    pool_conn_t c = take();
    size_t n = 0;
    CHECK_OK(pool_close_stale(P, 0.0, &n));
    CHECK_EQ(n, 1);
    all_invalid(P, c);
    CHECK_EQ(stats_of(P).closed_reclaimed >= 1, 1);
}
static void use_after_pool_free(void) {
    pool_t *other = open_pool("");
    pool_conn_t c;
    if (!other) return;
    CHECK_OK(pool_connect(other, &c));
    pool_free(other); /* revokes c */
    EXPECT(exec0(c, "SELECT 1"), POOL_ERR_INVALID_HANDLE, "no live pool");
    EXPECT(pool_begin(c), POOL_ERR_INVALID_HANDLE, NULL);
    EXPECT(pool_release(P, c), POOL_ERR_INVALID_HANDLE, NULL);
}
static void condemned_by_close_all_still_works(void) {
    pool_conn_t c = take();
    CHECK_OK(pool_close_all(P));
    CHECK_OK(exec0(c, "SELECT 1")); /* documented: works until released */
    give(c);
    all_invalid(P, c);
}
static void thread_release_without_connection(void) {
    EXPECT(pool_thread_release(P), POOL_OK, NULL); /* documented: OK */
}
static void thread_connection_released_twice(void) {
    pool_conn_t a, b;
    CHECK_OK(pool_thread_connect(P, &a));
    CHECK_OK(pool_thread_connect(P, &b));
    CHECK_EQ(a.id, b.id);
    CHECK_OK(pool_release(P, a)); /* documented: pool_release gives it back too */
    EXPECT(pool_thread_release(P), POOL_OK, NULL);
    all_invalid(P, a);
}

/* ---- concurrent use of one connection ------------------------------------- */

struct slow {
    pool_conn_t conn;
    pthread_mutex_t lock;
    int started, finished;
    pool_status_t status;
};

static void *slow_body(void *arg) {
    struct slow *a = (struct slow *)arg;
    char sql[256];
    pool_result_t *res = NULL;
    pool_status_t st;
    slow_sql(sql, sizeof sql);
    pthread_mutex_lock(&a->lock);
    a->started = 1;
    pthread_mutex_unlock(&a->lock);
    do {
        st = pool_query(a->conn, sql, NULL, 0, &res);
    } while (st == POOL_ERR_BUSY); /* the main thread got in first: again */
    pool_result_free(res);
    pthread_mutex_lock(&a->lock);
    a->status = st;
    a->finished = 1;
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

static int slow_flag(struct slow *a, int *finished) {
    int started;
    pthread_mutex_lock(&a->lock);
    started = a->started;
    *finished = a->finished;
    pthread_mutex_unlock(&a->lock);
    return started;
}

/* op 0: execute, 1: release, 2: manual close, 3: begin, 4: query */
static void busy_case(int op) {
    struct slow a;
    pthread_t th;
    int finished = 0, got_busy = 0, gone = 0, missed = 0, tries;
    memset(&a, 0, sizeof a);
    pthread_mutex_init(&a.lock, NULL);
    a.conn = take();
    pthread_create(&th, NULL, slow_body, &a);
    while (!slow_flag(&a, &finished)) sleep_seconds(0.001);
    for (tries = 0; tries < 500 && !got_busy && !gone; tries++) {
        pool_status_t st;
        pool_result_t *res = NULL;
        sleep_seconds(0.005);
        slow_flag(&a, &finished);
        if (finished) {
            missed = 1; /* a loaded machine (valgrind, CI) ran it out first */
            break;
        }
        switch (op) {
        case 0: st = exec0(a.conn, "SELECT 1"); break;
        case 1: st = pool_release(P, a.conn); break;
        case 2: st = pool_manual_close(P, a.conn); break;
        case 3: st = pool_begin(a.conn); break;
        default: st = pool_query(a.conn, "SELECT 1", NULL, 0, &res); break;
        }
        if (st == POOL_ERR_BUSY) {
            got_busy = 1;
            EXPECT(st, POOL_ERR_BUSY, "another thread");
            CHECK(res == NULL);
        }
        pool_result_free(res); /* (clears the last error: read it before) */
        if (st == POOL_OK && (op == 1 || op == 2)) {
            gone = 1; /* it got in before the slow call: the handle is gone */
        } else if (st == POOL_OK && op == 3) {
            CHECK_OK(pool_rollback(a.conn));
        }
    }
    pthread_join(th, NULL);
    if (!gone) {
        if (missed && !got_busy)
            printf("    (the slow call ended before a concurrent call got in)\n");
        else
            CHECK(got_busy);
        CHECK_OK(a.status);
        CHECK_OK(exec0(a.conn, "SELECT 1")); /* unharmed */
        give(a.conn);
    }
    pthread_mutex_destroy(&a.lock);
}
static void concurrent_execute(void) { busy_case(0); }
static void concurrent_release(void) { busy_case(1); }
static void concurrent_manual_close(void) { busy_case(2); }
static void concurrent_begin(void) { busy_case(3); }
static void concurrent_query(void) { busy_case(4); }

/* ---- invalid UTF-8 --------------------------------------------------------- */

static void url_not_utf8(void) {
    pool_t *p = (pool_t *)&p;
    EXPECT(pool_new("sqlite:\xff\xfe.db", &p), POOL_ERR_INVALID_ARGUMENT, "'url' is not valid UTF-8");
    CHECK(p == NULL);
}
static void sql_not_utf8_execute(void) {
    pool_conn_t c = take();
    EXPECT(exec0(c, "SELECT '\xc3\x28'"), POOL_ERR_INVALID_ARGUMENT, "'sql' is not valid UTF-8");
    give(c);
}
static void sql_not_utf8_query(void) {
    pool_conn_t c = take();
    pool_result_t *res = (pool_result_t *)&c;
    EXPECT(pool_query(c, "SELECT 1 -- \xed\xa0\x80", NULL, 0, &res), POOL_ERR_INVALID_ARGUMENT,
           "'sql' is not valid UTF-8"); /* an encoded surrogate */
    CHECK(res == NULL);
    give(c);
}
static void text_param_not_utf8(void) {
    pool_value_t v[2];
    v[0] = pool_int64(1);
    v[1] = pool_text("ok\xff");
    param_run(v, 2, POOL_ERR_INVALID_ARGUMENT, "parameter 2 (text) is not valid UTF-8");
}
static void text_param_overlong(void) {
    pool_value_t v = pool_text("\xc0\xaf"); /* overlong '/' */
    param_run(&v, 1, POOL_ERR_INVALID_ARGUMENT, "parameter 1 (text) is not valid UTF-8");
}
static void text_param_truncated_sequence(void) {
    pool_value_t v = pool_text_n("\xe2\x82\xac", 2); /* the euro sign cut short */
    param_run(&v, 1, POOL_ERR_INVALID_ARGUMENT, "parameter 1 (text) is not valid UTF-8");
}
static void blob_param_any_bytes_ok(void) {
    static const unsigned char bytes[] = {0xff, 0x00, 0xfe, 0xc3};
    pool_value_t v = pool_blob(bytes, sizeof bytes); /* blobs are not text */
    param_run(&v, 1, POOL_OK, NULL);
}

/* ---- enormous SQL and parameters ----------------------------------------- */

#define BIG (4u << 20) /* 4 MiB: under MariaDB's default max_allowed_packet */

static void enormous_sql_ok(void) {
    pool_conn_t c = take();
    char *sql = malloc(BIG + 64);
    pool_result_t *res = NULL;
    int64_t v = 0;
    if (!sql) return;
    strcpy(sql, "SELECT 7 /* ");
    memset(sql + strlen(sql), 'x', BIG);
    strcpy(sql + 12 + BIG, " */");
    EXPECT(pool_query(c, sql, NULL, 0, &res), POOL_OK, NULL);
    if (res) CHECK_OK(pool_result_int64(res, 0, 0, &v));
    CHECK_EQ(v, 7);
    pool_result_free(res);
    free(sql);
    give(c);
}
static void enormous_sql_garbage(void) {
    /* many short tokens (a single 4 MiB token would be quoted whole in
     * SQLite's "near ...: syntax error") */
    pool_conn_t c = take();
    char *sql = malloc(BIG + 1);
    size_t i;
    if (!sql) return;
    for (i = 0; i < BIG; i++) sql[i] = i % 3 == 2 ? ' ' : 'q';
    sql[BIG] = '\0';
    EXPECT(exec0(c, sql), POOL_ERR_DATABASE, NULL);
    CHECK(strlen(pool_last_error()) < 64 * 1024); /* the message is not the statement */
    CHECK(strlen(pool_last_sqlstate()) > 0);
    free(sql);
    CHECK_OK(exec0(c, "SELECT 1"));
    give(c);
}
static void enormous_text_param(void) {
    pool_conn_t c = take();
    char *s = malloc(BIG);
    char sql[64];
    pool_value_t v;
    pool_result_t *res = NULL;
    const char *out = NULL;
    size_t len = 0;
    if (!s) return;
    memset(s, 'z', BIG);
    v = pool_text_n(s, BIG);
    sql_fmt(sql, sizeof sql, g_kind == BACKEND_POSTGRES ? "SELECT CAST(? AS TEXT)" : "SELECT ?");
    EXPECT(pool_query(c, sql, &v, 1, &res), POOL_OK, NULL);
    if (res) CHECK_OK(pool_result_text(res, 0, 0, &out, &len));
    CHECK_EQ(len, BIG);
    CHECK(out != NULL && memcmp(out, s, BIG) == 0);
    pool_result_free(res);
    free(s);
    give(c);
}
static void enormous_blob_param(void) {
    pool_conn_t c = take();
    unsigned char *b = malloc(BIG);
    char sql[64];
    pool_value_t v;
    pool_result_t *res = NULL;
    const void *out = NULL;
    size_t len = 0, i;
    if (!b) return;
    for (i = 0; i < BIG; i++) b[i] = (unsigned char)(i * 31);
    v = pool_blob(b, BIG);
    sql_fmt(sql, sizeof sql, g_kind == BACKEND_POSTGRES ? "SELECT CAST(? AS BYTEA)" : "SELECT ?");
    EXPECT(pool_query(c, sql, &v, 1, &res), POOL_OK, NULL);
    if (res) CHECK_OK(pool_result_blob(res, 0, 0, &out, &len));
    CHECK_EQ(len, BIG);
    CHECK(out != NULL && memcmp(out, b, BIG) == 0);
    pool_result_free(res);
    free(b);
    give(c);
}
static void many_params(void) {
    /* 70000 parameters: more than PostgreSQL's protocol (65535) or SQLite's
     * default limit (32766) allow; refused with a status, not a crash */
    enum { N = 70000 };
    pool_conn_t c = take();
    pool_value_t *v = malloc(N * sizeof *v);
    size_t i;
    if (!v) return;
    for (i = 0; i < N; i++) v[i] = pool_int64((int64_t)i);
    {
        pool_status_t st = pool_execute(c, "SELECT 1", v, N, NULL);
        CHECK(st == POOL_ERR_DATABASE || st == POOL_ERR_INVALID_ARGUMENT);
        CHECK(strlen(pool_last_error()) > 0);
        /* PostgreSQL: refused before anything is sent (it used to cost the
         * connection: the driver gave up halfway through its messages) */
        if (g_kind == BACKEND_POSTGRES) EXPECT(st, POOL_ERR_INVALID_ARGUMENT, "at most 65535");
    }
    free(v);
    CHECK_OK(exec0(c, "SELECT 1"));
    give(c);
}

/* ---- malformed and hostile URLs ------------------------------------------- */

static void new_config(const char *url, const char *needle) {
    pool_t *p = (pool_t *)&p;
    EXPECT(pool_new(url, &p), POOL_ERR_CONFIG, needle);
    CHECK(p == NULL);
    if (p && p != (pool_t *)&p) pool_free(p);
}
static void url_empty(void) { new_config("", NULL); }
static void url_no_scheme(void) { new_config("sqlite", NULL); }
static void url_unknown_scheme(void) { new_config("nosuchdb://host/db", "nosuchdb"); }
static void url_empty_scheme(void) { new_config("://host/db", NULL); }
static void url_bare_memory(void) { new_config(":memory:", NULL); }
static void url_bad_escape_value(void) { new_config("sqlite::memory:?max_connections=%zz", NULL); }
static void url_bad_escape_key(void) { new_config("sqlite::memory:?%ff=1", NULL); }
static void url_control_chars(void) { new_config("sqlite::memory:?bogus\r\nX-Injected=1", "bogus"); }
static void url_port_out_of_range(void) { new_config("postgres://u@127.0.0.1:99999/db", NULL); }
static void url_port_not_number(void) { new_config("mysql://root@127.0.0.1:port/test", NULL); }
static void url_huge(void) {
    size_t n = 1u << 20;
    char *url = malloc(n + 32);
    if (!url) return;
    strcpy(url, "sqlite::memory:?");
    memset(url + 16, 'a', n);
    strcpy(url + 16 + n, "=1");
    new_config(url, "unknown option");
    CHECK(strlen(pool_last_error()) < n + 4096);
    free(url);
}
static void url_password_not_in_config_error(void) {
    new_config("postgres://app:Sup3rSecretPw@127.0.0.1:5432/db?max_connections=oops",
               "max_connections");
    CHECK_NOT_CONTAINS(pool_last_error(), "Sup3rSecretPw");
    new_config("mysql://app:Sup3rSecretPw@127.0.0.1/db?bogus=1", "bogus");
    CHECK_NOT_CONTAINS(pool_last_error(), "Sup3rSecretPw");
}
static void url_password_not_in_connect_error(void) {
    pool_t *p = NULL;
    pool_conn_t c;
    /* port 1: nothing listens, the connect fails at once */
    CHECK_OK(pool_new("postgres://app:Sup3rSecretPw@127.0.0.1:1/db?connect_timeout=5", &p));
    if (!p) return;
    EXPECT(pool_connect(p, &c), POOL_ERR_CONNECT, NULL);
    CHECK_NOT_CONTAINS(pool_last_error(), "Sup3rSecretPw");
    pool_free(p);
    CHECK_OK(pool_new("mysql://app:Sup3rSecretPw@127.0.0.1:1/db?connect_timeout=5", &p));
    if (!p) return;
    EXPECT(pool_connect(p, &c), POOL_ERR_CONNECT, NULL);
    CHECK_NOT_CONTAINS(pool_last_error(), "Sup3rSecretPw");
    pool_free(p);
}
static void url_unknown_option(void) {
    char url[1024];
    url_with(url, sizeof url, "bogus_option=1");
    new_config(url, "unknown option 'bogus_option'");
}
static void url_option_of_other_backend(void) {
    new_config("sqlite::memory:?sslmode=require", "sslmode");
}
static void url_duplicate_option(void) {
    char url[1024];
    url_with(url, sizeof url, "timeout=1&timeout=2");
    new_config(url, "timeout");
}

/* ---- out-of-range option values ------------------------------------------ */

static void bad_option(const char *options, const char *name) {
    char url[1024];
    url_with(url, sizeof url, options);
    new_config(url, name);
}
static void opt_max_negative(void) { bad_option("max_connections=-1", "max_connections"); }
static void opt_max_not_number(void) { bad_option("max_connections=abc", "max_connections"); }
static void opt_max_overflow(void) {
    bad_option("max_connections=99999999999999999999999", "max_connections");
}
static void opt_min_above_max(void) {
    bad_option("min_connections=5&max_connections=2", "min_connections");
}
static void opt_stale_negative(void) { bad_option("stale_timeout=-3", "stale_timeout"); }
static void opt_jitter_one(void) { bad_option("stale_jitter=1", "stale_jitter"); }
static void opt_jitter_negative(void) { bad_option("stale_jitter=-0.1", "stale_jitter"); }
static void opt_idle_nan(void) { bad_option("idle_timeout=nan", "idle_timeout"); }
static void opt_timeout_word(void) { bad_option("timeout=soon", "timeout"); }
static void opt_timeout_negative(void) { bad_option("timeout=-1", "timeout"); }
static void opt_connect_timeout_word(void) { bad_option("connect_timeout=x", "connect_timeout"); }
static void opt_check_on_checkout_word(void) {
    bad_option("check_on_checkout=maybe", "check_on_checkout");
}
static void opt_check_idle_negative(void) { bad_option("check_idle=-1", "check_idle"); }
static void opt_statement_cache_negative(void) {
    bad_option("statement_cache=-1", "statement_cache");
}
static void opt_leak_threshold_inf(void) { bad_option("leak_threshold=inf", "leak_threshold"); }
static void opt_timeout_overflow(void) { bad_option("stale_timeout=1e400", "stale_timeout"); }
static void opt_empty_value(void) { bad_option("max_connections=", "max_connections"); }

/* ---- other calls with bad values ------------------------------------------ */

static void close_stale_negative_age(void) {
    size_t n = 5;
    EXPECT(pool_close_stale(P, -1.0, &n), POOL_ERR_INVALID_ARGUMENT, "age_seconds");
    CHECK_EQ(n, 0);
}
static void close_stale_nan_age(void) {
    EXPECT(pool_close_stale(P, NAN, NULL), POOL_ERR_INVALID_ARGUMENT, "age_seconds");
}
static void close_stale_infinite_age(void) {
    pool_conn_t c = take();
    size_t n = 5;
    EXPECT(pool_close_stale(P, INFINITY, &n), POOL_OK, NULL); /* nothing is that old */
    CHECK_EQ(n, 0);
    CHECK_OK(exec0(c, "SELECT 1"));
    give(c);
}
static void status_str_unknown(void) {
    CHECK_STR(pool_status_str(-1), "unknown status");
    CHECK_STR(pool_status_str(11), "unknown status");
    CHECK_STR(pool_status_str(0x7fffffff), "unknown status");
}
static void init_sql_failing(void) {
    char url[1024];
    pool_t *p = NULL;
    pool_conn_t c = {42};
    url_with(url, sizeof url, "init_sql=SELECT%20*%20FROM%20no_such_table_pp");
    CHECK_OK(pool_new(url, &p));
    if (!p) return;
    EXPECT(pool_connect(p, &c), POOL_ERR_CONNECT, "no_such_table_pp");
    CHECK_EQ(c.id, 0);
    CHECK_EQ(stats_of(p).open, 0);
    pool_free(p);
}
static void syntax_error_keeps_connection(void) {
    pool_conn_t c = take();
    uint64_t dead = stats_of(P).closed_dead;
    EXPECT(exec0(c, "SELEKT 1"), POOL_ERR_DATABASE, NULL);
    CHECK(strlen(pool_last_sqlstate()) > 0);
    CHECK_OK(exec0(c, "SELECT 1"));
    give(c);
    CHECK_EQ(stats_of(P).closed_dead, dead);
}
static void exhausted_names_counts(void) {
    pool_t *p = open_pool("max_connections=1");
    pool_conn_t a, b = {42};
    if (!p) return;
    CHECK_OK(pool_connect(p, &a));
    EXPECT(pool_connect(p, &b), POOL_ERR_EXHAUSTED, "in_use=1");
    CHECK_EQ(b.id, 0);
    CHECK_OK(pool_release(p, a));
    pool_free(p);
}

/* ---- the table ------------------------------------------------------------ */

#define CASE(fn) {#fn, fn}
static const struct {
    const char *name;
    void (*run)(void);
} cases[] = {
    CASE(new_null_url), CASE(new_null_out), CASE(free_null), CASE(connect_null_pool),
    CASE(connect_null_out), CASE(release_null_pool), CASE(manual_close_null_pool),
    CASE(close_idle_null_pool), CASE(close_stale_null_pool), CASE(close_all_null_pool),
    CASE(thread_connect_null_pool), CASE(thread_connect_null_out),
    CASE(thread_release_null_pool), CASE(stats_null_pool), CASE(stats_null_out),
    CASE(set_logger_null_pool), CASE(execute_null_sql), CASE(execute_null_params),
    CASE(query_null_sql), CASE(query_null_out), CASE(query_null_params), CASE(result_null_res),
    CASE(result_null_outs),
    CASE(param_unknown_type), CASE(param_numeric_type_refused), CASE(param_text_null_data),
    CASE(param_blob_null_data), CASE(param_blob_empty_ok), CASE(param_text_null_is_null),
    CASE(param_nparams_huge), CASE(param_too_many), CASE(param_too_few),
    CASE(result_column_out_of_range), CASE(result_row_out_of_range),
    CASE(result_null_cell_conversion), CASE(result_text_as_number),
    CASE(null_handle), CASE(forged_random), CASE(forged_all_ones), CASE(forged_next_generation),
    CASE(forged_other_slot), CASE(forged_other_tag), CASE(double_release),
    CASE(use_after_release), CASE(use_after_release_slot_reused), CASE(use_after_manual_close),
    CASE(release_after_manual_close), CASE(release_to_wrong_pool),
    CASE(manual_close_on_wrong_pool), CASE(foreign_handle_released_here),
    CASE(use_after_close_stale), CASE(use_after_pool_free),
    CASE(condemned_by_close_all_still_works), CASE(thread_release_without_connection),
    CASE(thread_connection_released_twice),
    CASE(concurrent_execute), CASE(concurrent_release), CASE(concurrent_manual_close),
    CASE(concurrent_begin), CASE(concurrent_query),
    CASE(url_not_utf8), CASE(sql_not_utf8_execute), CASE(sql_not_utf8_query),
    CASE(text_param_not_utf8), CASE(text_param_overlong), CASE(text_param_truncated_sequence),
    CASE(blob_param_any_bytes_ok),
    CASE(enormous_sql_ok), CASE(enormous_sql_garbage), CASE(enormous_text_param),
    CASE(enormous_blob_param), CASE(many_params),
    CASE(url_empty), CASE(url_no_scheme), CASE(url_unknown_scheme), CASE(url_empty_scheme),
    CASE(url_bare_memory), CASE(url_bad_escape_value), CASE(url_bad_escape_key),
    CASE(url_control_chars), CASE(url_port_out_of_range), CASE(url_port_not_number),
    CASE(url_huge), CASE(url_password_not_in_config_error),
    CASE(url_password_not_in_connect_error), CASE(url_unknown_option),
    CASE(url_option_of_other_backend), CASE(url_duplicate_option),
    CASE(opt_max_negative), CASE(opt_max_not_number), CASE(opt_max_overflow),
    CASE(opt_min_above_max), CASE(opt_stale_negative), CASE(opt_jitter_one),
    CASE(opt_jitter_negative), CASE(opt_idle_nan), CASE(opt_timeout_word),
    CASE(opt_timeout_negative), CASE(opt_connect_timeout_word), CASE(opt_check_on_checkout_word),
    CASE(opt_check_idle_negative), CASE(opt_statement_cache_negative),
    CASE(opt_leak_threshold_inf), CASE(opt_timeout_overflow), CASE(opt_empty_value),
    CASE(close_stale_negative_age), CASE(close_stale_nan_age), CASE(close_stale_infinite_age),
    CASE(status_str_unknown), CASE(init_sql_failing), CASE(syntax_error_keeps_connection),
    CASE(exhausted_names_counts),
};

/* After each case: nothing held, nothing lost, the pool still answers. */
static void pool_still_works(void) {
    pool_conn_t c;
    pool_result_t *res = NULL;
    int64_t v = 0;
    pool_stats_t s = stats_of(P);
    CHECK_EQ(s.in_use, 0);
    CHECK_EQ(s.waiting, 0);
    CHECK_EQ(s.opened_total - s.closed_total, s.open);
    if (!CHECK_OK(pool_connect(P, &c))) return;
    CHECK_OK(pool_query(c, "SELECT 41 + 1", NULL, 0, &res));
    if (res) CHECK_OK(pool_result_int64(res, 0, 0, &v));
    CHECK_EQ(v, 42);
    pool_result_free(res);
    CHECK_OK(pool_release(P, c));
}

static enum backend_kind kind_of(const char *url) {
    if (strncmp(url, "sqlite::memory:", 15) == 0) return BACKEND_SQLITE_MEMORY;
    if (strncmp(url, "sqlite", 6) == 0) return BACKEND_SQLITE;
    if (strncmp(url, "postgres", 8) == 0) return BACKEND_POSTGRES;
    return BACKEND_MYSQL;
}

int main(int argc, char **argv) {
    size_t i, n = sizeof cases / sizeof cases[0];
    unsigned long bad_cases = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: %s <url>\n", argv[0]);
        return 2;
    }
    g_url = argv[1];
    g_argv0 = argv[0];
    g_kind = kind_of(g_url);
    setvbuf(stdout, NULL, _IOLBF, 0);
    P = open_pool("max_connections=4");
    if (!P) return check_summary();
    for (i = 0; i < n; i++) {
        unsigned long before;
        pthread_mutex_lock(&check_lock);
        before = check_failed;
        pthread_mutex_unlock(&check_lock);
        cases[i].run();
        pool_still_works();
        pthread_mutex_lock(&check_lock);
        if (check_failed != before) bad_cases++;
        printf("case %3zu %-40s %s\n", i + 1, cases[i].name, check_failed == before ? "ok" : "FAIL");
        pthread_mutex_unlock(&check_lock);
    }
    pool_free(P);
    printf("%zu misuse cases, %lu failed\n", n, bad_cases);
    CHECK(n >= 60);
    return check_summary();
}
