/* DESIGN.md section 2, row by row (the seed's semantics), and the counting
 * rules of section 3a, through the C ABI. Tests are named after the
 * behaviour they pin. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int pred_open_at_least(const pool_stats_t *s, long long n) { return (long long)s->open >= n; }
static int pred_closed_idle_at_least(const pool_stats_t *s, long long n) {
    return (long long)s->closed_idle >= n;
}

/* max_connections: default 20; up to the limit; past it POOL_ERR_EXHAUSTED at
 * once when no timeout is set, with total=/in_use=/idle=/waiting= in the
 * message. */
static void max_connections_then_exhausted_at_once(void) {
    pool_t *pool = open_pool("max_connections=2");
    pool_conn_t a, b, c;
    double t0;
    pool_stats_t s;
    if (!pool) return;
    CHECK_OK(pool_connect(pool, &a));
    CHECK_OK(pool_connect(pool, &b));
    CHECK(a.id != 0 && b.id != 0 && a.id != b.id);
    c.id = 12345;
    t0 = now_seconds();
    CHECK_STATUS(pool_connect(pool, &c), POOL_ERR_EXHAUSTED);
    CHECK(now_seconds() - t0 < 0.5);
    CHECK_EQ(c.id, 0); /* out set to the null handle on failure */
    CHECK_CONTAINS(pool_last_error(), "total=");
    CHECK_CONTAINS(pool_last_error(), "in_use=");
    CHECK_CONTAINS(pool_last_error(), "idle=");
    CHECK_CONTAINS(pool_last_error(), "waiting=");
    s = stats_of(pool);
    CHECK_EQ(s.max_connections, 2);
    CHECK_EQ(s.in_use, 2);
    CHECK_EQ(s.open, 2);
    CHECK_OK(pool_release(pool, a));
    CHECK_OK(pool_connect(pool, &c)); /* a slot is free again: reused */
    s = stats_of(pool);
    CHECK_EQ(s.opened_total, 2);
    CHECK_EQ(s.checkouts, 3);
    CHECK_OK(pool_release(pool, b));
    CHECK_OK(pool_release(pool, c));
    pool_free(pool);

    pool = open_pool("");
    if (!pool) return;
    CHECK_EQ(stats_of(pool).max_connections, 20); /* peewee's default */
    pool_free(pool);
}

/* max_connections=0 means unlimited. */
static void max_connections_zero_is_unlimited(void) {
    enum { N = 25 };
    pool_conn_t c[N];
    int i, ok = 1;
    pool_t *pool = open_pool("max_connections=0");
    if (!pool) return;
    for (i = 0; i < N; i++) ok &= CHECK_OK(pool_connect(pool, &c[i]));
    CHECK_EQ(stats_of(pool).in_use, N);
    CHECK_EQ(stats_of(pool).max_connections, 0);
    for (i = 0; i < N && ok; i++) CHECK_OK(pool_release(pool, c[i]));
    pool_free(pool);
}

/* timeout=N: a wait that expires is POOL_ERR_EXHAUSTED and is counted. */
static void timeout_expiry_is_exhausted_and_counted(void) {
    pool_t *pool = open_pool("max_connections=1&timeout=0.2");
    pool_conn_t a, b;
    double t0, waited;
    pool_stats_t s;
    if (!pool) return;
    CHECK_OK(pool_connect(pool, &a));
    t0 = now_seconds();
    CHECK_STATUS(pool_connect(pool, &b), POOL_ERR_EXHAUSTED);
    waited = now_seconds() - t0;
    CHECK(waited >= 0.15);
    CHECK(waited < 3.0);
    CHECK_CONTAINS(pool_last_error(), "total=");
    CHECK_CONTAINS(pool_last_error(), "waiting=");
    s = stats_of(pool);
    CHECK_EQ(s.timeouts, 1);
    CHECK(s.wait_us_total >= 150000);
    CHECK_EQ(s.waiting, 0);
    CHECK_OK(pool_release(pool, a));
    pool_free(pool);
}

