/* bench.h: timing helpers shared by the benchmark programs.
 *
 * Every program prints one line per benchmark:
 *   name<TAB>median_ns_per_op<TAB>ops_per_run[<TAB>extra key=value ...]
 * where the median is over BENCH_RUNS (default 5, at least 5) runs. Lines
 * starting with '#' are comments (skipped peers, versions). */
#ifndef PEEPOOL_BENCH_H
#define PEEPOOL_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_RUNS 64

/* The servers every program uses unless BENCH_PG_URL / BENCH_MYSQL_URL /
 * BENCH_ZDB_PG_URL / BENCH_ZDB_MYSQL_URL say otherwise (libzdb spells the
 * same servers its own way). */
#define BENCH_PG_DEFAULT "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
#define BENCH_MYSQL_DEFAULT "mysql://root@127.0.0.1:3306/test"
#define BENCH_ZDB_PG_DEFAULT "postgresql://127.0.0.1:5432/test?user=postgres&password="
#define BENCH_ZDB_MYSQL_DEFAULT "mysql://127.0.0.1:3306/test?user=root&password="

static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int bench_runs(void) {
    const char *s = getenv("BENCH_RUNS");
    int n = s ? atoi(s) : 5;
    if (n < 5) n = 5;
    if (n > BENCH_MAX_RUNS) n = BENCH_MAX_RUNS;
    return n;
}

/* Operation count scaled by BENCH_SCALE (a float, default 1). */
static inline long bench_ops(long base) {
    const char *s = getenv("BENCH_SCALE");
    double f = s ? atof(s) : 1.0;
    long n = (long)((double)base * (f > 0 ? f : 1.0));
    return n < 1 ? 1 : n;
}

/* Whether BENCH_ONLY (a comma-separated list; unset or empty: all) names db. */
static inline int bench_wanted(const char *db) {
    const char *only = getenv("BENCH_ONLY");
    return !only || !*only || strstr(only, db) != NULL;
}

static inline const char *bench_env(const char *name, const char *dflt) {
    const char *s = getenv(name);
    return s && *s ? s : dflt;
}

static int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* One run: do `ops` operations, return 0 on success. */
typedef int (*bench_fn)(void *ctx, long ops);

/* Runs fn once as a warm-up (ops/10), then `runs` times; stores the median
 * ns per operation in *median. Returns 0, or -1 when a run failed. */
static inline int bench_measure(const char *name, bench_fn fn, void *ctx, long ops,
                                double *median) {
    double ns[BENCH_MAX_RUNS];
    int runs = bench_runs(), i;
    if (fn(ctx, ops / 10 + 1) != 0) {
        fprintf(stderr, "%s: warm-up failed\n", name);
        return -1;
    }
    for (i = 0; i < runs; i++) {
        uint64_t t0 = bench_now_ns();
        if (fn(ctx, ops) != 0) {
            fprintf(stderr, "%s: run %d failed\n", name, i);
            return -1;
        }
        ns[i] = (double)(bench_now_ns() - t0) / (double)ops;
    }
    *median = bench_median(ns, runs);
    return 0;
}

/* bench_measure, then the benchmark's line. Returns 0, or -1 when a run
 * failed (then prints nothing). */
static inline int bench_run(const char *name, bench_fn fn, void *ctx, long ops) {
    double median;
    if (bench_measure(name, fn, ctx, ops, &median) != 0) return -1;
    printf("%s\t%.1f\t%ld\n", name, median, ops);
    fflush(stdout);
    return 0;
}

/* mysql://user[:pass]@host[:port]/db (no escapes), for the raw libmariadb
 * peers; user, pass and db hold 64 bytes, host 128. */
static inline int bench_parse_mysql_url(const char *url, char *user, char *pass, char *host,
                                        unsigned *port, char *db) {
    const char *p = strstr(url, "://"), *at, *slash, *colon, *q;
    *user = *pass = *host = *db = 0;
    *port = 3306;
    if (!p) return -1;
    p += 3;
    at = strchr(p, '@');
    if (at) {
        colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            snprintf(user, 64, "%.*s", (int)(colon - p), p);
            snprintf(pass, 64, "%.*s", (int)(at - colon - 1), colon + 1);
        } else {
            snprintf(user, 64, "%.*s", (int)(at - p), p);
        }
        p = at + 1;
    }
    slash = strchr(p, '/');
    if (!slash) slash = p + strlen(p);
    colon = memchr(p, ':', (size_t)(slash - p));
    if (colon) {
        snprintf(host, 128, "%.*s", (int)(colon - p), p);
        *port = (unsigned)atoi(colon + 1);
    } else {
        snprintf(host, 128, "%.*s", (int)(slash - p), p);
    }
    if (*slash == '/') {
        q = strchr(slash + 1, '?');
        snprintf(db, 64, "%.*s", q ? (int)(q - slash - 1) : (int)strlen(slash + 1), slash + 1);
    }
    return 0;
}

#endif
