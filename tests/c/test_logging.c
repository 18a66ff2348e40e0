/* Logging (pool_set_logger, PEEPOOL_LOG on stderr), leak detection, and
 * fork(). */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

struct log_sink {
    pthread_mutex_t lock;
    int count;
    int debug_count;
    int leak_count;
    int bad_level;
    char last[512];
    char leak_message[512];
};

static int contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle), i, j;
    for (i = 0; hay[i]; i++) {
        for (j = 0; j < n && hay[i + j] && tolower((unsigned char)hay[i + j]) == needle[j]; j++) {
        }
        if (j == n) return 1;
    }
    return 0;
}

static void sink_fn(void *user_data, int level, const char *message) {
    struct log_sink *s = (struct log_sink *)user_data;
    pthread_mutex_lock(&s->lock);
    s->count++;
    if (level == POOL_LOG_DEBUG) s->debug_count++;
    if (level < POOL_LOG_ERROR || level > POOL_LOG_DEBUG) s->bad_level++;
    if (message) {
        snprintf(s->last, sizeof s->last, "%s", message);
        if (contains_ci(message, "leak")) {
            s->leak_count++;
            snprintf(s->leak_message, sizeof s->leak_message, "%s", message);
        }
    }
    pthread_mutex_unlock(&s->lock);
}

static void logger_receives_debug_events(void) {
    pool_t *pool = open_pool("");
    struct log_sink sink;
    pool_conn_t c;
    int before;
    if (!pool) return;
    memset(&sink, 0, sizeof sink);
    pthread_mutex_init(&sink.lock, NULL);
    CHECK_OK(pool_set_logger(pool, sink_fn, &sink));
    CHECK_OK(pool_connect(pool, &c));
    CHECK_OK(pool_release(pool, c));
    CHECK_OK(pool_connect(pool, &c));
    CHECK_OK(pool_manual_close(pool, c));
    pthread_mutex_lock(&sink.lock);
    CHECK(sink.count >= 3);
    CHECK(sink.debug_count >= 3);
    CHECK_EQ(sink.bad_level, 0);
    before = sink.count;
    pthread_mutex_unlock(&sink.lock);
    CHECK_OK(pool_set_logger(pool, NULL, NULL)); /* removed: no more calls */
    CHECK_OK(pool_connect(pool, &c));
    CHECK_OK(pool_release(pool, c));
    pthread_mutex_lock(&sink.lock);
    CHECK_EQ(sink.count, before);
    pthread_mutex_unlock(&sink.lock);
    pool_free(pool);
    pthread_mutex_destroy(&sink.lock);
}

/* Run as "test_pool --log-child <url>" with PEEPOOL_LOG=debug. */
int log_child_main(const char *url) {
    pool_t *pool = NULL;
    pool_conn_t c;
    if (pool_new(url, &pool) != POOL_OK) return 3;
    if (pool_connect(pool, &c) != POOL_OK) return 4;
    if (pool_release(pool, c) != POOL_OK) return 5;
    pool_free(pool);
    return 0;
}

/* Run this program as "--log-child <url>" with PEEPOOL_LOG set to level (or
 * unset when NULL); what it wrote on stderr goes into buf. */