/* stale_timeout is checked at checkout: an idle connection older than it is
 * closed instead of reused. */
static void stale_timeout_at_checkout(void) {
    pool_t *pool = open_pool("stale_timeout=0.8");
    pool_conn_t a;
    pool_stats_t s;
    if (!pool) return;
    CHECK_OK(pool_connect(pool, &a));
    CHECK_OK(exec0(a, "SELECT 1"));
    CHECK_OK(pool_release(pool, a));
    CHECK_EQ(stats_of(pool).open, 1); /* young: kept */
    sleep_seconds(1.1);
    CHECK_OK(pool_connect(pool, &a)); /* the old one is closed (here or by maintenance) */
    CHECK_OK(exec0(a, "SELECT 1"));
    s = stats_of(pool);
    CHECK_EQ(s.opened_total, 2);
    CHECK_EQ(s.closed_stale, 1);
    CHECK_EQ(s.open, 1);
    CHECK_OK(pool_release(pool, a));
    pool_free(pool);
}

/* stale_timeout is checked at release too. */
static void stale_timeout_at_release(void) {
    pool_t *pool = open_pool("stale_timeout=0.8");
    pool_conn_t a;
    pool_stats_t s;
    if (!pool) return;
    CHECK_OK(pool_connect(pool, &a));
    sleep_seconds(1.1);
    CHECK_OK(pool_release(pool, a));
    s = stats_of(pool);
    CHECK_EQ(s.closed_stale, 1);
    CHECK_EQ(s.open, 0);
    CHECK_EQ(s.idle, 0);
    pool_free(pool);
}

/* A connection whose server process is killed while it is checked out: the
 * caller's next call fails with a class-08 SQLSTATE, the connection is
 * evicted on release (never reused), and the counts return to zero in use. */
static void killed_while_checked_out_is_evicted(void) {
    pool_t *pool;
    pool_conn_t victim, killer, c;
    pool_result_t *res = NULL;
    int64_t id = 0;
    char sql[128];
    pool_stats_t s;
    /* Behind a transaction-mode pooler the backend pid is that of whichever
     * server connection ran the statement, shared with other clients: killing
     * it does not kill "the victim" (tests/pgbouncer/run.sh). */
    if (!is_server() || behind_txn_pooler()) return;
    pool = open_pool("");
    if (!pool) return;
    CHECK_OK(pool_connect(pool, &victim));
    CHECK_OK(pool_connect(pool, &killer));
    CHECK_OK(pool_query(victim,
                        g_kind == BACKEND_POSTGRES ? "SELECT pg_backend_pid()" : "SELECT CONNECTION_ID()",
                        NULL, 0, &res));
    CHECK_OK(pool_result_int64(res, 0, 0, &id));
    pool_result_free(res);
    if (g_kind == BACKEND_POSTGRES)
        snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", (long long)id);
    else
        snprintf(sql, sizeof sql, "KILL %lld", (long long)id);
    CHECK_OK(exec0(killer, sql));
    sleep_seconds(0.2);
    CHECK_STATUS(exec0(victim, "SELECT 1"), POOL_ERR_DATABASE);
    CHECK(strncmp(pool_last_sqlstate(), "08", 2) == 0 || strncmp(pool_last_sqlstate(), "57P0", 4) == 0);
    CHECK_OK(pool_release(pool, victim)); /* accepted, and closed: not put back */
    CHECK_OK(pool_release(pool, killer));
    s = stats_of(pool);
    CHECK_EQ(s.closed_dead, 1);
    CHECK_EQ(s.in_use, 0);
    CHECK_EQ(s.idle, 1);
    CHECK_OK(pool_connect(pool, &c)); /* the survivor */
    CHECK_OK(exec0(c, "SELECT 1"));
    CHECK_OK(pool_release(pool, c));
    pool_free(pool);
}

/* A connection that died while idle is discarded at checkout and replaced,
 * invisibly (check_on_checkout, with check_idle=0 so every checkout probes). */
