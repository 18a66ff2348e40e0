#!/bin/sh
# tests/pgbouncer/bouncer.sh start <dir> <port> [setting=value ...]  |  stop <dir>
#
# A throw-away PgBouncer for the tests, never the system service: its own
# config, log and pid file in <dir>, transaction pooling, trust auth, in front
# of the test PostgreSQL (PEEPOOL_PG_HOST/PEEPOOL_PG_PORT, default
# 127.0.0.1:5432, database test). default_pool_size=2 so that the server
# connections are really shared between clients and between transactions.
# Extra [pgbouncer] settings may follow the port (tests/postgres_pgbouncer.rs
# uses server_round_robin=1 so that one client's round trips alternate
# between the two server connections). PgBouncer refuses to run as root: as
# root it runs as user postgres.
# `start` returns once the port accepts connections (or fails, showing the log).
set -eu

usage() {
    echo "usage: $0 start <dir> <port> [setting=value ...] | stop <dir>" >&2
    exit 2
}
[ $# -ge 2 ] || usage
cmd=$1
dir=$2

find_pgbouncer() {
    for p in "${PGBOUNCER:-}" "$(command -v pgbouncer 2>/dev/null || true)" /usr/sbin/pgbouncer; do
        if [ -n "$p" ] && [ -x "$p" ]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    if command -v pg_isready >/dev/null 2>&1; then
        # pg_isready says "no response" (2) only when nothing listens.
        rc=0
        pg_isready -q -h 127.0.0.1 -p "$1" -d test -U postgres -t 1 >/dev/null 2>&1 || rc=$?
        [ "$rc" -ne 2 ]
    else
        bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
    fi
}

case "$cmd" in
start)
    [ $# -ge 3 ] || usage
    port=$3
    shift 3
    bin=$(find_pgbouncer) || {
        echo "bouncer.sh: pgbouncer not found (apt-get install pgbouncer; .ci/ensure-servers.sh does)" >&2
        exit 3
    }
    if port_open "$port"; then
        echo "bouncer.sh: 127.0.0.1:$port is already in use (a system pgbouncer service?); set PEEPOOL_PGBOUNCER_PORT" >&2
        exit 1
    fi
    mkdir -p "$dir"
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
test = host=${PEEPOOL_PG_HOST:-127.0.0.1} port=${PEEPOOL_PG_PORT:-5432} dbname=test

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 2
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 500
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
admin_users = postgres
INI
    for setting in "$@"; do
        case "$setting" in
        *=*) printf '%s\n' "$setting" >>"$dir/pgbouncer.ini" ;;
        *) usage ;;
        esac
    done
    printf '"postgres" ""\n"root" ""\n' >"$dir/userlist.txt"
    rc=0
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres "$dir"
        runuser -u postgres -- "$bin" -d -q "$dir/pgbouncer.ini" || rc=$?
    else
        "$bin" -d -q "$dir/pgbouncer.ini" || rc=$?
    fi
    if [ $rc -ne 0 ]; then
        echo "bouncer.sh: pgbouncer exited with status $rc; log:" >&2
        cat "$dir/pgbouncer.log" >&2 2>/dev/null || true
        exit 1
    fi
    i=0
    while ! port_open "$port"; do
        i=$((i + 1))
        if [ $i -gt 100 ] || grep -q FATAL "$dir/pgbouncer.log" 2>/dev/null; then
            echo "bouncer.sh: pgbouncer did not listen on 127.0.0.1:$port within 10 s; log:" >&2
            cat "$dir/pgbouncer.log" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
    done
    ;;
stop)
    [ -f "$dir/pgbouncer.pid" ] || exit 0
    pid=$(cat "$dir/pgbouncer.pid")
    # SIGTERM: immediate shutdown, client and server connections closed.
    kill -TERM "$pid" 2>/dev/null || exit 0
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    ;;
*)
    usage
    ;;
esac
