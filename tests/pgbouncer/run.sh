#!/bin/sh
# tests/pgbouncer/run.sh <test_pool binary>
#
# Issue 6: the C harness through PgBouncer in transaction mode with
# statement_cache=0. Starts a throw-away pgbouncer (bouncer.sh: 127.0.0.1,
# port PEEPOOL_PGBOUNCER_PORT or 6432, default_pool_size=2, in front of the
# test PostgreSQL), runs every group of test_pool against
#   postgres://postgres@127.0.0.1:<port>/test?statement_cache=0
# and stops pgbouncer, whatever the outcome.
#
# All groups run. With PEEPOOL_TEST_TXN_POOLER=1 the harness leaves out only
# what cannot work through a transaction-mode pooler by nature:
#   - terminating "the victim's" server process (semantics:
#     killed_while_checked_out_is_evicted, and the kill in
#     liveness_check_at_checkout): a client connection to PgBouncer has no
#     server process of its own. pg_backend_pid() names whichever server
#     connection ran that statement, shared with other clients (here it is
#     often the killer's own), and PgBouncer hides a dead server connection
#     from the clients that were not using it. Eviction of a connection the
#     bouncer drops is tested in tests/postgres_pgbouncer.rs instead (admin
#     KILL).
# One check changes with statement_cache=0 itself, bouncer or not: a query
# with no row has 0 columns there (README, PostgreSQL; the harness's
# zero_rows_lack_columns(), which plain PostgreSQL with statement_cache=0
# passes too). A result column of a type that is not built in would need the
# driver's named-statement type lookup; the harness uses none.
# Session state outside a transaction (SET, temporary tables, advisory
# locks, LISTEN, named prepared statements) does not survive between
# transactions through such a pooler; the harness does not rely on it.
#
# Without pgbouncer: exit 77 (ctest reports the test as skipped), or exit 1
# under CI=true or PEEPOOL_REQUIRE_SERVERS=1.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 <test_pool binary>" >&2
    exit 2
fi
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
port=${PEEPOOL_PGBOUNCER_PORT:-6432}
required=0
if [ "${CI:-}" = true ] || [ "${PEEPOOL_REQUIRE_SERVERS:-0}" = 1 ]; then required=1; fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/peepool-pgbouncer.XXXXXX")
chmod 755 "$dir"
cleanup() {
    sh "$here/bouncer.sh" stop "$dir" || true
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rc=0
sh "$here/bouncer.sh" start "$dir" "$port" || rc=$?
if [ $rc -ne 0 ]; then
    if [ $rc -eq 3 ] && [ $required = 0 ]; then
        echo "SKIP: pgbouncer is not installed (.ci/ensure-servers.sh installs it)" >&2
        exit 77
    fi
    echo "FAIL: could not start pgbouncer on 127.0.0.1:$port" >&2
    exit 1
fi

PEEPOOL_TEST_TXN_POOLER=1 \
PEEPOOL_TEST_ONLY=version,semantics,threads,busy,values,misuse,logging,fork \
    "$bin" "postgres://postgres@127.0.0.1:$port/test?statement_cache=0"
