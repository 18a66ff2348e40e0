/* threads: many threads share a small pool with a bounded wait. A thread that
 * cannot get a connection within `timeout` gets POOL_ERR_EXHAUSTED and
 * retries later; the stats show the waits and timeouts.
 *
 *   threads [url]    default "sqlite::memory:?max_connections=2&timeout=0.05"
 */
#define _POSIX_C_SOURCE 200809L
#include <peepool.h>

#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define THREADS 12
#define ROUNDS 10

static pool_t *pool;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int exhausted, done, errors;

static void pause_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static void *worker(void *arg) {
    int round;
    (void)arg;
    for (round = 0; round < ROUNDS;) {
        pool_conn_t conn;
        pool_status_t st = pool_connect(pool, &conn);
        if (st == POOL_ERR_EXHAUSTED) { /* nothing free within timeout: back off */
            pthread_mutex_lock(&lock);
            exhausted++;
            pthread_mutex_unlock(&lock);
            pause_ms(5);
            continue;
        }
        if (st != POOL_OK) {
            fprintf(stderr, "pool_connect: %s\n", pool_last_error());
            pthread_mutex_lock(&lock);
            errors++;
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        if (pool_execute(conn, "SELECT 1", NULL, 0, NULL) != POOL_OK) {
            fprintf(stderr, "execute: %s\n", pool_last_error());
            pthread_mutex_lock(&lock);
            errors++;
            pthread_mutex_unlock(&lock);
        }
        pause_ms(10); /* hold it a while so that others must wait */
        pool_release(pool, conn);
        pthread_mutex_lock(&lock);
        done++;
        pthread_mutex_unlock(&lock);
        round++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "sqlite::memory:?max_connections=2&timeout=0.05";
    pthread_t threads[THREADS];
    pool_stats_t st;
    int i;

    if (pool_new(url, &pool) != POOL_OK) {
        fprintf(stderr, "pool_new: %s\n", pool_last_error());
        return 1;
    }
    for (i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, NULL);
    for (i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    if (pool_stats(pool, &st) != POOL_OK) {
        fprintf(stderr, "pool_stats: %s\n", pool_last_error());
        pool_free(pool);
        return 1;
    }
    printf("%d threads x %d rounds: %d done, %d times EXHAUSTED (retried), %d errors\n", THREADS,
           ROUNDS, done, exhausted, errors);
    printf("stats: max_connections=%llu open=%llu opened_total=%llu checkouts=%llu timeouts=%llu "
           "wait_us_total=%llu\n",
           (unsigned long long)st.max_connections, (unsigned long long)st.open,
           (unsigned long long)st.opened_total, (unsigned long long)st.checkouts,
           (unsigned long long)st.timeouts, (unsigned long long)st.wait_us_total);
    pool_free(pool);
    /* never more open than the limit; every EXHAUSTED is a counted timeout */
    return errors == 0 && done == THREADS * ROUNDS && st.open <= st.max_connections &&
                   st.timeouts == (unsigned long long)exhausted
               ? 0
               : 1;
}
