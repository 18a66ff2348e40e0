/* Threads: waiting with a timeout, FIFO fairness, one connection per thread,
 * POOL_ERR_BUSY on concurrent use of one connection, and pool_free while
 * threads wait or hold connections. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdio.h>
#include <string.h>

static int pred_waiting(const pool_stats_t *s, long long n) { return (long long)s->waiting == n; }
static int pred_in_use(const pool_stats_t *s, long long n) { return (long long)s->in_use == n; }

struct waiter {
    pool_t *pool;
    int index;
    pool_status_t status;
    double waited;
    int *order;      /* shared: indices in the order they got a connection */
    int *norder;
    pthread_mutex_t *lock;
};

static void *connect_and_release(void *arg) {
    struct waiter *w = (struct waiter *)arg;
    pool_conn_t c;
    double t0 = now_seconds();
    w->status = pool_connect(w->pool, &c);
    w->waited = now_seconds() - t0;
    if (w->status == POOL_OK) {
        if (w->order) {
            pthread_mutex_lock(w->lock);
            w->order[(*w->norder)++] = w->index;
            pthread_mutex_unlock(w->lock);
        }
        CHECK_OK(exec0(c, "SELECT 1"));
        sleep_seconds(0.02);
        CHECK_OK(pool_release(w->pool, c));
    }
    return NULL;
}

/* timeout=N: a waiter gets the connection another thread releases. */
static void timeout_waits_for_release(void) {
    pool_t *pool = open_pool("max_connections=1&timeout=5");
    pool_conn_t held;
    pthread_t th;
    struct waiter w;
    pool_stats_t s;
    if (!pool) return;
    memset(&w, 0, sizeof w);
    w.pool = pool;
    CHECK_OK(pool_connect(pool, &held));
    pthread_create(&th, NULL, connect_and_release, &w);
    CHECK(wait_until(pool, pred_waiting, 1, 3.0));
    sleep_seconds(0.2);
    CHECK_OK(pool_release(pool, held));
    pthread_join(th, NULL);
    CHECK_OK(w.status);
    CHECK(w.waited >= 0.15);
    CHECK(w.waited < 4.0);
    s = stats_of(pool);
    CHECK(s.wait_us_total >= 150000);
    CHECK_EQ(s.timeouts, 0);
    CHECK_EQ(s.opened_total, 1); /* handed over, not a new one */
    CHECK_EQ(s.waiting, 0);
    pool_free(pool);
}

/* FIFO: the longest waiter is served first. */
static void waiters_are_served_in_order(void) {
    enum { N = 4 };
    pool_t *pool = open_pool("max_connections=1&timeout=10");
    pool_conn_t held;
    pthread_t th[N];
    struct waiter w[N];
    int order[N], norder = 0, i;
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    if (!pool) return;
    for (i = 0; i < N; i++) order[i] = -1;
    CHECK_OK(pool_connect(pool, &held));
    for (i = 0; i < N; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].pool = pool;
        w[i].index = i;
        w[i].order = order;
        w[i].norder = &norder;
        w[i].lock = &lock;
        pthread_create(&th[i], NULL, connect_and_release, &w[i]);
        CHECK(wait_until(pool, pred_waiting, i + 1, 3.0)); /* queued before the next starts */
    }
    CHECK_EQ(stats_of(pool).waiting, N);
    CHECK_OK(pool_release(pool, held));
    for (i = 0; i < N; i++) pthread_join(th[i], NULL);
    CHECK_EQ(norder, N);
    for (i = 0; i < N; i++) {
        CHECK_OK(w[i].status);
        CHECK_EQ(order[i], i);
    }
    CHECK_EQ(stats_of(pool).opened_total, 1);
    pool_free(pool);
}

struct thread_conn_args {
    pool_t *pool;
    int release_by_exit;
};

