/* cycle: checkout + release on one thread, SQLite in memory.
 *
 *   peepool_cycle_check     pool_connect + pool_release, liveness check on (default)
 *   peepool_cycle_nocheck   the same with check_on_checkout=false
 *   mutex_freelist_cycle    lower bound: a pthread mutex + a free list in plain C
 *   libzdb_cycle            ConnectionPool_getConnection + Connection_close (sqlite file)
 */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <peepool.h>
#include <pthread.h>
#include <unistd.h>
#ifdef HAVE_ZDB
#include <zdb.h>
#endif

static int peepool_cycle(void *ctx, long ops) {
    pool_t *pool = ctx;
    long i;
    for (i = 0; i < ops; i++) {
        pool_conn_t c;
        if (pool_connect(pool, &c) != POOL_OK) {
            fprintf(stderr, "pool_connect: %s\n", pool_last_error());
            return -1;
        }
        if (pool_release(pool, c) != POOL_OK) return -1;
    }
    return 0;
}

/* The lower bound: what any pool must at least do (lock, pop, unlock; lock,
 * push, unlock). */
struct node {
    struct node *next;
    int payload;
};
struct freelist {
    pthread_mutex_t mu;
    struct node *head;
    struct node nodes[4];
};

static struct node *fl_get(struct freelist *fl) {
    struct node *n;
    pthread_mutex_lock(&fl->mu);
    n = fl->head;
    if (n) fl->head = n->next;
    pthread_mutex_unlock(&fl->mu);
    return n;
}

static void fl_put(struct freelist *fl, struct node *n) {
    pthread_mutex_lock(&fl->mu);
    n->next = fl->head;
    fl->head = n;
    pthread_mutex_unlock(&fl->mu);
}

static int freelist_cycle(void *ctx, long ops) {
    struct freelist *fl = ctx;
    long i;
    for (i = 0; i < ops; i++) {
        struct node *n = fl_get(fl);
        if (!n) return -1;
        /* keep the compiler from folding get+put away */
        __asm__ __volatile__("" : : "r"(n) : "memory");
        fl_put(fl, n);
    }
    return 0;
}

#ifdef HAVE_ZDB
static int zdb_cycle(void *ctx, long ops) {
    ConnectionPool_T pool = ctx;
    long i;
    for (i = 0; i < ops; i++) {
        Connection_T c = ConnectionPool_getConnection(pool);
        if (!c) return -1;
        Connection_close(c);
    }
    return 0;
}
#endif

static void run_peepool(const char *name, const char *url) {
    pool_t *pool = NULL;
    if (pool_new(url, &pool) != POOL_OK) {
        fprintf(stderr, "pool_new(%s): %s\n", url, pool_last_error());
        return;
    }
    bench_run(name, peepool_cycle, pool, bench_ops(1000000));
    pool_free(pool);
}

int main(void) {
    struct freelist fl;
    int i;

    printf("# peepool %s\n", pool_version());
    run_peepool("peepool_cycle_check", "sqlite::memory:?max_connections=4");
    run_peepool("peepool_cycle_nocheck", "sqlite::memory:?max_connections=4&check_on_checkout=false");

    pthread_mutex_init(&fl.mu, NULL);
    fl.head = NULL;
    for (i = 0; i < 4; i++) {
        fl.nodes[i].payload = i;
        fl.nodes[i].next = fl.head;
        fl.head = &fl.nodes[i];
    }
    bench_run("mutex_freelist_cycle", freelist_cycle, &fl, bench_ops(5000000));
    pthread_mutex_destroy(&fl.mu);

#ifdef HAVE_ZDB
    {
        char url_s[128];
        URL_T url;
        ConnectionPool_T zpool;
        snprintf(url_s, sizeof url_s, "sqlite:///tmp/peepool_bench_cycle_%ld.db", (long)getpid());
        printf("# libzdb %s\n", ConnectionPool_version());
        url = URL_new(url_s);
        zpool = ConnectionPool_new(url);
        ConnectionPool_setInitialConnections(zpool, 4);
        ConnectionPool_setMaxConnections(zpool, 4);
        ConnectionPool_start(zpool);
        bench_run("libzdb_cycle", zdb_cycle, zpool, bench_ops(200000));
        ConnectionPool_stop(zpool);
        ConnectionPool_free(&zpool);
        URL_free(&url);
        unlink(url_s + strlen("sqlite://"));
    }
#else
    printf("# libzdb: not found at configure time, skipped\n");
#endif
    return 0;
}
