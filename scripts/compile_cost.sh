#!/usr/bin/env bash
# Time and peak memory of compiling examples/train.cpp (both networks) with -O2, as recorded in
# docs/results/nn.md ("Compile cost"): three runs of /usr/bin/time (wall, user CPU, peak memory),
# then one run of each translation unit the examples share (examples/common/*.cpp, compiled once
# for all examples and linked into each).
#
#   scripts/compile_cost.sh                  # g++
#   scripts/compile_cost.sh clang++          # another compiler
#   scripts/compile_cost.sh g++ -march=native  # extra flags go to every compile
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${1:-g++}
shift || true
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
version=$("$cxx" --version | head -n 1)
compile() {
  /usr/bin/time -f "%e s wall  %U s user  %M KB" -o "$out/time" \
    "$cxx" -std=c++20 -O2 -DNDEBUG -I include -isystem /usr/include/eigen3 "$@" -o "$out/x.o"
  cat "$out/time"
}
echo "$version, -O2 $*  (load average $(cut -d' ' -f1-3 /proc/loadavg))"
for run in 1 2 3; do
  echo "  examples/train.cpp, run $run: $(compile "$@" -c examples/train.cpp)"
done
for tu in examples/common/*.cpp; do
  echo "  $tu (shared, compiled once): $(compile "$@" -c "$tu")"
done
