#!/usr/bin/env bash
# Time and peak memory of compiling examples/train.cpp (both networks) with g++ -O2, as recorded
# in docs/results/nn.md. Usage: scripts/compile_cost.sh [compiler] [extra flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${1:-g++}
shift || true
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for run in 1 2 3; do
  /usr/bin/time -f "%e s  %M KB" -o "$out/time" \
    "$cxx" -std=c++20 -O2 -DNDEBUG -I include -isystem /usr/include/eigen3 "$@" \
    -c examples/train.cpp -o "$out/train.o"
  echo "run $run: $(cat "$out/time")  ($cxx $("$cxx" -dumpfullversion), -O2 $*)"
done
