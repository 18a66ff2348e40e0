/* Values: parameters of every kind in, typed getters out, conversions and
 * their errors, column names, row/column ranges, database errors. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdio.h>
#include <string.h>

static void insert_and_read_back_every_kind(pool_t *pool) {
    pool_conn_t c;
    char t[64], sql[512];
    pool_value_t v[6];
    pool_result_t *res = NULL;
    const unsigned char blob[5] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    const char *text = "h\xc3\xa9llo, w\xc3\xb6rld"; /* héllo, wörld */
    uint64_t affected = 99;
    int64_t i64 = 0;
    double f64 = 0;
    const char *s = NULL;
    const void *b = NULL;
    size_t len = 0;
    uint32_t type = 99;
    bool isnull = false;

    if (!CHECK_OK(pool_connect(pool, &c))) return;
    table_name(t, sizeof t, "vals");
    snprintf(sql, sizeof sql,
             "CREATE TABLE %s (id BIGINT, i BIGINT, d DOUBLE PRECISION, t VARCHAR(100), b %s, n "
             "BIGINT)",
             t, blob_type());
    CHECK_OK(exec0(c, sql));
    sql_fmt(sql, sizeof sql, "INSERT INTO %s (id, i, d, t, b, n) VALUES (?, ?, ?, ?, ?, ?)", t);
    v[0] = pool_int64(1);
    v[1] = pool_int64(INT64_MAX);
    v[2] = pool_double(3.25);
    v[3] = pool_text(text);
    v[4] = pool_blob(blob, sizeof blob);
    v[5] = pool_null();
    CHECK_OK(pool_execute(c, sql, v, 6, &affected));
    CHECK_EQ(affected, 1);
    v[0] = pool_int64(2);
    v[1] = pool_int64(INT64_MIN);
    v[2] = pool_double(-0.5);
    v[3] = pool_text_n("abcdef", 3);
    v[4] = pool_blob(NULL, 0);
    v[5] = pool_text(NULL); /* NULL text is a NULL value */
    CHECK_EQ(v[5].type, POOL_TYPE_NULL);
    CHECK_OK(pool_execute(c, sql, v, 6, NULL));

    snprintf(sql, sizeof sql, "SELECT id, i, d, t, b, n FROM %s ORDER BY id", t);
    if (!CHECK_OK(pool_query(c, sql, NULL, 0, &res))) goto out;
    CHECK_EQ(pool_result_rows(res), 2);
    CHECK_EQ(pool_result_columns(res), 6);
    CHECK_OK(pool_result_column_name(res, 0, &s));
    CHECK_STR(s, "id");
    CHECK_OK(pool_result_column_name(res, 3, &s));
    CHECK_STR(s, "t");
    CHECK_OK(pool_result_column_name(res, 5, &s));
    CHECK_STR(s, "n");

    /* row 0 */
    CHECK_OK(pool_result_type(res, 0, 1, &type));
    CHECK_EQ(type, POOL_TYPE_INT64);
    CHECK_OK(pool_result_int64(res, 0, 1, &i64));
    CHECK(i64 == INT64_MAX);
    CHECK_OK(pool_result_text(res, 0, 1, &s, &len));
    CHECK_STR(s, "9223372036854775807");
    CHECK_EQ(len, 19);
    CHECK_OK(pool_result_type(res, 0, 2, &type));
    CHECK_EQ(type, POOL_TYPE_DOUBLE);
    CHECK_OK(pool_result_double(res, 0, 2, &f64));
    CHECK(f64 == 3.25);
    CHECK_OK(pool_result_text(res, 0, 2, &s, NULL)); /* len may be NULL */
    CHECK_STR(s, "3.25");
    CHECK_OK(pool_result_type(res, 0, 3, &type));
    CHECK_EQ(type, POOL_TYPE_TEXT);
    CHECK_OK(pool_result_text(res, 0, 3, &s, &len));
    CHECK_STR(s, text);
    CHECK_EQ(len, strlen(text));
    CHECK_OK(pool_result_type(res, 0, 4, &type));
    CHECK_EQ(type, POOL_TYPE_BLOB);
    CHECK_OK(pool_result_blob(res, 0, 4, &b, &len));
    CHECK_EQ(len, sizeof blob);
    CHECK(b != NULL && memcmp(b, blob, sizeof blob) == 0);
    CHECK_OK(pool_result_is_null(res, 0, 4, &isnull));
    CHECK(!isnull);
    CHECK_OK(pool_result_type(res, 0, 5, &type));
    CHECK_EQ(type, POOL_TYPE_NULL);
    CHECK_OK(pool_result_is_null(res, 0, 5, &isnull));
    CHECK(isnull);
    i64 = 42;
    CHECK_STATUS(pool_result_int64(res, 0, 5, &i64), POOL_ERR_CONVERSION); /* NULL as int64 */
    CHECK_EQ(i64, 0);
    CHECK(strlen(pool_last_error()) > 0);
    CHECK_STATUS(pool_result_double(res, 0, 5, &f64), POOL_ERR_CONVERSION);
    CHECK_STATUS(pool_result_int64(res, 0, 3, &i64), POOL_ERR_CONVERSION); /* text as int64 */
    /* row 1 */
    CHECK_OK(pool_result_int64(res, 1, 1, &i64));
    CHECK(i64 == INT64_MIN);
    CHECK_OK(pool_result_double(res, 1, 2, &f64));
    CHECK(f64 == -0.5);
    CHECK_OK(pool_result_text(res, 1, 3, &s, &len));
    CHECK_STR(s, "abc");
    CHECK_EQ(len, 3);
    CHECK_OK(pool_result_blob(res, 1, 4, &b, &len));
    CHECK_EQ(len, 0);
    CHECK_OK(pool_result_is_null(res, 1, 4, &isnull));
    CHECK(!isnull); /* an empty blob is not NULL */
    CHECK_OK(pool_result_is_null(res, 1, 5, &isnull));
    CHECK(isnull);
    /* int64 as double is fine */
    CHECK_OK(pool_result_double(res, 0, 0, &f64));
    CHECK(f64 == 1.0);

    /* out of range */
    s = "x";
    CHECK_STATUS(pool_result_column_name(res, 6, &s), POOL_ERR_INVALID_ARGUMENT);
    CHECK(s == NULL);
    CHECK_STATUS(pool_result_int64(res, 2, 0, &i64), POOL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(pool_result_int64(res, 0, 6, &i64), POOL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(pool_result_type(res, 2, 0, &type), POOL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(pool_result_is_null(res, 0, 99, &isnull), POOL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(pool_result_double(res, 99, 0, &f64), POOL_ERR_INVALID_ARGUMENT);
    s = "x";
    len = 7;
    CHECK_STATUS(pool_result_text(res, 0, 6, &s, &len), POOL_ERR_INVALID_ARGUMENT);
    CHECK(s == NULL);
    CHECK_EQ(len, 0);
    CHECK_STATUS(pool_result_blob(res, 2, 0, &b, &len), POOL_ERR_INVALID_ARGUMENT);
    pool_result_free(res);
    res = NULL;

    /* parameters in a WHERE clause, and a query with no rows */
    sql_fmt(sql, sizeof sql, "SELECT t FROM %s WHERE i = ? AND t = ?", t);
    v[0] = pool_int64(INT64_MIN);
    v[1] = pool_text("abc");
    CHECK_OK(pool_query(c, sql, v, 2, &res));
    CHECK_EQ(pool_result_rows(res), 1);
    pool_result_free(res);
    res = NULL;
    v[1] = pool_text("nothing");
    CHECK_OK(pool_query(c, sql, v, 2, &res));
    CHECK_EQ(pool_result_rows(res), 0);
    if (zero_rows_lack_columns()) {
        /* PostgreSQL with statement_cache=0: the documented limit, 0 columns
         * and column 0 out of range (README, PostgreSQL) */
        const char *name = "x";
        CHECK_EQ(pool_result_columns(res), 0);
        CHECK_STATUS(pool_result_column_name(res, 0, &name), POOL_ERR_INVALID_ARGUMENT);
        CHECK(name == NULL);
    } else {
        CHECK_EQ(pool_result_columns(res), 1);
    }
    pool_result_free(res);
    res = NULL;

    /* UPDATE / DELETE counts */
    sql_fmt(sql, sizeof sql, "UPDATE %s SET n = ? WHERE id >= ?", t);
    v[0] = pool_int64(5);
    v[1] = pool_int64(1);
    CHECK_OK(pool_execute(c, sql, v, 2, &affected));
    CHECK_EQ(affected, 2);
    snprintf(sql, sizeof sql, "DELETE FROM %s", t);
    CHECK_OK(pool_execute(c, sql, NULL, 0, &affected));
    CHECK_EQ(affected, 2);

out:
    snprintf(sql, sizeof sql, "DROP TABLE %s", t);
    CHECK_OK(exec0(c, sql));
    CHECK_OK(pool_release(pool, c));
}

static void conversions_and_names(pool_t *pool) {
    pool_conn_t c;
    pool_result_t *res = NULL;
    int64_t i64 = 0;
    double f64 = 0;
    const char *s = NULL;
    size_t len = 0;
    if (!CHECK_OK(pool_connect(pool, &c))) return;
    if (!CHECK_OK(pool_query(c, "SELECT 'abc' AS word, '42' AS num_text, 7 AS seven, NULL AS nada",
                             NULL, 0, &res))) {
        CHECK_OK(pool_release(pool, c));
        return;
    }
    CHECK_EQ(pool_result_rows(res), 1);
    CHECK_EQ(pool_result_columns(res), 4);
    CHECK_OK(pool_result_column_name(res, 0, &s));
    CHECK_STR(s, "word");
    CHECK_OK(pool_result_column_name(res, 1, &s));
    CHECK_STR(s, "num_text");
    CHECK_OK(pool_result_column_name(res, 2, &s));
    CHECK_STR(s, "seven");
    CHECK_OK(pool_result_column_name(res, 3, &s));
    CHECK_STR(s, "nada");
    i64 = 5;
    CHECK_STATUS(pool_result_int64(res, 0, 0, &i64), POOL_ERR_CONVERSION);
    CHECK_EQ(i64, 0);
    CHECK_STATUS(pool_result_double(res, 0, 0, &f64), POOL_ERR_CONVERSION);
    CHECK_OK(pool_result_int64(res, 0, 1, &i64)); /* text holding an exact integer */
    CHECK_EQ(i64, 42);
    CHECK_OK(pool_result_int64(res, 0, 2, &i64));
    CHECK_EQ(i64, 7);
    CHECK_OK(pool_result_text(res, 0, 2, &s, &len)); /* any value reads as text */
    CHECK_STR(s, "7");
    CHECK_STATUS(pool_result_int64(res, 0, 3, &i64), POOL_ERR_CONVERSION);
    CHECK_STATUS(pool_result_text(res, 0, 3, &s, &len), POOL_ERR_CONVERSION);
    CHECK(s == NULL);
    pool_result_free(res);
    CHECK_OK(pool_release(pool, c));
}

static void database_error_has_sqlstate(pool_t *pool) {
    pool_conn_t c;
    pool_result_t *res = (pool_result_t *)&c;
    if (!CHECK_OK(pool_connect(pool, &c))) return;
    CHECK_STATUS(pool_query(c, "SELECT * FROM no_such_table_pp_xyz", NULL, 0, &res),
                 POOL_ERR_DATABASE);
    CHECK(res == NULL);
    CHECK(strlen(pool_last_error()) > 0);
    CHECK(strlen(pool_last_sqlstate()) > 0);
    if (g_kind == BACKEND_POSTGRES) CHECK_STR(pool_last_sqlstate(), "42P01");
    if (g_kind == BACKEND_MYSQL) CHECK_STR(pool_last_sqlstate(), "42S02");
    CHECK_STATUS(exec0(c, "THIS IS NOT SQL"), POOL_ERR_DATABASE);
    CHECK(strlen(pool_last_sqlstate()) > 0);
    /* the connection still works, and a success clears the last error */
    CHECK_OK(exec0(c, "SELECT 1"));
    CHECK_STR(pool_last_error(), "");
    CHECK_STR(pool_last_sqlstate(), "");
    CHECK_OK(pool_release(pool, c));
    CHECK_EQ(stats_of(pool).closed_dead, 0);
}

void test_values(void) {
    pool_t *pool = open_pool("");
    if (!pool) return;
    insert_and_read_back_every_kind(pool);
    conversions_and_names(pool);
    database_error_has_sqlstate(pool);
    pool_free(pool);
}
