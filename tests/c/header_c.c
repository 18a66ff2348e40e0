/* The header compiles as C99 with -Wall -Wextra -Wpedantic -Werror, twice. */
#include <peepool.h>
#include <peepool.h>

int main(void) {
    pool_conn_t c = {0};
    pool_value_t v = pool_null();
    (void)v;
    return (int)c.id + (POOL_OK == 0 ? 0 : 1);
}
