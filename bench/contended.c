/* contended: 2, 8, 32 threads over 4 connections on SQLite, each thread
 * looping checkout + SELECT 1 + release for BENCH_SECONDS (default 1) per
 * run; BENCH_RUNS runs (>= 5). Per thread count and pool, one line:
 *
 *   contended_<pool>_t<N>  <wall ns per op>  <total ops>  maxmin=<max/min ops per thread>
 *                          p99_wait_ns=<p99 of the checkout wait>  starved=<threads with 0 ops>
 *
 * each figure the median over the runs (taken separately per figure).
 * peepool waits in pool_connect (URL timeout=inf, FIFO); libzdb's
 * getConnection returns NULL when all connections are out, so its threads
 * retry with sched_yield() and the wait includes the retries.
 * rawpool, the bound: the least a blocking pool can do, in plain C, a
 * pthread mutex and condition variable over a free list of 4 raw sqlite3
 * connections (system SQLite, ":memory:"), each holding a prepared
 * SELECT 1 (no FIFO, no liveness check, no handles, no result copy).
 * BENCH_ONLY=peepool, libzdb or rawpool runs one pool only.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <math.h>
#include <peepool.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#ifdef HAVE_ZDB
#include <zdb.h>
#endif
#ifdef HAVE_SQLITE3
#include <sqlite3.h>
#endif

#define MAX_THREADS 32
#define BUCKETS 512 /* log2(ns) * 8 */

struct worker {
    pthread_t tid;
    int kind; /* 0 peepool, 1 libzdb, 2 rawpool */
    void *pool;
    long ops;
    int failed;
    uint64_t hist[BUCKETS];
};

static volatile int stop_flag;
static pthread_barrier_t start_barrier;

static void record_wait(struct worker *w, uint64_t ns) {
    int b = ns < 1 ? 0 : (int)(log2((double)ns) * 8.0);
    if (b >= BUCKETS) b = BUCKETS - 1;
    if (b < 0) b = 0;
    w->hist[b]++;
}

static int peepool_op(struct worker *w) {
    pool_conn_t c;
    pool_result_t *r = NULL;
    uint64_t t0 = bench_now_ns();
    if (pool_connect((pool_t *)w->pool, &c) != POOL_OK) return -1;
    record_wait(w, bench_now_ns() - t0);
    if (pool_query(c, "SELECT 1", NULL, 0, &r) != POOL_OK || pool_result_rows(r) != 1) {
        pool_result_free(r);
        pool_release((pool_t *)w->pool, c);
        return -1;
    }
    pool_result_free(r);
    return pool_release((pool_t *)w->pool, c) == POOL_OK ? 0 : -1;
}

#ifdef HAVE_ZDB
static int zdb_op(struct worker *w) {
    Connection_T c;
    ResultSet_T r;
    uint64_t t0 = bench_now_ns();
    while ((c = ConnectionPool_getConnection((ConnectionPool_T)w->pool)) == NULL) {
        if (stop_flag) return 1;
        sched_yield();
    }
    record_wait(w, bench_now_ns() - t0);
    r = Connection_executeQuery(c, "SELECT 1");
    if (!ResultSet_next(r) || ResultSet_getInt(r, 1) != 1) {
        Connection_close(c);
        return -1;
    }
    Connection_close(c);
    return 0;
}
#endif

#ifdef HAVE_SQLITE3
#define RAW_CONNS 4
struct rawpool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sqlite3 *db[RAW_CONNS];
    sqlite3_stmt *stmt[RAW_CONNS];
    int free_list[RAW_CONNS];
    int nfree;
};

