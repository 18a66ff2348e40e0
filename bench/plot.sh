#!/bin/sh
# plot.sh RESULTS_DIR OUT.png: throughput against threads (contended
# workload) for peepool and libzdb, from RESULTS_DIR/contended.tsv.
set -eu
DIR=$1
PNG=$2
for pool in peepool libzdb; do
  awk -F'\t' -v p="$pool" '$1 ~ "^contended_" p "_t" {
      t = $1; sub(".*_t", "", t); printf "%s %.0f\n", t, 1e9 / $2 }' "$DIR/contended.tsv" >"$DIR/plot_$pool.dat"
done
gnuplot <<GP
set terminal pngcairo size 800,500 noenhanced
set output "$PNG"
set title "Contended: cycle + SELECT 1 over 4 SQLite connections (median of runs)"
set xlabel "threads"
set ylabel "operations per second (all threads)"
set logscale x 2
set xtics (2, 8, 32)
set yrange [0:*]
set key top right
set grid
set format y "%.0f"
plot "$DIR/plot_peepool.dat" using 1:2 with linespoints lw 2 title "peepool (FIFO wait)", \
     "$DIR/plot_libzdb.dat" using 1:2 with linespoints lw 2 title "libzdb 3.1 (NULL + sched_yield retry)"
GP