static int run_log_child(const char *level, char *buf, size_t size) {
    int fds[2];
    pid_t pid;
    size_t got = 0;
    ssize_t r;
    int status = 0;
    buf[0] = '\0';
    if (!CHECK(pipe(fds) == 0)) return -1;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        if (level)
            setenv("PEEPOOL_LOG", level, 1);
        else
            unsetenv("PEEPOOL_LOG");
        execl(g_argv0, g_argv0, "--log-child", g_url, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    while (got + 1 < size && (r = read(fds[0], buf + got, size - 1 - got)) > 0) got += (size_t)r;
    buf[got] = '\0';
    close(fds[0]);
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    return (int)got;
}

/* Without a callback, PEEPOOL_LOG=debug writes the same events to stderr;
 * without PEEPOOL_LOG a connect and release print nothing. */
static void peepool_log_env_writes_stderr(void) {
    char buf[8192];
    CHECK(run_log_child("debug", buf, sizeof buf) > 0);
    CHECK_EQ(run_log_child(NULL, buf, sizeof buf), 0);
    CHECK_EQ(run_log_child("error", buf, sizeof buf), 0);
}

/* A connection held longer than leak_threshold is reported once, naming the
 * thread that took it. */
static void leak_threshold_logs_once(void) {
    pool_t *pool = open_pool("leak_threshold=0.2");
    struct log_sink sink;
    pool_conn_t c;
    if (!pool) return;
    memset(&sink, 0, sizeof sink);
    pthread_mutex_init(&sink.lock, NULL);
    CHECK_OK(pool_set_logger(pool, sink_fn, &sink));
    CHECK_OK(pool_connect(pool, &c));
    sleep_seconds(2.5); /* maintenance wakes at least once a second */
    pthread_mutex_lock(&sink.lock);
    CHECK_EQ(sink.leak_count, 1);
    CHECK(contains_ci(sink.leak_message, "thread"));
    pthread_mutex_unlock(&sink.lock);
    CHECK_EQ(stats_of(pool).leaks, 1);
    CHECK_OK(pool_release(pool, c));
    CHECK_OK(pool_set_logger(pool, NULL, NULL));
    pool_free(pool);
    pthread_mutex_destroy(&sink.lock);
}

void test_logging(void) {
    logger_receives_debug_events();
    peepool_log_env_writes_stderr();
    leak_threshold_logs_once();
}

/* fork(): the child never uses the parent's connections; its pool opens
 * fresh ones. The parent's connection keeps working afterwards. */
void test_fork(void) {
    pool_t *pool = open_pool("");
    pool_conn_t c;
    char t[64], sql[256];
    pid_t pid;
    int status = 0;
    if (!pool) return;
    table_name(t, sizeof t, "fork");
    if (!CHECK_OK(pool_connect(pool, &c))) return;
    snprintf(sql, sizeof sql, "CREATE TABLE %s (id BIGINT)", t);
    CHECK_OK(exec0(c, sql));
    snprintf(sql, sizeof sql, "INSERT INTO %s (id) VALUES (1)", t);
    CHECK_OK(exec0(c, sql));
    CHECK_OK(pool_release(pool, c)); /* idle in the parent: the child must not reuse it */
    CHECK_OK(pool_connect(pool, &c)); /* and one held across the fork */
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        pool_conn_t mine;
        pool_stats_t s;
        int rc = 0;
        long long n;
        if (pool_connect(pool, &mine) != POOL_OK) {
            fprintf(stderr, "child: pool_connect: %s\n", pool_last_error());
            _exit(10);
        }
        if (exec0(mine, "SELECT 1") != POOL_OK) {
            fprintf(stderr, "child: SELECT 1: %s\n", pool_last_error());
            _exit(11);
        }
        n = count_rows(mine, t);
        if (g_kind == BACKEND_SQLITE_MEMORY) {
            if (n != -1) { /* a memory database starts empty in the child */
                fprintf(stderr, "child: sqlite::memory: table visible (count = %lld)\n", n);
                rc = 12;
            }
        } else if (n != 1) {
            fprintf(stderr, "child: count = %lld: %s\n", n, pool_last_error());
            rc = 13;
        }
        if (pool_stats(pool, &s) != POOL_OK) rc = 14;
        if (pool_release(pool, mine) != POOL_OK) rc = 15;
        /* the parent's handle is not the child's to use */
        if (exec0(c, "SELECT 1") == POOL_OK) {
            fprintf(stderr, "child: used the parent's connection\n");
            rc = 16;
        }
        _exit(rc);
    }
    CHECK(pid > 0);
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    CHECK_OK(exec0(c, "SELECT 1")); /* the parent's connection still works */
    CHECK_EQ(count_rows(c, t), 1);
    CHECK_OK(pool_release(pool, c));
    CHECK_OK(pool_connect(pool, &c));
    CHECK_OK(exec0(c, "SELECT 1"));
    snprintf(sql, sizeof sql, "DROP TABLE %s", t);
    CHECK_OK(exec0(c, sql));
    CHECK_OK(pool_release(pool, c));
    pool_free(pool);
}
