/* A program built against an installed peepool (by the CMake and the
 * pkg-config consumer alike): opens an in-memory SQLite pool, runs a
 * query with a parameter, prints the row, exits 0. */
#include <peepool.h>

#include <stdio.h>
#include <string.h>

int main(void) {
    pool_t *pool = NULL;
    pool_conn_t conn;
    pool_result_t *res = NULL;
    pool_value_t arg = pool_text("installed");
    const char *text = NULL;
    int64_t answer = 0;
    int ok;

    if (pool_new("sqlite::memory:?max_connections=2", &pool) != POOL_OK) {
        fprintf(stderr, "pool_new: %s\n", pool_last_error());
        return 1;
    }
    if (pool_connect(pool, &conn) != POOL_OK) {
        fprintf(stderr, "pool_connect: %s\n", pool_last_error());
        pool_free(pool);
        return 1;
    }
    if (pool_query(conn, "SELECT 6 * 7, ?", &arg, 1, &res) != POOL_OK) {
        fprintf(stderr, "pool_query: %s\n", pool_last_error());
        pool_release(pool, conn);
        pool_free(pool);
        return 1;
    }
    ok = pool_result_rows(res) == 1 && pool_result_int64(res, 0, 0, &answer) == POOL_OK &&
         pool_result_text(res, 0, 1, &text, NULL) == POOL_OK && answer == 42 &&
         strcmp(text, "installed") == 0;
    printf("peepool %s: %lld %s\n", pool_version(), (long long)answer, text ? text : "(null)");
    pool_result_free(res);
    pool_release(pool, conn);
    pool_free(pool);
    return ok && strcmp(pool_version(), PEEPOOL_VERSION_STRING) == 0 ? 0 : 1;
}
