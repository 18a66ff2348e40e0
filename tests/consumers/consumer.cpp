// The installed peepool.hpp: the same query through the C++ wrapper.
#include <peepool.hpp>

#include <cstdint>
#include <iostream>

int main() {
    try {
        peepool::pool pool("sqlite::memory:?max_connections=2");
        peepool::connection conn = pool.connect();
        peepool::result res = conn.query("SELECT 6 * 7, ?", "installed");
        std::cout << "peepool.hpp: " << res.get<std::int64_t>(0, 0) << ' ' << res.text(0, 1) << '\n';
        return res.get<std::int64_t>(0, 0) == 42 && res.text(0, 1) == "installed" ? 0 : 1;
    } catch (const peepool::error &e) {
        std::cerr << "peepool error " << e.status() << ": " << e.what() << '\n';
        return 1;
    }
}
