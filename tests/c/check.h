/* A very small test framework for the C harness: CHECK / CHECK_EQ / CHECK_OK
 * record a pass or a failure (file:line, the expression, and the thread's
 * pool_last_error()); check_summary() prints exactly one line
 * "N passed, N failed" and returns the exit code. Thread-safe. */
#ifndef PEEPOOL_TEST_CHECK_H
#define PEEPOOL_TEST_CHECK_H

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <peepool.h>

extern unsigned long check_passed;
extern unsigned long check_failed;
extern pthread_mutex_t check_lock;

/* Define the counters once, in the file that holds main(). */
#define CHECK_DEFINE_COUNTERS                                                  \
    unsigned long check_passed = 0;                                            \
    unsigned long check_failed = 0;                                            \
    pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER

static inline int check_record(int ok, const char *file, int line, const char *what,
                        const char *detail) {
    pthread_mutex_lock(&check_lock);
    if (ok) {
        check_passed++;
    } else {
        const char *err = pool_last_error();
        check_failed++;
        fprintf(stderr, "%s:%d: CHECK failed: %s%s%s\n    pool_last_error: \"%s\"\n",
                file, line, what, detail ? " -- " : "", detail ? detail : "",
                err ? err : "(NULL!)");
        fflush(stderr);
    }
    pthread_mutex_unlock(&check_lock);
    return ok;
}

static inline int check_eq_record(long long a, long long b, const char *file, int line,
                           const char *ea, const char *eb) {
    char what[512];
    char detail[128];
    snprintf(what, sizeof what, "%s == %s", ea, eb);
    snprintf(detail, sizeof detail, "got %lld, expected %lld", a, b);
    return check_record(a == b, file, line, what, a == b ? NULL : detail);
}

static inline int check_str_record(const char *a, const char *b, const char *file, int line,
                            const char *ea, const char *eb) {
    char what[512];
    char detail[512];
    int ok = a != NULL && b != NULL && strcmp(a, b) == 0;
    snprintf(what, sizeof what, "%s equals %s", ea, eb);
    snprintf(detail, sizeof detail, "got \"%s\", expected \"%s\"", a ? a : "(NULL)",
             b ? b : "(NULL)");
    return check_record(ok, file, line, what, ok ? NULL : detail);
}

static inline int check_contains_record(const char *hay, const char *needle, const char *file,
                                 int line, const char *ehay) {
    char what[512];
    char detail[1024];
    int ok = hay != NULL && needle != NULL && strstr(hay, needle) != NULL;
    snprintf(what, sizeof what, "%s contains \"%s\"", ehay, needle ? needle : "(NULL)");
    snprintf(detail, sizeof detail, "got \"%s\"", hay ? hay : "(NULL)");
    return check_record(ok, file, line, what, ok ? NULL : detail);
}

static inline int check_summary(void) {
    int failed;
    pthread_mutex_lock(&check_lock);
    printf("%lu passed, %lu failed\n", check_passed, check_failed);
    fflush(stdout);
    failed = check_failed != 0 || check_passed == 0;
    pthread_mutex_unlock(&check_lock);
    return failed ? 1 : 0;
}

#define CHECK(cond) check_record(!!(cond), __FILE__, __LINE__, #cond, NULL)
#define CHECK_EQ(a, b)                                                         \
    check_eq_record((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_OK(expr) CHECK_EQ((expr), POOL_OK)
#define CHECK_STATUS(expr, status) CHECK_EQ((expr), (status))
#define CHECK_STR(a, b) check_str_record((a), (b), __FILE__, __LINE__, #a, #b)
#define CHECK_CONTAINS(hay, needle)                                            \
    check_contains_record((hay), (needle), __FILE__, __LINE__, #hay)
#define CHECK_NOT_CONTAINS(hay, needle)                                        \
    check_record((hay) != NULL && strstr((hay), (needle)) == NULL, __FILE__,   \
                 __LINE__, #hay " lacks " #needle, (hay))

#endif
