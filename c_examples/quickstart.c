/* quickstart: a pool over SQLite, four threads that insert and read back
 * rows, then the pool's stats.
 *
 *   quickstart [url]    default "sqlite:quickstart.db?max_connections=4&timeout=5"
 */
#define _POSIX_C_SOURCE 200809L
#include <peepool.h>

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define THREADS 4
#define ROWS 5

static pool_t *pool;
static char table[64];

static void *worker(void *arg) {
    long id = (long)arg;
    pool_conn_t conn;
    pool_result_t *res = NULL;
    char sql[256];
    int i;
    if (pool_connect(pool, &conn) != POOL_OK) { /* new or reused connection */
        fprintf(stderr, "thread %ld: %s\n", id, pool_last_error());
        return (void *)1;
    }
    for (i = 0; i < ROWS; i++) {
        char name[32];
        pool_value_t args[3];
        snprintf(name, sizeof name, "row %d of thread %ld", i, id);
        args[0] = pool_int64(id);
        args[1] = pool_int64(i);
        args[2] = pool_text(name);
        snprintf(sql, sizeof sql, "INSERT INTO %s (thread, n, name) VALUES (?, ?, ?)", table);
        if (pool_execute(conn, sql, args, 3, NULL) != POOL_OK) {
            fprintf(stderr, "thread %ld: insert: %s\n", id, pool_last_error());
            pool_release(pool, conn);
            return (void *)1;
        }
    }
    {
        pool_value_t arg = pool_int64(id);
        snprintf(sql, sizeof sql, "SELECT n, name FROM %s WHERE thread = ? ORDER BY n", table);
        if (pool_query(conn, sql, &arg, 1, &res) != POOL_OK) {
            fprintf(stderr, "thread %ld: select: %s\n", id, pool_last_error());
            pool_release(pool, conn);
            return (void *)1;
        }
    }
    for (i = 0; (size_t)i < pool_result_rows(res); i++) {
        int64_t n = 0;
        const char *name = NULL;
        pool_result_int64(res, (size_t)i, 0, &n);
        pool_result_text(res, (size_t)i, 1, &name, NULL);
        printf("thread %ld read back: %lld %s\n", id, (long long)n, name);
    }
    i = pool_result_rows(res) == ROWS ? 0 : 1;
    pool_result_free(res);
    pool_release(pool, conn); /* back to the pool */
    return (void *)(long)i;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "sqlite:quickstart.db?max_connections=4&timeout=5";
    pthread_t threads[THREADS];
    pool_stats_t st;
    pool_conn_t conn;
    char sql[256];
    long i;
    int failed = 0;

    printf("peepool %s\n", pool_version());
    if (pool_new(url, &pool) != POOL_OK) {
        fprintf(stderr, "pool_new: %s\n", pool_last_error());
        return 1;
    }
    snprintf(table, sizeof table, "quickstart_%ld", (long)getpid());
    if (pool_connect(pool, &conn) != POOL_OK) {
        fprintf(stderr, "pool_connect: %s\n", pool_last_error());
        pool_free(pool);
        return 1;
    }
    snprintf(sql, sizeof sql,
             "CREATE TABLE %s (thread BIGINT, n BIGINT, name VARCHAR(100))", table);
    if (pool_execute(conn, sql, NULL, 0, NULL) != POOL_OK) {
        fprintf(stderr, "create: %s\n", pool_last_error());
        pool_release(pool, conn);
        pool_free(pool);
        return 1;
    }
    pool_release(pool, conn);

    for (i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
    for (i = 0; i < THREADS; i++) {
        void *rc = NULL;
        pthread_join(threads[i], &rc);
        failed |= rc != NULL;
    }

    if (pool_connect(pool, &conn) == POOL_OK) {
        snprintf(sql, sizeof sql, "DROP TABLE %s", table);
        if (pool_execute(conn, sql, NULL, 0, NULL) != POOL_OK) failed = 1;
        pool_release(pool, conn);
    }
    if (pool_stats(pool, &st) == POOL_OK) {
        printf("stats: max_connections=%llu open=%llu idle=%llu in_use=%llu opened_total=%llu "
               "checkouts=%llu timeouts=%llu wait_us_total=%llu\n",
               (unsigned long long)st.max_connections, (unsigned long long)st.open,
               (unsigned long long)st.idle, (unsigned long long)st.in_use,
               (unsigned long long)st.opened_total, (unsigned long long)st.checkouts,
               (unsigned long long)st.timeouts, (unsigned long long)st.wait_us_total);
    }
    pool_free(pool);
    printf("%s\n", failed ? "FAILED" : "ok");
    return failed ? 1 : 0;
}
