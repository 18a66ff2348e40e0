/* Shared helpers of the C test harness: the URL under test, portable SQL
 * (placeholders, table names, column types), time, and small pool shortcuts. */
#ifndef PEEPOOL_TEST_HARNESS_H
#define PEEPOOL_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "check.h"

enum backend_kind { BACKEND_SQLITE, BACKEND_SQLITE_MEMORY, BACKEND_POSTGRES, BACKEND_MYSQL };

/* Set by main() from argv. */
extern const char *g_url;         /* the URL under test, maybe with options */
extern const char *g_argv0;       /* to re-run this program as a child */
extern enum backend_kind g_kind;

int is_sqlite(void);              /* file or memory */
int is_server(void);              /* postgres or mysql */
/* PEEPOOL_TEST_TXN_POOLER=1 (tests/pgbouncer/run.sh): the URL reaches the
 * server through a transaction-mode pooler, so a client connection has no
 * server process of its own (no pg_backend_pid to terminate). */
int behind_txn_pooler(void);
/* PostgreSQL with statement_cache=0 in the URL: a query that returns no row
 * has no columns (README, PostgreSQL; the driver keeps an unnamed statement's
 * columns only with its rows). */
int zero_rows_lack_columns(void);

/* g_url with extra pool options appended ("max_connections=2&timeout=1"). */
void url_with(char *out, size_t n, const char *options);

/* Open a pool over g_url plus options; a failed CHECK and NULL on error. */
pool_t *open_pool(const char *options);

/* Format SQL, then rewrite each '?' outside quotes into the backend's
 * placeholder ('?' for SQLite/MySQL, $1, $2, ... for PostgreSQL). */
void sql_fmt(char *out, size_t n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* A table name unique to this process: "pp_<pid>_<suffix>". */
void table_name(char *out, size_t n, const char *suffix);

/* The column type of a blob for this backend (BLOB / BYTEA). */
const char *blob_type(void);

/* SQL that runs for a while (about 0.3 s or more) and returns one row. */
void slow_sql(char *out, size_t n);

/* Execute SQL without parameters; returns the status, CHECKs nothing. */
pool_status_t exec0(pool_conn_t c, const char *sql);
/* Run "SELECT count(*) FROM table" and return it, -1 on failure. */
long long count_rows(pool_conn_t c, const char *table);

pool_stats_t stats_of(pool_t *pool);
double now_seconds(void);
void sleep_seconds(double s);
/* Poll until stats.field satisfies pred or timeout; returns the last stats. */
int wait_until(pool_t *pool, int (*pred)(const pool_stats_t *s, long long arg), long long arg,
               double timeout);

/* Test groups, one per file. */
void test_semantics(void);
void test_threads(void);
void test_busy(void);
void test_misuse(void);
void test_values(void);
void test_fork(void);
void test_logging(void);
int log_child_main(const char *url);

#endif