static int rawpool_op(struct worker *w) {
    struct rawpool *p = w->pool;
    uint64_t t0 = bench_now_ns();
    int i, ok;
    pthread_mutex_lock(&p->mu);
    while (p->nfree == 0) pthread_cond_wait(&p->cv, &p->mu);
    i = p->free_list[--p->nfree];
    pthread_mutex_unlock(&p->mu);
    record_wait(w, bench_now_ns() - t0);
    ok = sqlite3_step(p->stmt[i]) == SQLITE_ROW && sqlite3_column_int(p->stmt[i], 0) == 1;
    sqlite3_reset(p->stmt[i]);
    pthread_mutex_lock(&p->mu);
    p->free_list[p->nfree++] = i;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return ok ? 0 : -1;
}

static int rawpool_open(struct rawpool *p) {
    int i;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (i = 0; i < RAW_CONNS; i++) {
        if (sqlite3_open(":memory:", &p->db[i]) != SQLITE_OK ||
            sqlite3_prepare_v2(p->db[i], "SELECT 1", -1, &p->stmt[i], NULL) != SQLITE_OK)
            return -1;
        p->free_list[i] = i;
    }
    p->nfree = RAW_CONNS;
    return 0;
}

static void rawpool_close(struct rawpool *p) {
    int i;
    for (i = 0; i < RAW_CONNS; i++) {
        sqlite3_finalize(p->stmt[i]);
        sqlite3_close(p->db[i]);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}
#endif

static void *worker_main(void *arg) {
    struct worker *w = arg;
    pthread_barrier_wait(&start_barrier);
    while (!stop_flag) {
        int rc = -1;
        if (w->kind == 0) rc = peepool_op(w);
#ifdef HAVE_ZDB
        if (w->kind == 1) rc = zdb_op(w);
#endif
#ifdef HAVE_SQLITE3
        if (w->kind == 2) rc = rawpool_op(w);
#endif
        if (rc < 0) {
            w->failed = 1;
            break;
        }
        if (rc == 0) w->ops++;
    }
    return NULL;
}

struct run_result {
    double ns_per_op, total, maxmin, p99, starved;
};

static int one_run(int kind, void *pool, int nthreads, double seconds, struct run_result *out) {
    static struct worker ws[MAX_THREADS];
    uint64_t hist[BUCKETS] = {0}, total = 0, seen = 0, target;
    long mx = 0, mn = -1;
    int i, b, starved = 0, failed = 0;
    uint64_t t0, t1;
    struct timespec d;

    memset(ws, 0, sizeof ws);
    stop_flag = 0;
    pthread_barrier_init(&start_barrier, NULL, (unsigned)nthreads + 1);
    for (i = 0; i < nthreads; i++) {
        ws[i].kind = kind;
        ws[i].pool = pool;
        pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]);
    }
    pthread_barrier_wait(&start_barrier);
    t0 = bench_now_ns();
    d.tv_sec = (time_t)seconds;
    d.tv_nsec = (long)((seconds - (double)d.tv_sec) * 1e9);
    nanosleep(&d, NULL);
    stop_flag = 1;
    for (i = 0; i < nthreads; i++) pthread_join(ws[i].tid, NULL);
    t1 = bench_now_ns();
    pthread_barrier_destroy(&start_barrier);

    for (i = 0; i < nthreads; i++) {
        failed |= ws[i].failed;
        total += (uint64_t)ws[i].ops;
        if (ws[i].ops > mx) mx = ws[i].ops;
        if (mn < 0 || ws[i].ops < mn) mn = ws[i].ops;
        if (ws[i].ops == 0) starved++;
        for (b = 0; b < BUCKETS; b++) hist[b] += ws[i].hist[b];
    }
    if (failed || total == 0) return -1;
    target = (total * 99 + 99) / 100;
    for (b = 0; b < BUCKETS; b++) {
        seen += hist[b];
        if (seen >= target) break;
    }
    out->ns_per_op = (double)(t1 - t0) / (double)total;
    out->total = (double)total;
    out->maxmin = mn > 0 ? (double)mx / (double)mn : INFINITY;
    out->p99 = pow(2.0, (double)(b + 1) / 8.0); /* upper edge of the bucket */
    out->starved = starved;
    return 0;
}

