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

/* Runs fn once as a warm-up (ops/10), then `runs` times; prints the line.
 * Returns 0, or -1 when a run failed (then prints nothing). */
static inline int bench_run(const char *name, bench_fn fn, void *ctx, long ops) {
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
    printf("%s\t%.1f\t%ld\n", name, bench_median(ns, runs), ops);
    fflush(stdout);
    return 0;
}

#endif