static void liveness_check_at_checkout(void) {
    pool_t *pool;
    pool_conn_t victim, killer, c;
    pool_result_t *res = NULL;
    int64_t id = 0;
    char sql[128];
    pool_stats_t s;
    if (behind_txn_pooler()) return; /* see killed_while_checked_out_is_evicted */
    pool = open_pool("check_on_checkout=on&check_idle=0");
    if (!pool) return;
    CHECK_OK(pool_connect(pool, &victim));
    CHECK_OK(pool_connect(pool, &killer));
    if (is_server()) {
        CHECK_OK(pool_query(victim,
                            g_kind == BACKEND_POSTGRES ? "SELECT pg_backend_pid()"
                                                       : "SELECT CONNECTION_ID()",
                            NULL, 0, &res));
        CHECK_OK(pool_result_int64(res, 0, 0, &id));
        pool_result_free(res);
        if (g_kind == BACKEND_POSTGRES)
            snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", (long long)id);
        else
            snprintf(sql, sizeof sql, "KILL %lld", (long long)id);
        CHECK_OK(exec0(killer, sql));
        sleep_seconds(0.2);
    }
    CHECK_OK(pool_release(pool, killer));
    CHECK_OK(pool_release(pool, victim)); /* most recently returned: reused first */
    CHECK_OK(pool_connect(pool, &c));
    CHECK_OK(exec0(c, "SELECT 1")); /* never the dead one */
    s = stats_of(pool);
    if (is_server()) {
        CHECK_EQ(s.closed_dead, 1);
        /* the dead one is replaced by the next idle one or a fresh one */
        CHECK(s.opened_total == 2 || s.opened_total == 3);
        CHECK_EQ(s.open, s.opened_total - 1);
    } else {
        CHECK_EQ(s.closed_dead, 0); /* SQLite's check touches the handle: still alive */
        CHECK_EQ(s.opened_total, 2);
    }
    CHECK_OK(pool_release(pool, c));
    pool_free(pool);
}

/* A connection returned inside a transaction is rolled back. */
static void rollback_on_release_of_open_transaction(void) {
    pool_t *pool = open_pool("max_connections=1");
    pool_conn_t c;
    char t[64], sql[256];
    pool_value_t v[1];
    if (!pool) return;
    table_name(t, sizeof t, "rollback");
    CHECK_OK(pool_connect(pool, &c));
    snprintf(sql, sizeof sql, "CREATE TABLE %s (id BIGINT)", t);
    CHECK_OK(exec0(c, sql));
    CHECK_OK(pool_begin(c));
    v[0] = pool_int64(1);
    sql_fmt(sql, sizeof sql, "INSERT INTO %s (id) VALUES (?)", t);
    CHECK_OK(pool_execute(c, sql, v, 1, NULL));
    CHECK_EQ(count_rows(c, t), 1);
    CHECK_OK(pool_release(pool, c)); /* not committed */
    CHECK_OK(pool_connect(pool, &c)); /* the same connection (max 1) */
    CHECK_EQ(count_rows(c, t), 0);
    CHECK_EQ(stats_of(pool).opened_total, 1);
    /* begin works again: no transaction was left open */
    CHECK_OK(pool_begin(c));
    CHECK_OK(pool_commit(c));
    snprintf(sql, sizeof sql, "DROP TABLE %s", t);
    CHECK_OK(exec0(c, sql));
    CHECK_OK(pool_release(pool, c));
    pool_free(pool);
}

