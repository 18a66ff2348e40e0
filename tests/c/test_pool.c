/* The C test harness: every behaviour of DESIGN.md sections 2, 3 and 3a,
 * through the C ABI, against the database named by the URL.
 *
 *   test_pool <url>                e.g. sqlite::memory:, sqlite:/tmp/t.db,
 *                                  postgres://postgres@127.0.0.1:5432/test,
 *                                  mysql://root@127.0.0.1:3306/test
 *
 * PEEPOOL_TEST_ONLY=semantics,threads,busy,values,misuse,logging,fork,version
 * runs only the named groups. Prints one line "N passed, N failed" at the end; exits non-zero on failure. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CHECK_DEFINE_COUNTERS;

static enum backend_kind kind_of(const char *url) {
    if (strncmp(url, "sqlite::memory:", 15) == 0) return BACKEND_SQLITE_MEMORY;
    if (strncmp(url, "sqlite", 6) == 0) return BACKEND_SQLITE;
    if (strncmp(url, "postgres", 8) == 0) return BACKEND_POSTGRES;
    return BACKEND_MYSQL; /* mysql:// or mariadb:// */
}

/* PEEPOOL_TEST_ONLY=key,key,... runs only those groups (for debugging). */
static void run(const char *key, const char *name, void (*fn)(void)) {
    double start = now_seconds();
    unsigned long failed_before;
    const char *only = getenv("PEEPOOL_TEST_ONLY");
    if (only && only[0] && !strstr(only, key)) {
        fprintf(stderr, "[skip] %s\n", name);
        return;
    }
    pthread_mutex_lock(&check_lock);
    failed_before = check_failed;
    pthread_mutex_unlock(&check_lock);
    fn();
    pthread_mutex_lock(&check_lock);
    fprintf(stderr, "[%s] %s (%.2f s)\n", check_failed == failed_before ? "ok" : "FAIL", name,
            now_seconds() - start);
    pthread_mutex_unlock(&check_lock);
}

static void test_version_and_status(void) {
    int code;
    CHECK_STR(pool_version(), PEEPOOL_VERSION_STRING);
    {
        char expect[64];
        snprintf(expect, sizeof expect, "%d.%d.%d", PEEPOOL_VERSION_MAJOR, PEEPOOL_VERSION_MINOR,
                 PEEPOOL_VERSION_PATCH);
        CHECK_STR(PEEPOOL_VERSION_STRING, expect);
    }
    CHECK_CONTAINS(pool_status_str(POOL_OK), "POOL_OK");
    CHECK_CONTAINS(pool_status_str(POOL_ERR_INVALID_ARGUMENT), "POOL_ERR_INVALID_ARGUMENT");
    CHECK_CONTAINS(pool_status_str(POOL_ERR_CONFIG), "POOL_ERR_CONFIG");
    CHECK_CONTAINS(pool_status_str(POOL_ERR_CONNECT), "POOL_ERR_CONNECT");
    CHECK_CONTAINS(pool_status_str(POOL_ERR_EXHAUSTED), "POOL_ERR_EXHAUSTED");
    CHECK_CONTAINS(pool_status_str(POOL_ERR_INVALID_HANDLE), "POOL_ERR_INVALID_HANDLE");
    CHECK_CONTAINS(pool_status_str(POOL_ERR_BUSY), "POOL_ERR_BUSY");
    CHECK_CONTAINS(pool_status_str(POOL_ERR_DATABASE), "POOL_ERR_DATABASE");
    CHECK_CONTAINS(pool_status_str(POOL_ERR_CONVERSION), "POOL_ERR_CONVERSION");
    CHECK_CONTAINS(pool_status_str(POOL_ERR_CLOSED), "POOL_ERR_CLOSED");
    CHECK_CONTAINS(pool_status_str(POOL_ERR_INTERNAL), "POOL_ERR_INTERNAL");
    for (code = 0; code <= 10; code++) {
        const char *s = pool_status_str(code);
        CHECK(s != NULL && strlen(s) > 0 && strcmp(s, "unknown status") != 0);
    }
    CHECK_STR(pool_status_str(11), "unknown status");
    CHECK_STR(pool_status_str(-1), "unknown status");
    CHECK_STR(pool_status_str(1000000), "unknown status");
    /* The explicit, append-only values. */
    CHECK_EQ(POOL_OK, 0);
    CHECK_EQ(POOL_ERR_INVALID_ARGUMENT, 1);
    CHECK_EQ(POOL_ERR_CONFIG, 2);
    CHECK_EQ(POOL_ERR_CONNECT, 3);
    CHECK_EQ(POOL_ERR_EXHAUSTED, 4);
    CHECK_EQ(POOL_ERR_INVALID_HANDLE, 5);
    CHECK_EQ(POOL_ERR_BUSY, 6);
    CHECK_EQ(POOL_ERR_DATABASE, 7);
    CHECK_EQ(POOL_ERR_CONVERSION, 8);
    CHECK_EQ(POOL_ERR_CLOSED, 9);
    CHECK_EQ(POOL_ERR_INTERNAL, 10);
    /* pool_last_error never returns NULL and is "" after a success. */
    CHECK(pool_last_error() != NULL);
    CHECK(pool_last_sqlstate() != NULL);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--log-child") == 0) {
        g_url = argv[2];
        g_kind = kind_of(g_url);
        return log_child_main(argv[2]);
    }
    if (argc == 4 && strcmp(argv[1], "--url-env") == 0) {
        /* test_pool --url-env NAME default-url: the URL from $NAME when set */
        const char *env = getenv(argv[2]);
        g_url = env && env[0] ? env : argv[3];
    } else if (argc == 2) {
        g_url = argv[1];
    } else {
        fprintf(stderr, "usage: %s <url> | --url-env NAME <default-url>\n", argv[0]);
        return 2;
    }
    g_argv0 = argv[0];
    g_kind = kind_of(g_url);
    setvbuf(stdout, NULL, _IOLBF, 0);
    fprintf(stderr, "test_pool: %s\n", g_url);

    run("version", "version and status strings", test_version_and_status);
    run("semantics", "seed semantics (DESIGN.md section 2)", test_semantics);
    run("threads", "threads", test_threads);
    run("busy", "concurrent use of one connection is BUSY", test_busy);
    run("values", "values", test_values);
    run("misuse", "misuse", test_misuse);
    run("logging", "logging", test_logging);
    run("fork", "fork", test_fork);
    return check_summary();
}
