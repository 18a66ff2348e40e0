/* stats_logging: watching a pool. A log callback receives the pool's
 * events, pool_stats() gives its gauges and counters, and leak_threshold
 * reports a connection held for too long.
 *
 * Without a callback peepool writes its log lines to stderr, filtered by
 * the PEEPOOL_LOG environment variable (error, warn, info or debug, e.g.
 * `PEEPOOL_LOG=debug ./stats_logging`). pool_set_logger(pool, fn, data)
 * sends them to fn instead, and pool_set_logger(pool, NULL, NULL) goes
 * back to stderr.
 *
 *   stats_logging [url]   default "sqlite:stats_logging.db?max_connections=4&timeout=5"
 *
 * Exits 0 when the counters and the log say what the program did, 1
 * otherwise.
 */
#define _POSIX_C_SOURCE 200809L
#include <peepool.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* What the callback counts. The callback may run on any thread (the pool's
 * maintenance thread included) and on several at once, so the counters
 * are guarded by a mutex. */
typedef struct {
    pthread_mutex_t lock;
    unsigned long events;    /* every line */
    unsigned long by_level[5]; /* indexed by POOL_LOG_ERROR .. POOL_LOG_DEBUG */
    unsigned long leaks;     /* lines reporting a leak */
} log_counts_t;

static const char *level_name(int level) {
    switch (level) {
    case POOL_LOG_ERROR: return "error";
    case POOL_LOG_WARN: return "warn";
    case POOL_LOG_INFO: return "info";
    case POOL_LOG_DEBUG: return "debug";
    default: return "?";
    }
}

/* The log callback. `message` is valid only during the call (copy it to
 * keep it), and the callback must not call back into the pool. */
static void on_log(void *user_data, int level, const char *message) {
    log_counts_t *counts = user_data;
    pthread_mutex_lock(&counts->lock);
    counts->events++;
    if (level >= POOL_LOG_ERROR && level <= POOL_LOG_DEBUG) counts->by_level[level]++;
    if (strstr(message, "leak") != NULL) counts->leaks++;
    printf("  log [%s] %s\n", level_name(level), message);
    fflush(stdout);
    pthread_mutex_unlock(&counts->lock);
}

