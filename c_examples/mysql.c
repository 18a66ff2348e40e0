/* mysql: the same pool calls as the SQLite quickstart, over MySQL or MariaDB:
 * a transaction, typed parameters (?), and columns of several
 * types read back as mysql_fetch_row prints them.
 *
 *   mysql [url]   default "mysql://root@127.0.0.1:3306/test?max_connections=4&timeout=5"
 */
#define _POSIX_C_SOURCE 200809L
#include <peepool.h>

#include <stdio.h>
#include <unistd.h>

static int fail(const char *what) {
    fprintf(stderr, "%s: %s (SQLSTATE %s)\n", what, pool_last_error(), pool_last_sqlstate());
    return 1;
}

int main(int argc, char **argv) {
    const char *url =
        argc > 1 ? argv[1] : "mysql://root@127.0.0.1:3306/test?max_connections=4&timeout=5";
    pool_t *pool;
    pool_conn_t conn;
    pool_result_t *res;
    pool_stats_t st;
    char sql[512], table[64];
    size_t row, col;
    int rc = 0;

    if (pool_new(url, &pool) != POOL_OK) return fail("pool_new");
    if (pool_connect(pool, &conn) != POOL_OK) {
        rc = fail("pool_connect");
        pool_free(pool);
        return rc;
    }
    snprintf(table, sizeof table, "example_mysql_%ld", (long)getpid());
    snprintf(sql, sizeof sql,
             "CREATE TABLE %s (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL,"
             " score DECIMAL(10,2), born DATE, tags SET('a','b c'), meta JSON)",
             table);
    if (pool_execute(conn, sql, NULL, 0, NULL) != POOL_OK) rc = fail("create");

    /* A transaction: both rows or neither. Text parameters bind to any type
     * the server can parse from text (date, decimal, set, json). */
    if (rc == 0 && pool_begin(conn) == POOL_OK) {
        pool_value_t a[] = {pool_text("charlie"), pool_double(91.5), pool_text("1990-04-01"),
                            pool_text("a,b c"), pool_text("{\"k\": [1, 2]}")};
        pool_value_t b[] = {pool_text("dana"), pool_int64(78), pool_null(), pool_null(),
                            pool_null()};
        snprintf(sql, sizeof sql,
                 "INSERT INTO %s (name, score, born, tags, meta) VALUES (?, ?, ?, ?, ?)",
                 table);
        if (pool_execute(conn, sql, a, 5, NULL) != POOL_OK || pool_execute(conn, sql, b, 5, NULL) != POOL_OK) {
            rc = fail("insert");
            pool_rollback(conn);
        } else if (pool_commit(conn) != POOL_OK) {
            rc = fail("commit");
        }
    }

    snprintf(sql, sizeof sql, "SELECT id, name, score, born, tags, meta FROM %s ORDER BY id", table);
    if (rc == 0 && pool_query(conn, sql, NULL, 0, &res) == POOL_OK) {
        for (row = 0; row < pool_result_rows(res); row++) {
            for (col = 0; col < pool_result_columns(res); col++) {
                const char *name = "", *text = NULL;
                bool null = false;
                pool_result_column_name(res, col, &name);
                pool_result_is_null(res, row, col, &null);
                if (!null) pool_result_text(res, row, col, &text, NULL);
                printf("%s%s=%s", col ? " " : "", name, null ? "NULL" : text);
            }
            printf("\n");
        }
        if (pool_result_rows(res) != 2) rc = 1;
        pool_result_free(res);
    } else if (rc == 0) {
        rc = fail("select");
    }

    /* A database error carries the server's SQLSTATE. */
    if (pool_execute(conn, "SELECT * FROM no_such_table_here", NULL, 0, NULL) == POOL_ERR_DATABASE)
        printf("expected error, SQLSTATE %s\n", pool_last_sqlstate());
    else
        rc = 1;

    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", table);
    pool_execute(conn, sql, NULL, 0, NULL);
    pool_release(pool, conn);
    if (pool_stats(pool, &st) == POOL_OK)
        printf("open=%llu idle=%llu in_use=%llu checkouts=%llu\n", (unsigned long long)st.open,
               (unsigned long long)st.idle, (unsigned long long)st.in_use,
               (unsigned long long)st.checkouts);
    pool_free(pool);
    return rc;
}
