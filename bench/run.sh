#!/bin/sh
# Builds and runs every benchmark, then writes bench/RESULTS.md.
#
#   bench/run.sh            from the repository root (or anywhere)
#
# Environment (all optional): BENCH_RUNS (>= 5, default 5), BENCH_SCALE
# (multiplies operation counts, default 1), BENCH_SECONDS (per contended
# run, default 0.5), BENCH_PG_URL, BENCH_MYSQL_URL, BENCH_ZDB_PG_URL,
# BENCH_ZDB_MYSQL_URL (see bench/query.c), BENCH_NO_PIN=1 (skip the pinned
# server runs).
#
# The server workloads run twice: free, and with the benchmark pinned to
# CPU 0 (`taskset -c 0`) while the running PostgreSQL and MariaDB server
# processes are pinned to CPU 0 too (`taskset -a -p -c 0 <pid>`; their
# affinity is restored afterwards, also on interrupt). Pinning the servers
# needs the right to change their affinity (root, or the same user).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build-bench
OUT=$BUILD/results
CMD="bench/run.sh"
[ -n "${BENCH_RUNS:-}" ] && CMD="BENCH_RUNS=$BENCH_RUNS $CMD"
[ -n "${BENCH_SCALE:-}" ] && CMD="BENCH_SCALE=$BENCH_SCALE $CMD"
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
cmake --build "$BUILD" --target cycle query contended
mkdir -p "$OUT"
B=$BUILD/bench

# --- run -------------------------------------------------------------------
echo "== cycle";      "$B/cycle"     | tee "$OUT/cycle.tsv"
echo "== query";      "$B/query"     | tee "$OUT/query.tsv"
echo "== contended";  "$B/contended" | tee "$OUT/contended.tsv"

: >"$OUT/query_pinned.tsv"
: >"$OUT/pinning.txt"
if [ -z "${BENCH_NO_PIN:-}" ]; then
  SERVER_PIDS="$(pgrep -x postgres || true) $(pgrep -x mariadbd || true) $(pgrep -x mysqld || true)"
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
  echo "postgres_crate=$(grep -A1 '^name = "postgres"$' "$ROOT/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')"
  echo "mysql_crate=$(grep -A1 '^name = "mysql"$' "$ROOT/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')"
  echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "runs=${BENCH_RUNS:-5}"
  echo "scale=${BENCH_SCALE:-1}"
  echo "seconds=$BENCH_SECONDS"
  echo "command=$CMD"
} >"$OUT/env.txt"

sh "$ROOT/bench/plot.sh" "$OUT" "$ROOT/bench/throughput.png"
python3 "$ROOT/bench/report.py" "$OUT" >"$ROOT/bench/RESULTS.md"
echo "wrote $ROOT/bench/RESULTS.md"
