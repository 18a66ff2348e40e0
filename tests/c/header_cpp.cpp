// The header compiles as C++17 with -Wall -Wextra -Werror, twice.
#include <peepool.h>
#include <peepool.h>

int main() {
    pool_conn_t c{};
    pool_status_t s = POOL_OK;
    return static_cast<int>(c.id) + static_cast<int>(s);
}
