#!/bin/sh
# plot.sh RESULTS_DIR OUT.png: throughput against threads (contended
# workload) for peepool, libzdb and the mutex + condition variable bound,
# from RESULTS_DIR/contended.tsv (versions from RESULTS_DIR/env.txt).
set -eu
DIR=$1
PNG=$2
for pool in peepool libzdb rawpool; do
  awk -F'\t' -v p="$pool" '$1 ~ "^contended_" p "_t" {
      t = $1; sub(".*_t", "", t); printf "%s %.0f\n", t, 1e9 / $2 }' "$DIR/contended.tsv" >"$DIR/plot_$pool.dat"
done
ZDB=$(sed -n 's/^libzdb=//p' "$DIR/env.txt" 2>/dev/null || true)
SQLITE=$(sed -n 's/^sqlite3_system=//p' "$DIR/env.txt" 2>/dev/null || true)
PEEPOOL=$(sed -n 's/^# peepool \([^,]*\),.*/\1/p' "$DIR/contended.tsv" | head -1)
# A series with no data (a peer not built) is left out rather than failing.
PLOT=""
add() {
  [ -s "$DIR/plot_$1.dat" ] || return 0
  [ -n "$PLOT" ] && PLOT="$PLOT, "
  PLOT="$PLOT\"$DIR/plot_$1.dat\" using 1:2 with linespoints $2 title \"$3\""
}
add peepool "lw 3 pt 7 ps 1.5 lc rgb '#1f77b4'" "peepool $PEEPOOL: FIFO handoff, waiters sleep"
add libzdb "lw 2 pt 5 ps 1.3 lc rgb '#d62728'" "libzdb ${ZDB:-?}: NULL when all 4 are out, threads retry with sched_yield"
add rawpool "lw 2 dt 2 pt 9 ps 1.3 lc rgb '#555555'" "bound: pthread mutex + condvar over 4 raw sqlite3 ${SQLITE:-?} (held stmt, no fairness)"
gnuplot <<GP
set terminal pngcairo size 900,620 noenhanced font ",11"
set output "$PNG"
set title "Contended: threads sharing 4 SQLite connections, each op = checkout + SELECT 1 + release\n(median of runs; higher is better; log scale)"
set xlabel "threads"
set ylabel "operations per second, all threads together"
set logscale x 2
set logscale y 10
set xrange [1.6:40]
set xtics (2, 8, 32)
set format y "%.0s%c"
set key below left Left reverse box height 1.5
set grid xtics ytics mytics
plot $PLOT
GP
