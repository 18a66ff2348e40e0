/* column_text: reading any result as text. pool_result_text gives every
 * non-NULL cell as the bytes the database's own client prints for it
 * (libpq for PostgreSQL, libmariadb for MySQL/MariaDB, sqlite3_column_text
 * for SQLite), whatever its type; pool_result_type says what kind of value
 * the cell holds and pool_result_is_null whether it is SQL NULL.
 *
 * The query is chosen by the URL's scheme, to show each backend's types:
 *   SQLite      integer, real, text, blob, NULL
 *   PostgreSQL  int, float8, numeric, bool, text, bytea, json, uuid, date,
 *               timestamptz, interval, int[], NULL
 *   MariaDB     int, double, decimal, date, datetime, time, varchar, blob,
 *               json, enum, NULL (from a table: an enum needs a column)
 * and prints one line per column: `column (kind): text`.
 *
 *   column_text [url]   default "sqlite:column_text.db"
 *
 * Exits 0 when every cell was read as expected, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L
#include <peepool.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *SQLITE_QUERY =
    "SELECT 42 AS an_integer, 2.5 AS a_real, 'héllo' AS a_text, x'DEADBEEF' AS a_blob,"
    " NULL AS a_null";

/* Literals cast to each type; no table needed. */
static const char *PG_QUERY =
    "SELECT 42::int AS an_int, 2.5::float8 AS a_float8, 12345.678::numeric(10,3) AS a_numeric,"
    " true AS a_bool, 'héllo'::text AS a_text, '\\xdeadbeef'::bytea AS a_bytea,"
    " '{\"k\": [1, 2]}'::json AS a_json, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS a_uuid,"
    " '2024-02-29'::date AS a_date, '2024-02-29 12:34:56.5+00'::timestamptz AS a_timestamptz,"
    " '1 day 02:03:04'::interval AS an_interval, ARRAY[1, 2, 3] AS an_int_array,"
    " NULL::int AS a_null";

/* Column definitions of the MariaDB table (%s: its name), its one row, the
 * query. */
static const char *MYSQL_CREATE =
    "CREATE TABLE %s (an_int INT, a_double DOUBLE, a_decimal DECIMAL(10,3), a_date DATE,"
    " a_datetime DATETIME(3), a_time TIME, a_varchar VARCHAR(20), a_blob BLOB, a_json JSON,"
    " an_enum ENUM('small', 'medium', 'large'), a_null INT)";
static const char *MYSQL_INSERT =
    "INSERT INTO %s VALUES (42, 2.5, 12345.678, '2024-02-29', '2024-02-29 12:34:56.5',"
    " '-01:02:03', 'héllo', x'DEADBEEF', '{\"k\": [1, 2]}', 'medium', NULL)";
static const char *MYSQL_QUERY = "SELECT * FROM %s";

/* The name of a POOL_TYPE_* kind. */
static const char *kind_name(uint32_t kind) {
    static const char *names[] = {"null", "int64", "double", "text", "blob", "numeric", "other"};
    return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

/* Prints `len` bytes, escaping control characters as \xNN, and for a
 * blob (kind POOL_TYPE_BLOB, arbitrary bytes) everything that is not
 * printable ASCII too. */
static void print_bytes(const char *s, size_t len, uint32_t kind) {
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != 0x7f && (kind != POOL_TYPE_BLOB || ch < 0x80)) putchar(ch);
        else printf("\\x%02x", ch);
    }
}

static int fail(const char *what) {
    fprintf(stderr, "%s: %s (SQLSTATE '%s')\n", what, pool_last_error(), pool_last_sqlstate());
    return 1;
}

/* Prints every cell of `res` as `column (kind): text`; returns 0 when all
 * reads behaved as documented, 1 otherwise. */
