#!/usr/bin/env bash
# The demo: builds the `train` example in Release and trains LeNet-300-100 on Fashion-MNIST for 10
# epochs (seed 1), then prints the test accuracy. Results go to build/release/demo-mlp.json.
#
#   scripts/demo.sh              # as above
#   scripts/demo.sh --net lenet5 # any extra flags are passed to train (they override the defaults)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

start=$SECONDS
scripts/install-deps.sh

build=build/release
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DEDGESCALE_BUILD_EXAMPLES=ON -DEDGESCALE_BUILD_TESTS=OFF
cmake --build "$build" --target train -j "${EDGESCALE_JOBS:-$(nproc)}"
build_secs=$((SECONDS - start))

out="$build/demo-mlp.json"
rm -f "$out"
"$build/examples/train" --net mlp --epochs 10 --seed 1 --out "$out" "$@"

if [[ ! -s "$out" ]]; then
  echo "demo.sh: train wrote no results to $out" >&2
  exit 1
fi
accuracy=$(python3 -c 'import json, sys; print("%.2f" % (100 * json.load(open(sys.argv[1]))["test_accuracy"]))' \
  "$out")
plot="$build/demo-mlp.png"
scripts/plot_training.sh "$plot" "$build/demo-mlp.csv" >/dev/null 2>&1 || plot="(not drawn: no gnuplot)"
echo
echo "demo.sh: test accuracy ${accuracy}% (results in $out, curves in $plot)"
echo "demo.sh: build ${build_secs} s, total $((SECONDS - start)) s"
