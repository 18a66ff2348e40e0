#!/bin/sh
# Builds and runs every benchmark, then writes bench/RESULTS.md.
#
#   bench/run.sh            from the repository root (or anywhere)
#
# Environment (all optional): BENCH_RUNS (>= 5, default 5), BENCH_SCALE
# (multiplies operation counts, default 1), BENCH_SECONDS (per contended
# run, default 0.5), BENCH_PG_URL, BENCH_MYSQL_URL, BENCH_ZDB_PG_URL,
# BENCH_ZDB_MYSQL_URL (see bench/query.c), BENCH_MEM_CONNS (idle
# connections per memory measurement, default 20), BENCH_NO_PIN=1 (skip the
# pinned server runs).
#
# Programs: cycle, query, contended, reconnect, memory (C, built by CMake
# with -DPEEPOOL_BENCH=ON) and pgfloor (Rust, its own cargo package in
# bench/pgfloor, built here with cargo).
#
# The server workloads (query, reconnect, pgfloor) run twice: free, and
# with the benchmark pinned to
# CPU 0 (`taskset -c 0`) while the PostgreSQL and MariaDB servers listening
# on the URLs' ports are pinned to CPU 0 too (`taskset -a -p -c 0 <pid>` on
# the listening process and its children; their affinity is restored
# afterwards, also on interrupt). Pinning the servers
# needs the right to change their affinity (root, or the same user).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build-bench
OUT=$BUILD/results
CMD="bench/run.sh"
[ -n "${BENCH_RUNS:-}" ] && CMD="BENCH_RUNS=$BENCH_RUNS $CMD"
[ -n "${BENCH_SCALE:-}" ] && CMD="BENCH_SCALE=$BENCH_SCALE $CMD"
[ -n "${BENCH_SECONDS:-}" ] && CMD="BENCH_SECONDS=$BENCH_SECONDS $CMD"
[ -n "${BENCH_MEM_CONNS:-}" ] && CMD="BENCH_MEM_CONNS=$BENCH_MEM_CONNS $CMD"
[ -n "${BENCH_NO_PIN:-}" ] && CMD="BENCH_NO_PIN=$BENCH_NO_PIN $CMD"
export BENCH_SECONDS="${BENCH_SECONDS:-0.5}"

# --- the Debian packages of the peers --------------------------------------
PKGS="cmake pkg-config libzdb-dev libsqlite3-dev libpq-dev libmariadb-dev python3 gnuplot-nox"
MISSING=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || MISSING="$MISSING $p"
done
if [ -n "$MISSING" ]; then
  echo "installing:$MISSING"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get install -y $MISSING
fi

# --- build -----------------------------------------------------------------
cmake -S "$ROOT" -B "$BUILD" -DPEEPOOL_BENCH=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" --target cycle query contended reconnect memory
# pgfloor: offline first (the lock pins versions the main build already
# fetched), online only if something is missing.
PGFLOOR_TARGET=$BUILD/pgfloor-target
(cd "$ROOT/bench/pgfloor" &&
  { cargo build --release --offline --target-dir "$PGFLOOR_TARGET" 2>/dev/null ||
    cargo build --release --target-dir "$PGFLOOR_TARGET"; })
PGFLOOR=$PGFLOOR_TARGET/release/pgfloor
mkdir -p "$OUT"
B=$BUILD/bench
START=$(date +%s)

# --- run -------------------------------------------------------------------
echo "== cycle";      "$B/cycle"     | tee "$OUT/cycle.tsv"
echo "== query";      "$B/query"     | tee "$OUT/query.tsv"
echo "== contended";  "$B/contended" | tee "$OUT/contended.tsv"
echo "== pgfloor";    "$PGFLOOR"     | tee "$OUT/pgfloor.tsv"
echo "== reconnect";  "$B/reconnect" | tee "$OUT/reconnect.tsv"
echo "== memory";     "$B/memory"    | tee "$OUT/memory.tsv"