/* manual_close(): closed for good, counted, and the handle is dead after. */
static void manual_close_closes_for_good(void) {
    pool_t *pool = open_pool("");
    pool_conn_t c;
    pool_stats_t s;
    if (!pool) return;
    CHECK_OK(pool_connect(pool, &c));
    CHECK_OK(pool_manual_close(pool, c));
    s = stats_of(pool);
    CHECK_EQ(s.closed_manual, 1);
    CHECK_EQ(s.closed_total, 1);
    CHECK_EQ(s.open, 0);
    CHECK_EQ(s.idle, 0);
    CHECK_EQ(s.in_use, 0);
    CHECK_STATUS(exec0(c, "SELECT 1"), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(pool_release(pool, c), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(pool_manual_close(pool, c), POOL_ERR_INVALID_HANDLE);
    pool_free(pool);
}

/* close_idle(): closes every idle connection and says how many. */
static void close_idle_counts(void) {
    pool_t *pool = open_pool("");
    pool_conn_t c[4];
    size_t closed = 99;
    int i;
    pool_stats_t s;
    if (!pool) return;
    for (i = 0; i < 4; i++) CHECK_OK(pool_connect(pool, &c[i]));
    for (i = 0; i < 3; i++) CHECK_OK(pool_release(pool, c[i]));
    CHECK_OK(pool_close_idle(pool, &closed));
    CHECK_EQ(closed, 3);
    s = stats_of(pool);
    CHECK_EQ(s.closed_cleared, 3);
    CHECK_EQ(s.open, 1);
    CHECK_EQ(s.idle, 0);
    CHECK_OK(exec0(c[3], "SELECT 1")); /* the one in use is untouched */
    CHECK_OK(pool_release(pool, c[3]));
    CHECK_OK(pool_close_idle(pool, NULL)); /* closed may be NULL */
    CHECK_EQ(stats_of(pool).open, 0);
    CHECK_OK(pool_close_idle(pool, &closed));
    CHECK_EQ(closed, 0);
    pool_free(pool);
}

/* close_stale(age): connections checked out longer than age are revoked; the
 * holder's next call gets POOL_ERR_INVALID_HANDLE. */
static void close_stale_revokes_held_handle(void) {
    pool_t *pool = open_pool("");
    pool_conn_t old, young;
    size_t closed = 99;
    pool_stats_t s;
    if (!pool) return;
    CHECK_OK(pool_connect(pool, &old));
    sleep_seconds(0.3);
    CHECK_OK(pool_connect(pool, &young));
    CHECK_OK(pool_close_stale(pool, 0.15, &closed));
    CHECK_EQ(closed, 1);
    CHECK_STATUS(exec0(old, "SELECT 1"), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(pool_release(pool, old), POOL_ERR_INVALID_HANDLE);
    CHECK_OK(exec0(young, "SELECT 1"));
    s = stats_of(pool);
    CHECK_EQ(s.closed_reclaimed, 1);
    CHECK_EQ(s.in_use, 1);
    CHECK_OK(pool_release(pool, young));
    CHECK_OK(pool_close_stale(pool, 0.0, NULL)); /* nothing out: nothing to do */
    CHECK_STATUS(pool_close_stale(pool, -1.0, &closed), POOL_ERR_INVALID_ARGUMENT);
    CHECK_EQ(closed, 0);
    CHECK_STATUS(pool_close_stale(pool, (double)NAN, NULL),
                 POOL_ERR_INVALID_ARGUMENT);
    pool_free(pool);
}

/* close_all(): idle connections closed now, those in use when they return. */
static void close_all_idle_now_in_use_on_return(void) {
    pool_t *pool = open_pool("max_connections=2");
    pool_conn_t a, b, c;
    pool_stats_t s;
    if (!pool) return;
    CHECK_OK(pool_connect(pool, &a));
    CHECK_OK(pool_connect(pool, &b));
    CHECK_OK(pool_release(pool, a));
    CHECK_OK(pool_close_all(pool));
    s = stats_of(pool);
    CHECK_EQ(s.closed_cleared, 1);
    CHECK_EQ(s.open, 1);
    CHECK_EQ(s.in_use, 1);
    CHECK_OK(exec0(b, "SELECT 1")); /* still usable until it comes back */
    CHECK_OK(pool_connect(pool, &c)); /* condemned b still counts: 1 + 1 = max */
    CHECK_STATUS(pool_connect(pool, &a), POOL_ERR_EXHAUSTED);
    CHECK_OK(pool_release(pool, b));
    s = stats_of(pool);
    CHECK_EQ(s.closed_cleared, 2);
    CHECK_EQ(s.open, 1);
    CHECK_EQ(s.idle, 0);
    CHECK_OK(pool_release(pool, c)); /* c was opened after close_all: kept */
    s = stats_of(pool);
    CHECK_EQ(s.idle, 1);
    CHECK_EQ(s.closed_total, 2);
    pool_free(pool);
}

/* The execution-context row: several handles per thread, each with its own
 * transactions. */
static void several_handles_per_thread_with_transactions(void) {
    pool_t *pool = open_pool("");
    pool_conn_t a, b;
    char t[64], sql[256];
    pool_value_t v[1];
    if (!pool) return;
    table_name(t, sizeof t, "txn");
    CHECK_OK(pool_connect(pool, &a));
    CHECK_OK(pool_connect(pool, &b));
    CHECK(a.id != b.id);
    snprintf(sql, sizeof sql, "CREATE TABLE %s (id BIGINT)", t);
    CHECK_OK(exec0(a, sql));
    sql_fmt(sql, sizeof sql, "INSERT INTO %s (id) VALUES (?)", t);
    CHECK_OK(pool_begin(a));
    v[0] = pool_int64(1);
    CHECK_OK(pool_execute(a, sql, v, 1, NULL));
    CHECK_OK(pool_commit(a));
    CHECK_EQ(count_rows(b, t), 1);
    CHECK_OK(pool_begin(a));
    v[0] = pool_int64(2);
    CHECK_OK(pool_execute(a, sql, v, 1, NULL));
    CHECK_OK(pool_rollback(a));
    CHECK_EQ(count_rows(b, t), 1);
    CHECK_OK(pool_begin(b));
    v[0] = pool_int64(3);
    CHECK_OK(pool_execute(b, sql, v, 1, NULL));
    CHECK_OK(pool_commit(b));
    CHECK_EQ(count_rows(a, t), 2);
    snprintf(sql, sizeof sql, "DROP TABLE %s", t);
    CHECK_OK(exec0(a, sql));
    CHECK_OK(pool_release(pool, a));
    CHECK_OK(pool_release(pool, b));
    pool_free(pool);
}

/* Every stats field moves as documented. */
static void stats_fields(void) {
    pool_t *pool = open_pool("max_connections=3");
    pool_conn_t a, b;
    pool_stats_t s;
    if (!pool) return;
    s = stats_of(pool);
    CHECK_EQ(s.max_connections, 3);
    CHECK_EQ(s.open + s.idle + s.in_use + s.waiting + s.opened_total + s.closed_total, 0);
    CHECK_EQ(s.checkouts + s.timeouts + s.leaks + s.wait_us_total, 0);
    CHECK_OK(pool_connect(pool, &a));
    CHECK_OK(pool_connect(pool, &b));
    s = stats_of(pool);
    CHECK_EQ(s.open, 2);
    CHECK_EQ(s.in_use, 2);
    CHECK_EQ(s.idle, 0);
    CHECK_EQ(s.opened_total, 2);
    CHECK_EQ(s.checkouts, 2);
    CHECK_OK(pool_release(pool, a));
    s = stats_of(pool);
    CHECK_EQ(s.idle, 1);
    CHECK_EQ(s.in_use, 1);
    CHECK_OK(pool_manual_close(pool, b));
    CHECK_OK(pool_close_all(pool));
    s = stats_of(pool);
    CHECK_EQ(s.open, 0);
    CHECK_EQ(s.closed_total, 2);
    CHECK_EQ(s.closed_manual, 1);
    CHECK_EQ(s.closed_cleared, 1);
    CHECK_EQ(s.closed_stale + s.closed_idle + s.closed_dead + s.closed_reclaimed, 0);
    CHECK_EQ(s.closed_total, s.closed_stale + s.closed_idle + s.closed_dead + s.closed_manual +
                                 s.closed_reclaimed + s.closed_cleared);
    pool_free(pool);
}

/* min_connections are opened by the maintenance thread, in the background. */
static void min_connections_filled_in_background(void) {
    pool_t *pool = open_pool("min_connections=2&max_connections=4");
    pool_conn_t a;
    if (!pool) return;
    CHECK(wait_until(pool, pred_open_at_least, 2, 3.0));
    CHECK_EQ(stats_of(pool).idle, 2);
    /* refilled after a manual close */
    CHECK_OK(pool_connect(pool, &a));
    CHECK_OK(pool_manual_close(pool, a));
    CHECK(wait_until(pool, pred_open_at_least, 2, 3.0));
    CHECK(stats_of(pool).opened_total >= 3);
    pool_free(pool);
}

/* idle_timeout: a connection idle longer than it is closed by maintenance. */
static void idle_timeout_closes_idle(void) {
    pool_t *pool = open_pool("idle_timeout=0.3");
    pool_conn_t a;
    pool_stats_t s;
    if (!pool) return;
    CHECK_OK(pool_connect(pool, &a));
    CHECK_OK(pool_release(pool, a));
    CHECK(wait_until(pool, pred_closed_idle_at_least, 1, 3.0));
    s = stats_of(pool);
    CHECK_EQ(s.closed_idle, 1);
    CHECK_EQ(s.open, 0);
    pool_free(pool);
}

/* pool_new opens nothing; a connect error never shows the password. */
static void password_never_in_messages(void) {
    pool_t *pool = NULL;
    pool_conn_t c;
    const char *url = "postgres://user:s3cretpw@127.0.0.1:1/x?connect_timeout=1";
    CHECK_OK(pool_new(url, &pool));
    if (!pool) return;
    CHECK_STATUS(pool_connect(pool, &c), POOL_ERR_CONNECT);
    CHECK(strlen(pool_last_error()) > 0);
    CHECK_NOT_CONTAINS(pool_last_error(), "s3cretpw");
    CHECK_EQ(c.id, 0);
    pool_free(pool);
    /* nor in a config error */
    pool = (pool_t *)&c;
    CHECK_STATUS(pool_new("postgres://user:s3cretpw@127.0.0.1:1/x?bogus_opt=1", &pool),
                 POOL_ERR_CONFIG);
    CHECK(pool == NULL);
    CHECK_NOT_CONTAINS(pool_last_error(), "s3cretpw");
    CHECK_CONTAINS(pool_last_error(), "bogus_opt");
    CHECK_STATUS(pool_new("mysql://root:s3cretpw@127.0.0.1:1/x?connect_timeout=1", &pool),
                 POOL_OK);
    if (pool) {
        CHECK_STATUS(pool_connect(pool, &c), POOL_ERR_CONNECT);
        CHECK_NOT_CONTAINS(pool_last_error(), "s3cretpw");
        pool_free(pool);
    }
}

/* init_sql runs on each new connection; a failing one is POOL_ERR_CONNECT. */
static void init_sql_runs_and_failure_is_connect_error(void) {
    pool_t *pool = open_pool("init_sql=SELECT+1");
    pool_conn_t c;
    if (pool) {
        CHECK_OK(pool_connect(pool, &c));
        CHECK_OK(pool_release(pool, c));
        pool_free(pool);
    }
    pool = open_pool("init_sql=SELECT+*+FROM+no_such_table_pp");
    if (pool) {
        CHECK_STATUS(pool_connect(pool, &c), POOL_ERR_CONNECT);
        CHECK_CONTAINS(pool_last_error(), "no_such_table_pp");
        CHECK_EQ(stats_of(pool).open, 0);
        pool_free(pool);
    }
}

void test_semantics(void) {
    max_connections_then_exhausted_at_once();
    max_connections_zero_is_unlimited();
    timeout_expiry_is_exhausted_and_counted();
    stale_timeout_at_checkout();
    stale_timeout_at_release();
    liveness_check_at_checkout();
    killed_while_checked_out_is_evicted();
    rollback_on_release_of_open_transaction();
    manual_close_closes_for_good();
    close_idle_counts();
    close_stale_revokes_held_handle();
    close_all_idle_now_in_use_on_return();
    several_handles_per_thread_with_transactions();
    stats_fields();
    min_connections_filled_in_background();
    idle_timeout_closes_idle();
    password_never_in_messages();
    init_sql_runs_and_failure_is_connect_error();
}
