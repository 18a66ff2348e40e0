#!/usr/bin/env bash
# THE test command: servers, Rust tests, C build + ctest (SQLite, PostgreSQL,
# MariaDB, valgrind, examples, header test), header drift, exported symbols.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo; echo "=== $* ($(($(date +%s) - start)) s)"; }

step "servers"
servers=$(./.ci/ensure-servers.sh | tail -1)
PEEPOOL_TEST_SERVERS=${servers#PEEPOOL_TEST_SERVERS=}
export PEEPOOL_TEST_SERVERS

step "cargo test"
cargo test

step "fuzz the URL and option parser (60 s)"
./tests/fuzz/run.sh 60

step "cmake configure"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Debug -DPEEPOOL_TEST_SERVERS="$PEEPOOL_TEST_SERVERS"

step "cmake build"
cmake --build build -j2

step "ctest"
ctest --test-dir build --output-on-failure

step "go test (bindings/go)"
./bindings/go/test.sh

step "header drift"
if ! git diff --exit-code -- include/; then
  echo "include/peepool.h changed: commit the regenerated header" >&2
  exit 1
fi
if [ -n "$(git ls-files --others --exclude-standard -- include/)" ]; then
  echo "include/peepool.h changed: commit the regenerated header (untracked)" >&2
  exit 1
fi

step "exported symbols"
lib=target/release/libpeepool.so
others=$(nm -D --defined-only "$lib" | awk '{print $NF}' | grep -v '^pool_' || true)
if [ -n "$others" ]; then
  echo "$lib exports symbols other than pool_*:" >&2
  echo "$others" | head -20 >&2
  exit 1
fi
echo "$(nm -D --defined-only "$lib" | wc -l) exported symbols, all pool_*"
stray=$(grep -E '^#define ' include/peepool.h | awk '{print $2}' | grep -vE '^(PEEPOOL_|POOL_)' || true)
if [ -n "$stray" ]; then
  echo "include/peepool.h defines names outside POOL_/PEEPOOL_: $stray" >&2
  exit 1
fi

echo
echo "=== ALL PASSED in $(($(date +%s) - start)) s (servers: $PEEPOOL_TEST_SERVERS)"