: >"$OUT/query_pinned.tsv"
: >"$OUT/pgfloor_pinned.tsv"
: >"$OUT/reconnect_pinned.tsv"
: >"$OUT/pinning.txt"
if [ -z "${BENCH_NO_PIN:-}" ]; then
  # Only the servers the benchmarks talk to: the process listening on each
  # URL's port (PostgreSQL's postmaster with its children, whose backends
  # forked later inherit the mask), not every postgres or mariadbd on the
  # machine (other instances may be someone else's).
  port_of() { echo "$1" | sed -n 's#^[a-z]*://[^/]*:\([0-9][0-9]*\)\(/.*\)\{0,1\}$#\1#p'; }
  PG_PORT=$(port_of "${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"); PG_PORT=${PG_PORT:-5432}
  MY_PORT=$(port_of "${BENCH_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"); MY_PORT=${MY_PORT:-3306}
  listener() { ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | sort -u; }
  SERVER_PIDS=""
  for pid in $(listener "$PG_PORT") $(listener "$MY_PORT"); do
    SERVER_PIDS="$SERVER_PIDS $pid $(pgrep -P "$pid" || true)"
  done
  SAVED=""
  restore() {
    for entry in $SAVED; do
      pid=${entry%%=*}; mask=${entry#*=}
      taskset -a -p "$mask" "$pid" >/dev/null 2>&1 || true
    done
    SAVED=""
  }
  trap 'restore' EXIT INT TERM
  for pid in $SERVER_PIDS; do
    mask=$(taskset -p "$pid" 2>/dev/null | sed 's/.*: //') || continue
    [ -n "$mask" ] || continue
    if taskset -a -p -c 0 "$pid" >/dev/null 2>&1; then
      SAVED="$SAVED $pid=$mask"
    fi
  done
  echo "servers pinned to CPU 0 (pid=previous mask):$SAVED" | tee "$OUT/pinning.txt"
  echo "== query, pinned to CPU 0 (servers too)"
  BENCH_ONLY=postgres,mysql taskset -c 0 "$B/query" | tee "$OUT/query_pinned.tsv"
  echo "== pgfloor, pinned to CPU 0 (servers too)"
  taskset -c 0 "$PGFLOOR" | tee "$OUT/pgfloor_pinned.tsv"
  echo "== reconnect, pinned to CPU 0 (servers too)"
  BENCH_ONLY=postgres,mysql taskset -c 0 "$B/reconnect" | tee "$OUT/reconnect_pinned.tsv"
  restore
  echo "server affinity restored" >>"$OUT/pinning.txt"
fi

# --- versions and machine, then the report ------------------------------------
{
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
  echo "kernel=$(uname -r)"
  echo "rustc=$(rustc --version 2>/dev/null || echo unknown)"
  echo "cc=$(cc --version | head -1)"
  echo "libzdb=$(pkg-config --modversion zdb 2>/dev/null || echo missing)"
  echo "sqlite3_system=$(pkg-config --modversion sqlite3 2>/dev/null || echo missing)"
  echo "sqlite_bundled=$(grep -A1 'name = "libsqlite3-sys"' "$ROOT/Cargo.lock" | sed -n 's/version = "\(.*\)"/libsqlite3-sys \1 (bundled)/p')"
  echo "libpq=$(pkg-config --modversion libpq 2>/dev/null || echo missing)"
  echo "libmariadb=$(pkg-config --modversion libmariadb 2>/dev/null || echo missing)"
  echo "pgfloor_postgres_crate=$(grep -A1 '^name = "postgres"$' "$ROOT/bench/pgfloor/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')"
  echo "postgres_crate=$(grep -A1 '^name = "postgres"$' "$ROOT/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')"
  echo "mysql_crate=$(grep -A1 '^name = "mysql"$' "$ROOT/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')"
  echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "runs=${BENCH_RUNS:-5}"
  echo "scale=${BENCH_SCALE:-1}"
  echo "seconds=$BENCH_SECONDS"
  echo "mem_conns=${BENCH_MEM_CONNS:-20}"
  echo "elapsed_s=$(($(date +%s) - START))"
  echo "command=$CMD"
} >"$OUT/env.txt"

sh "$ROOT/bench/plot.sh" "$OUT" "$ROOT/bench/throughput.png"
python3 "$ROOT/bench/report.py" "$OUT" >"$ROOT/bench/RESULTS.md"
echo "wrote $ROOT/bench/RESULTS.md"