static void *thread_conn_body(void *arg) {
    struct thread_conn_args *a = (struct thread_conn_args *)arg;
    pool_conn_t c1, c2, c3;
    uint64_t before = stats_of(a->pool).in_use;
    CHECK_OK(pool_thread_connect(a->pool, &c1));
    CHECK_OK(pool_thread_connect(a->pool, &c2));
    CHECK(c1.id != 0);
    CHECK_EQ(c1.id, c2.id); /* the same one until released */
    CHECK_EQ(stats_of(a->pool).in_use, before + 1);
    CHECK_OK(exec0(c1, "SELECT 1"));
    CHECK_OK(pool_thread_release(a->pool));
    CHECK_EQ(stats_of(a->pool).in_use, before);
    CHECK_STATUS(exec0(c1, "SELECT 1"), POOL_ERR_INVALID_HANDLE);
    CHECK_OK(pool_thread_release(a->pool)); /* none held: still OK */
    CHECK_OK(pool_thread_connect(a->pool, &c3));
    CHECK(c3.id != c1.id); /* every checkout gets a new id */
    /* pool_release works on a thread's own connection too */
    CHECK_OK(pool_release(a->pool, c3));
    CHECK_OK(pool_thread_connect(a->pool, &c3));
    CHECK_OK(exec0(c3, "SELECT 1"));
    if (!a->release_by_exit) CHECK_OK(pool_thread_release(a->pool));
    return NULL; /* with release_by_exit: the connection goes back on thread exit */
}

/* One connection per thread: thread_connect / thread_release / thread exit. */
static void thread_connection_lifecycle(void) {
    pool_t *pool = open_pool("");
    pthread_t th;
    struct thread_conn_args a;
    pool_conn_t mine, again;
    pool_stats_t s;
    if (!pool) return;
    a.pool = pool;
    a.release_by_exit = 0;
    pthread_create(&th, NULL, thread_conn_body, &a);
    pthread_join(th, NULL);
    CHECK_EQ(stats_of(pool).in_use, 0);
    a.release_by_exit = 1;
    pthread_create(&th, NULL, thread_conn_body, &a);
    pthread_join(th, NULL);
    CHECK(wait_until(pool, pred_in_use, 0, 2.0)); /* returned by the thread's exit */
    s = stats_of(pool);
    CHECK_EQ(s.in_use, 0);
    CHECK_EQ(s.closed_total, 0); /* returned, not closed */
    /* two threads get two different connections */
    CHECK_OK(pool_thread_connect(pool, &mine));
    pthread_create(&th, NULL, thread_conn_body, &a);
    pthread_join(th, NULL);
    CHECK_OK(pool_thread_connect(pool, &again));
    CHECK_EQ(mine.id, again.id);
    CHECK_OK(pool_thread_release(pool));
    CHECK(wait_until(pool, pred_in_use, 0, 2.0));
    pool_free(pool);
}

struct slow_args {
    pool_conn_t conn;
    volatile int started;
    volatile int finished;
    pool_status_t status;
    pthread_mutex_t lock;
};

