# Plots of the memmapd benchmark; run by memmapd-bench in its output directory, which holds
# latency-clients.dat, latency-load.dat and batch-cost.dat.
set terminal pngcairo size 900,560 font "sans,11" noenhanced
set grid

set output "latency-clients.png"
set title "memmapd: single-address Lookup latency, closed loop"
set xlabel "concurrent clients"
set ylabel "latency (us)"
set y2label "throughput (lookups/s)"
set key bottom right box opaque
set logscale x 2
set xrange [0.8:80]
set logscale y 10
set y2tics
set ytics nomirror
set xtics (1, 2, 4, 8, 16, 32, 64)
plot "latency-clients.dat" using 1:3 with linespoints lw 2 title "p50", \
     "" using 1:4 with linespoints lw 2 title "p99", \
     "" using 1:5 with linespoints lw 2 title "p99.9", \
     "" using 1:2 axes x1y2 with linespoints lw 2 dt 2 title "throughput (right axis)"

set output "batch-cost.png"
set title "Per-address cost of a batch lookup, 700-VMA process"
set xlabel "addresses per batch"
set ylabel "microseconds per address"
unset y2label
unset y2tics
set ytics mirror
set logscale x 10
set logscale y 10
set xrange [0.8:6000]
set xtics auto
set key top right box opaque
plot "batch-cost.dat" using 1:2 with linespoints lw 2 title "(a) raw PROCMAP_QUERY", \
     "" using 1:3 with linespoints lw 2 title "(b) parse /proc/PID/maps (sscanf)", \
     "" using 1:4 with linespoints lw 2 title "(c) memmapd Lookup, warm", \
     "" using 1:5 with linespoints lw 2 title "(c) memmapd Lookup, warm, build IDs"