static void run_series(const char *label, int kind, void *pool, int nthreads, double seconds) {
    double a[BENCH_MAX_RUNS], t[BENCH_MAX_RUNS], m[BENCH_MAX_RUNS], p[BENCH_MAX_RUNS],
        s[BENCH_MAX_RUNS];
    int runs = bench_runs(), i;
    struct run_result r;
    if (one_run(kind, pool, nthreads, seconds / 5, &r) != 0) { /* warm-up */
        fprintf(stderr, "contended_%s_t%d: failed\n", label, nthreads);
        return;
    }
    for (i = 0; i < runs; i++) {
        if (one_run(kind, pool, nthreads, seconds, &r) != 0) {
            fprintf(stderr, "contended_%s_t%d: run %d failed\n", label, nthreads, i);
            return;
        }
        a[i] = r.ns_per_op;
        t[i] = r.total;
        m[i] = r.maxmin;
        p[i] = r.p99;
        s[i] = r.starved;
    }
    printf("contended_%s_t%d\t%.1f\t%.0f\tmaxmin=%.3f\tp99_wait_ns=%.0f\tstarved=%.0f\n", label,
           nthreads, bench_median(a, runs), bench_median(t, runs), bench_median(m, runs),
           bench_median(p, runs), bench_median(s, runs));
    fflush(stdout);
}

static int only_is(const char *pool) {
    const char *only = getenv("BENCH_ONLY");
    return !only || !*only || strcmp(only, pool) == 0;
}

int main(void) {
    static const int counts[] = {2, 8, 32};
    double seconds = atof(bench_env("BENCH_SECONDS", "1"));
    size_t i;
    if (seconds <= 0) seconds = 1;

    printf("# peepool %s, %g s per run\n", pool_version(), seconds);
    if (only_is("peepool")) {
        pool_t *pool = NULL;
        if (pool_new("sqlite::memory:?max_connections=4&timeout=inf", &pool) != POOL_OK) {
            fprintf(stderr, "pool_new: %s\n", pool_last_error());
            return 1;
        }
        for (i = 0; i < sizeof counts / sizeof counts[0]; i++)
            run_series("peepool", 0, pool, counts[i], seconds);
        pool_free(pool);
    }

#ifdef HAVE_ZDB
    if (only_is("libzdb")) {
        char url_s[128];
        URL_T url;
        ConnectionPool_T zpool;
        snprintf(url_s, sizeof url_s, "sqlite:///tmp/peepool_bench_contended_%ld.db",
                 (long)getpid());
        url = URL_new(url_s);
        zpool = ConnectionPool_new(url);
        ConnectionPool_setInitialConnections(zpool, 4);
        ConnectionPool_setMaxConnections(zpool, 4);
        ConnectionPool_start(zpool);
        for (i = 0; i < sizeof counts / sizeof counts[0]; i++)
            run_series("libzdb", 1, zpool, counts[i], seconds);
        ConnectionPool_stop(zpool);
        ConnectionPool_free(&zpool);
        URL_free(&url);
        unlink(url_s + strlen("sqlite://"));
    }
#else
    printf("# libzdb: not found at configure time, skipped\n");
#endif

#ifdef HAVE_SQLITE3
    if (only_is("rawpool")) {
        static struct rawpool rp;
        printf("# rawpool: system sqlite3 %s\n", sqlite3_libversion());
        if (rawpool_open(&rp) == 0) {
            for (i = 0; i < sizeof counts / sizeof counts[0]; i++)
                run_series("rawpool", 2, &rp, counts[i], seconds);
        } else {
            printf("# rawpool: cannot open sqlite3 (skipped)\n");
        }
        rawpool_close(&rp);
    }
#else
    printf("# rawpool: sqlite3 not found at configure time, skipped\n");
#endif
    return 0;
}