static int print_result(const pool_result_t *res) {
    size_t row, col, nulls = 0;
    int rc = 0;
    for (row = 0; row < pool_result_rows(res); row++) {
        for (col = 0; col < pool_result_columns(res); col++) {
            const char *name = NULL, *text = NULL;
            size_t len = 0;
            uint32_t kind = 0;
            bool is_null = false;
            if (pool_result_column_name(res, col, &name) != POOL_OK ||
                pool_result_type(res, row, col, &kind) != POOL_OK ||
                pool_result_is_null(res, row, col, &is_null) != POOL_OK)
                return fail("column metadata");
            printf("%s (%s): ", name, kind_name(kind));
            if (is_null) {
                /* A NULL has no text: pool_result_text refuses it with
                 * POOL_ERR_CONVERSION, so test pool_result_is_null first. */
                nulls++;
                printf("NULL\n");
                if (kind != POOL_TYPE_NULL ||
                    pool_result_text(res, row, col, &text, &len) != POOL_ERR_CONVERSION) {
                    fprintf(stderr, "%s: a NULL cell should be POOL_TYPE_NULL and have no text\n", name);
                    rc = 1;
                }
                continue;
            }
            /* `text` is owned by `res` and NUL-terminated, but may hold NUL
             * bytes itself (a blob), so print `len` bytes. A blob gives its
             * raw bytes, except PostgreSQL's bytea, which gives libpq's
             * \x... hex text. */
            if (pool_result_text(res, row, col, &text, &len) != POOL_OK) return fail(name);
            print_bytes(text, len, kind);
            putchar('\n');
            if (kind == POOL_TYPE_NULL) {
                fprintf(stderr, "%s: a non-NULL cell should not be POOL_TYPE_NULL\n", name);
                rc = 1;
            }
        }
    }
    /* Every query has one row, its first column the integer 42 and its last
     * column NULL. */
    {
        const char *text = NULL;
        uint32_t kind = 0;
        if (pool_result_rows(res) != 1 || nulls != 1 ||
            pool_result_type(res, 0, 0, &kind) != POOL_OK || kind != POOL_TYPE_INT64 ||
            pool_result_text(res, 0, 0, &text, NULL) != POOL_OK || strcmp(text, "42") != 0) {
            fprintf(stderr, "unexpected result shape\n");
            rc = 1;
        }
    }
    return rc;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "sqlite:column_text.db";
    int mysql = strncmp(url, "mysql", 5) == 0 || strncmp(url, "mariadb", 7) == 0;
    pool_t *pool;
    pool_conn_t conn;
    pool_result_t *res = NULL;
    char table[64], sql[1024];
    int rc = 0;

    if (pool_new(url, &pool) != POOL_OK) return fail("pool_new");
    if (pool_connect(pool, &conn) != POOL_OK) {
        rc = fail("pool_connect");
        pool_free(pool);
        return rc;
    }
    snprintf(table, sizeof table, "example_types_%ld", (long)getpid());

    if (strncmp(url, "postgres", 8) == 0) {
        snprintf(sql, sizeof sql, "%s", PG_QUERY);
    } else if (mysql) {
        snprintf(sql, sizeof sql, MYSQL_CREATE, table);
        if (pool_execute(conn, sql, NULL, 0, NULL) != POOL_OK) rc = fail("create table");
        snprintf(sql, sizeof sql, MYSQL_INSERT, table);
        if (rc == 0 && pool_execute(conn, sql, NULL, 0, NULL) != POOL_OK) rc = fail("insert");
        snprintf(sql, sizeof sql, MYSQL_QUERY, table);
    } else {
        snprintf(sql, sizeof sql, "%s", SQLITE_QUERY);
    }

    if (rc == 0) {
        if (pool_query(conn, sql, NULL, 0, &res) != POOL_OK) rc = fail("query");
        else rc = print_result(res);
        pool_result_free(res); /* every pointer read from res ends here */
    }

    if (mysql) {
        snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", table);
        if (pool_execute(conn, sql, NULL, 0, NULL) != POOL_OK) rc = fail("drop table");
    }
    pool_release(pool, conn);
    pool_free(pool);
    printf("%s\n", rc ? "FAILED" : "ok");
    return rc;
}
