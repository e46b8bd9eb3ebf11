#!/usr/bin/env bash
# Draws training curves from the CSV files examples/train writes beside its JSON:
#   scripts/plot_training.sh out.png run1.csv [run2.csv ...]
# Test accuracy and training loss per epoch, one line per run (gnuplot, Debian's gnuplot-nox).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 out.png run.csv [run.csv ...]" >&2; exit 2; }
command -v gnuplot >/dev/null || { echo "plot_training: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
out=$1
shift
acc="" loss=""
for f in "$@"; do
  t=$(basename "$f" .csv)
  acc+="${acc:+, }'$f' using 1:(100*\$6) with linespoints title '$t'"
  loss+="${loss:+, }'$f' using 1:3 with linespoints title '$t'"
done
gnuplot <<GP
set terminal pngcairo size 1100,450 noenhanced
set output '$out'
set datafile separator ','
set key autotitle columnhead bottom right
set multiplot layout 1,2
set title 'test accuracy (%)'
set xlabel 'epoch'
set grid
plot $acc
set title 'training loss'
set key top right
plot $loss
unset multiplot
GP
echo "wrote $out"
