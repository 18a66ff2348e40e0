/* transactions: pool_begin / pool_commit / pool_rollback, and what the pool
 * does with a transaction you forget to finish.
 *
 *   1. a committed insert stays;
 *   2. a rolled-back insert is gone;
 *   3. a transaction left open when the connection is released is rolled
 *      back by pool_release, so the next checkout does not see its insert;
 *   4. an error inside a transaction (a duplicate primary key): read
 *      pool_last_error() and pool_last_sqlstate(), then roll back.
 *
 * The same code runs on SQLite, PostgreSQL and MariaDB/MySQL; only the
 * parameter placeholder differs ($1 for PostgreSQL, ? otherwise).
 *
 *   transactions [url]   default "sqlite:transactions.db?max_connections=2&timeout=5"
 *
 * Exits 0 when every step behaved as described, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L
#include <peepool.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pool_t *pool;
static char table[64];
static const char *ph1, *ph2; /* the placeholders of parameters 1 and 2 */

/* Prints what failed with the library's message and SQLSTATE; returns 1. */
static int fail(const char *what) {
    fprintf(stderr, "%s: %s (SQLSTATE '%s')\n", what, pool_last_error(), pool_last_sqlstate());
    return 1;
}

/* INSERT INTO table (id, name) VALUES (id, name); returns the status. */
static pool_status_t insert(pool_conn_t conn, int64_t id, const char *name) {
    char sql[256];
    pool_value_t args[2];
    args[0] = pool_int64(id);
    args[1] = pool_text(name);
    snprintf(sql, sizeof sql, "INSERT INTO %s (id, name) VALUES (%s, %s)", table, ph1, ph2);
    return pool_execute(conn, sql, args, 2, NULL);
}

/* Whether a row with this id exists: 1 yes, 0 no, -1 the query failed. */
static int row_exists(pool_conn_t conn, int64_t id) {
    char sql[256];
    pool_value_t arg = pool_int64(id);
    pool_result_t *res = NULL;
    int found;
    snprintf(sql, sizeof sql, "SELECT name FROM %s WHERE id = %s", table, ph1);
    if (pool_query(conn, sql, &arg, 1, &res) != POOL_OK) {
        fail("select");
        return -1;
    }
    found = pool_result_rows(res) > 0;
    pool_result_free(res);
    return found;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "sqlite:transactions.db?max_connections=2&timeout=5";
    pool_conn_t conn;
    pool_status_t st;
    char sql[256];
    int rc = 0;

    if (strncmp(url, "postgres", 8) == 0) {
        ph1 = "$1";
        ph2 = "$2";
    } else {
        ph1 = "?";
        ph2 = "?";
    }
    if (pool_new(url, &pool) != POOL_OK) return fail("pool_new");
    if (pool_connect(pool, &conn) != POOL_OK) {
        rc = fail("pool_connect");
        pool_free(pool);
        return rc;
    }
    /* A table of our own, so that runs in parallel do not collide. */
    snprintf(table, sizeof table, "example_tx_%ld", (long)getpid());
    snprintf(sql, sizeof sql, "CREATE TABLE %s (id BIGINT PRIMARY KEY, name VARCHAR(50))", table);
    if (pool_execute(conn, sql, NULL, 0, NULL) != POOL_OK) {
        rc = fail("create table");
        pool_release(pool, conn);
        pool_free(pool);
        return rc;
    }

    /* 1. Commit: the row is there afterwards. */
    if (pool_begin(conn) != POOL_OK) rc = fail("begin (1)");
    else if (insert(conn, 1, "committed") != POOL_OK) rc = fail("insert (1)");
    else if (pool_commit(conn) != POOL_OK) rc = fail("commit (1)");
    else if (row_exists(conn, 1) != 1) rc = fail("row 1 should exist after commit");
    else printf("1. committed insert: row 1 is there\n");

    /* 2. Rollback: the insert is undone. */
    if (rc == 0) {
        if (pool_begin(conn) != POOL_OK) rc = fail("begin (2)");
        else if (insert(conn, 2, "rolled back") != POOL_OK) rc = fail("insert (2)");
        else if (row_exists(conn, 2) != 1) rc = fail("row 2 should be visible inside its transaction");
        else if (pool_rollback(conn) != POOL_OK) rc = fail("rollback (2)");
        else if (row_exists(conn, 2) != 0) rc = fail("row 2 should be gone after rollback");
        else printf("2. rolled-back insert: row 2 is gone\n");
    }

    /* 3. A transaction left open: pool_release rolls it back before the
     * connection goes back to the pool, so the next checkout (here most
     * likely the very same connection) starts clean and sees no row 3. */
    if (rc == 0) {
        if (pool_begin(conn) != POOL_OK) rc = fail("begin (3)");
        else if (insert(conn, 3, "never committed") != POOL_OK) rc = fail("insert (3)");
    }
    if (pool_release(pool, conn) != POOL_OK) rc = fail("release (3)");
    if (pool_connect(pool, &conn) != POOL_OK) {
        rc = fail("pool_connect (3)");
        pool_free(pool);
        return rc;
    }
    if (rc == 0) {
        if (row_exists(conn, 3) != 0) rc = fail("row 3 should have been rolled back by pool_release");
        else printf("3. transaction left open at release: row 3 was rolled back\n");
    }

    /* 4. An error inside a transaction. A duplicate primary key is
     * POOL_ERR_DATABASE; pool_last_error() says why and pool_last_sqlstate()
     * gives the code (PostgreSQL 23505, MySQL 23000, SQLite its extended
     * result code, 1555 for SQLITE_CONSTRAINT_PRIMARYKEY). Read both right
     * away: the next pool_ call replaces them. PostgreSQL refuses every
     * further statement of a failed transaction, so roll back. */
    if (rc == 0) {
        if (pool_begin(conn) != POOL_OK) rc = fail("begin (4)");
        else if (insert(conn, 4, "fine") != POOL_OK) rc = fail("insert (4)");
        else if ((st = insert(conn, 1, "duplicate")) != POOL_ERR_DATABASE) {
            fprintf(stderr, "duplicate key: expected POOL_ERR_DATABASE, got %s\n", pool_status_str((int)st));
            rc = 1;
        } else {
            const char *sqlstate = pool_last_sqlstate();
            printf("4. expected error: %s\n   message: %s\n   SQLSTATE: %s\n", pool_status_str((int)st),
                   pool_last_error(), sqlstate);
            if (sqlstate[0] == '\0') rc = fail("a database error should carry a SQLSTATE");
        }
        if (pool_rollback(conn) != POOL_OK) rc = fail("rollback (4)");
        /* The whole transaction is undone: row 4 too; row 1 is unchanged. */
        if (rc == 0 && (row_exists(conn, 4) != 0 || row_exists(conn, 1) != 1))
            rc = fail("after rollback (4): row 4 should be gone and row 1 still there");
        if (rc == 0) printf("   rolled back: row 4 is gone, row 1 still there\n");
    }

    snprintf(sql, sizeof sql, "DROP TABLE %s", table);
    if (pool_execute(conn, sql, NULL, 0, NULL) != POOL_OK) rc = fail("drop table");
    if (pool_release(pool, conn) != POOL_OK) rc = fail("release");
    pool_free(pool);
    printf("%s\n", rc ? "FAILED" : "ok");
    return rc;
}