static unsigned long leaks_logged(log_counts_t *counts) {
    unsigned long n;
    pthread_mutex_lock(&counts->lock);
    n = counts->leaks;
    pthread_mutex_unlock(&counts->lock);
    return n;
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static int fail(const char *what) {
    fprintf(stderr, "%s: %s\n", what, pool_last_error());
    return 1;
}

/* Prints every field of pool_stats_t. */
static void print_stats(const char *title, const pool_stats_t *s) {
    printf("%s:\n", title);
    printf("  max_connections  %llu (0 = unlimited)\n", (unsigned long long)s->max_connections);
    printf("  open             %llu (idle + in use + condemned)\n", (unsigned long long)s->open);
    printf("  idle             %llu\n", (unsigned long long)s->idle);
    printf("  in_use           %llu\n", (unsigned long long)s->in_use);
    printf("  waiting          %llu (threads waiting in pool_connect)\n", (unsigned long long)s->waiting);
    printf("  opened_total     %llu\n", (unsigned long long)s->opened_total);
    printf("  closed_total     %llu, of which:\n", (unsigned long long)s->closed_total);
    printf("    closed_stale     %llu (stale_timeout)\n", (unsigned long long)s->closed_stale);
    printf("    closed_idle      %llu (idle_timeout)\n", (unsigned long long)s->closed_idle);
    printf("    closed_dead      %llu (failed check, lost link)\n", (unsigned long long)s->closed_dead);
    printf("    closed_manual    %llu (pool_manual_close)\n", (unsigned long long)s->closed_manual);
    printf("    closed_reclaimed %llu (pool_close_stale)\n", (unsigned long long)s->closed_reclaimed);
    printf("    closed_cleared   %llu (pool_close_idle, pool_close_all)\n", (unsigned long long)s->closed_cleared);
    printf("  checkouts        %llu\n", (unsigned long long)s->checkouts);
    printf("  timeouts         %llu\n", (unsigned long long)s->timeouts);
    printf("  wait_us_total    %llu\n", (unsigned long long)s->wait_us_total);
    printf("  leaks            %llu (held past leak_threshold)\n", (unsigned long long)s->leaks);
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "sqlite:stats_logging.db?max_connections=4&timeout=5";
    char leak_url[1024];
    log_counts_t counts;
    pool_t *pool = NULL, *leaky = NULL;
    pool_conn_t a, b, c;
    pool_stats_t st;
    size_t closed = 0;
    int i, rc = 0;

    memset(&counts, 0, sizeof counts);
    pthread_mutex_init(&counts.lock, NULL);

    if (pool_new(url, &pool) != POOL_OK) return fail("pool_new");
    /* From here on the pool's events go to on_log; `counts` must stay valid
     * until pool_free returns (it lives in main, so it does). */
    pool_set_logger(pool, on_log, &counts);

    /* Two connections at once: both are opened. */
    printf("checking out two connections\n");
    if (pool_connect(pool, &a) != POOL_OK) {
        rc = fail("pool_connect a");
        pool_free(pool);
        return rc;
    }
    if (pool_connect(pool, &b) != POOL_OK) {
        rc = fail("pool_connect b");
        pool_release(pool, a);
        pool_free(pool);
        return rc;
    }
    if (pool_execute(a, "SELECT 1", NULL, 0, NULL) != POOL_OK) rc = fail("select on a");
    if (pool_execute(b, "SELECT 1", NULL, 0, NULL) != POOL_OK) rc = fail("select on b");
    printf("releasing them\n");
    if (pool_release(pool, a) != POOL_OK) rc = fail("release a");
    if (pool_release(pool, b) != POOL_OK) rc = fail("release b");

    /* A third checkout reuses an idle connection; pool_manual_close closes
     * it for good instead of returning it. */
    printf("checking out one more and closing it with pool_manual_close\n");
    if (pool_connect(pool, &c) != POOL_OK) rc = fail("pool_connect c");
    else if (pool_manual_close(pool, c) != POOL_OK) rc = fail("pool_manual_close");

    /* The one idle connection left is closed by pool_close_idle. */
    printf("pool_close_idle\n");
    if (pool_close_idle(pool, &closed) != POOL_OK) rc = fail("pool_close_idle");
    printf("pool_close_idle closed %lu connection(s)\n", (unsigned long)closed);

    if (pool_stats(pool, &st) != POOL_OK) {
        rc = fail("pool_stats");
    } else {
        print_stats("stats", &st);
        /* What the steps above must have produced (with a URL that sets no
         * min_connections, idle_timeout or stale_timeout, which would add
         * their own opens and closes). */
        if (st.checkouts != 3 || st.opened_total != 2 || st.closed_manual != 1 || closed != 1 ||
            st.closed_cleared != 1 || st.closed_total != 2 || st.open != 0 || st.in_use != 0 ||
            st.idle != 0 || st.leaks != 0) {
            fprintf(stderr, "unexpected stats\n");
            rc = 1;
        }
    }

    /* Leak detection: a second pool over the same database with
     * leak_threshold=0.2 (seconds). A connection held longer than that is
     * logged once, as a warning naming the thread, by the pool's maintenance
     * thread, and counted in stats.leaks. The connection keeps working: a
     * leak is only reported, never reclaimed (pool_close_stale does that). */
    snprintf(leak_url, sizeof leak_url, "%s%cleak_threshold=0.2", url, strchr(url, '?') ? '&' : '?');
    if (pool_new(leak_url, &leaky) != POOL_OK) {
        rc = fail("pool_new (leak_threshold)");
    } else {
        pool_set_logger(leaky, on_log, &counts);
        printf("holding a connection for 0.5 s with leak_threshold=0.2\n");
        if (pool_connect(leaky, &a) != POOL_OK) {
            rc = fail("pool_connect (leak)");
        } else {
            sleep_ms(500);
            /* The report comes from another thread; on a very loaded machine
             * (valgrind) give it a little longer before calling it missing. */
            for (i = 0; i < 40 && leaks_logged(&counts) == 0; i++) sleep_ms(50);
            if (pool_execute(a, "SELECT 1", NULL, 0, NULL) != POOL_OK) rc = fail("select after leak");
            if (pool_release(leaky, a) != POOL_OK) rc = fail("release (leak)");
        }
        if (pool_stats(leaky, &st) != POOL_OK) {
            rc = fail("pool_stats (leak)");
        } else {
            printf("leak pool: leaks=%llu checkouts=%llu\n", (unsigned long long)st.leaks,
                   (unsigned long long)st.checkouts);
            if (st.leaks != 1) {
                fprintf(stderr, "expected stats.leaks == 1\n");
                rc = 1;
            }
        }
        pool_free(leaky);
    }
    pool_free(pool);

    /* Both pools are freed: the callback is not called any more. */
    printf("log events: %lu (error %lu, warn %lu, info %lu, debug %lu), leak reports: %lu\n",
           counts.events, counts.by_level[POOL_LOG_ERROR], counts.by_level[POOL_LOG_WARN],
           counts.by_level[POOL_LOG_INFO], counts.by_level[POOL_LOG_DEBUG], counts.leaks);
    if (counts.leaks != 1) {
        fprintf(stderr, "the callback should have seen exactly one leak report\n");
        rc = 1;
    }
    if (counts.events <= counts.leaks) {
        fprintf(stderr, "the callback should have seen the connections being opened and closed\n");
        rc = 1;
    }
    pthread_mutex_destroy(&counts.lock);
    printf("%s\n", rc ? "FAILED" : "ok");
    return rc;
}