static void *slow_body(void *arg) {
    struct slow_args *a = (struct slow_args *)arg;
    char sql[256];
    pool_result_t *res = NULL;
    slow_sql(sql, sizeof sql);
    pthread_mutex_lock(&a->lock);
    a->started = 1;
    pthread_mutex_unlock(&a->lock);
    do {
        a->status = pool_query(a->conn, sql, NULL, 0, &res);
    } while (a->status == POOL_ERR_BUSY); /* the main thread got in first: again */
    pool_result_free(res);
    pthread_mutex_lock(&a->lock);
    a->finished = 1;
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

static int slow_state(struct slow_args *a, int *finished) {
    int started;
    pthread_mutex_lock(&a->lock);
    started = a->started;
    *finished = a->finished;
    pthread_mutex_unlock(&a->lock);
    return started;
}

enum busy_op { BUSY_EXECUTE, BUSY_RELEASE, BUSY_MANUAL_CLOSE, BUSY_BEGIN };

/* While one thread is in a (slow) call on a connection, another thread's
 * call on it gets POOL_ERR_BUSY — never a data race. */
static void concurrent_use_is_busy(enum busy_op op) {
    pool_t *pool = open_pool("");
    struct slow_args a;
    pthread_t th;
    int finished = 0, got_busy = 0, tries;
    if (!pool) return;
    memset(&a, 0, sizeof a);
    pthread_mutex_init(&a.lock, NULL);
    CHECK_OK(pool_connect(pool, &a.conn));
    pthread_create(&th, NULL, slow_body, &a);
    while (!slow_state(&a, &finished)) sleep_seconds(0.001);
    for (tries = 0; tries < 200 && !got_busy; tries++) {
        pool_status_t st;
        sleep_seconds(0.02);
        slow_state(&a, &finished);
        if (finished) break;
        switch (op) {
        case BUSY_EXECUTE: st = exec0(a.conn, "SELECT 1"); break;
        case BUSY_RELEASE: st = pool_release(pool, a.conn); break;
        case BUSY_MANUAL_CLOSE: st = pool_manual_close(pool, a.conn); break;
        default: st = pool_begin(a.conn); break;
        }
        if (st == POOL_ERR_BUSY) {
            got_busy = 1;
            CHECK(strlen(pool_last_error()) > 0);
        } else if (op == BUSY_RELEASE || op == BUSY_MANUAL_CLOSE) {
            /* it got in before the slow call started: the handle is gone */
            CHECK_OK(st);
            break;
        } else if (op == BUSY_BEGIN && st == POOL_OK) {
            pool_rollback(a.conn);
        }
    }
    pthread_join(th, NULL);
    CHECK(got_busy);
    if (got_busy) {
        CHECK_OK(a.status);
        CHECK_OK(exec0(a.conn, "SELECT 1")); /* still fine after the other thread's attempt */
        CHECK_OK(pool_release(pool, a.conn));
    }
    pthread_mutex_destroy(&a.lock);
    pool_free(pool);
}

struct closed_waiter {
    pool_t *pool;
    pool_status_t status;
    pool_conn_t conn;
};

static void *wait_forever(void *arg) {
    struct closed_waiter *w = (struct closed_waiter *)arg;
    w->conn.id = 77;
    w->status = pool_connect(w->pool, &w->conn);
    return NULL;
}

/* pool_free wakes waiters with POOL_ERR_CLOSED and revokes handles still out. */
static void pool_free_wakes_waiters_and_revokes(void) {
    pool_t *pool = open_pool("max_connections=1&timeout=inf");
    pool_conn_t held;
    pthread_t th;
    struct closed_waiter w;
    if (!pool) return;
    memset(&w, 0, sizeof w);
    w.pool = pool;
    CHECK_OK(pool_connect(pool, &held));
    pthread_create(&th, NULL, wait_forever, &w);
    CHECK(wait_until(pool, pred_waiting, 1, 3.0));
    pool_free(pool);
    pthread_join(th, NULL);
    CHECK_STATUS(w.status, POOL_ERR_CLOSED);
    CHECK_EQ(w.conn.id, 0);
    CHECK_STATUS(exec0(held, "SELECT 1"), POOL_ERR_INVALID_HANDLE);
    CHECK_STATUS(pool_begin(held), POOL_ERR_INVALID_HANDLE);
}

struct hammer_args {
    pool_t *pool;
    int rounds;
};

static void *hammer(void *arg) {
    struct hammer_args *h = (struct hammer_args *)arg;
    int i;
    for (i = 0; i < h->rounds; i++) {
        pool_conn_t c;
        if (!CHECK_OK(pool_connect(h->pool, &c))) continue;
        CHECK_OK(exec0(c, "SELECT 1"));
        CHECK_OK(pool_release(h->pool, c));
    }
    return NULL;
}

/* Many threads on a small pool with a wait: no error, counts consistent. */
static void many_threads_small_pool(void) {
    enum { T = 8 };
    pool_t *pool = open_pool("max_connections=3&timeout=30");
    pthread_t th[T];
    struct hammer_args h;
    pool_stats_t s;
    int i;
    if (!pool) return;
    h.pool = pool;
    h.rounds = 25;
    for (i = 0; i < T; i++) pthread_create(&th[i], NULL, hammer, &h);
    for (i = 0; i < T; i++) pthread_join(th[i], NULL);
    s = stats_of(pool);
    CHECK_EQ(s.checkouts, T * 25);
    CHECK(s.opened_total <= 3);
    CHECK_EQ(s.in_use, 0);
    CHECK_EQ(s.waiting, 0);
    CHECK_EQ(s.timeouts, 0);
    pool_free(pool);
}

void test_threads(void) {
    timeout_waits_for_release();
    waiters_are_served_in_order();
    thread_connection_lifecycle();
    pool_free_wakes_waiters_and_revokes();
    many_threads_small_pool();
}

/* A group of its own: it needs a slow call to overlap, so the valgrind run
 * (where timing is unreliable) leaves it to the other runs. */
void test_busy(void) {
    concurrent_use_is_busy(BUSY_EXECUTE);
    concurrent_use_is_busy(BUSY_BEGIN);
    concurrent_use_is_busy(BUSY_RELEASE);
    concurrent_use_is_busy(BUSY_MANUAL_CLOSE);
}
