#!/usr/bin/env bash
# The demo: builds the `train` example in Release and trains LeNet-300-100 on Fashion-MNIST for 10
# epochs (seed 1), then prints the test accuracy. Results go to build/release/demo-mlp.json.
#
#   scripts/demo.sh              # as above, built for this machine's CPU (-march=native)
#   scripts/demo.sh --portable   # built for any x86-64 (the compiler's default target), in
#                                # build/release-portable: the binary runs on other machines
#   scripts/demo.sh --net lenet5 # any other flags are passed to train (they override the defaults)
#
# The default is native because the demo runs where it is built: on an AVX2 machine that trains
# about twice as fast as the portable build (docs/results/nn.md, "Instruction sets").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

arch=native
build=build/release
train_args=()
for arg in "$@"; do
  case "$arg" in
    --portable) arch="" build=build/release-portable ;;
    *) train_args+=("$arg") ;;
  esac
done

start=$SECONDS
scripts/install-deps.sh

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DEDGESCALE_BUILD_EXAMPLES=ON -DEDGESCALE_BUILD_TESTS=OFF -DEDGESCALE_ARCH="$arch"
cmake --build "$build" --target train -j "${EDGESCALE_JOBS:-$(nproc)}"
build_secs=$((SECONDS - start))

out="$build/demo-mlp.json"
rm -f "$out"
train_start=$SECONDS
"$build/examples/train" --net mlp --epochs 10 --seed 1 --out "$out" "${train_args[@]}"
train_secs=$((SECONDS - train_start))

if [[ ! -s "$out" ]]; then
  echo "demo.sh: train wrote no results to $out" >&2
  exit 1
fi
accuracy=$(python3 -c 'import json, sys; print("%.2f" % (100 * json.load(open(sys.argv[1]))["test_accuracy"]))' \
  "$out")
plot="$build/demo-mlp.png"
scripts/plot_training.sh "$plot" "$build/demo-mlp.csv" >/dev/null 2>&1 || plot="(not drawn: no gnuplot)"
cpu=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
echo
echo "demo.sh: test accuracy ${accuracy}% (results in $out, curves in $plot)"
target="-march=$arch"
[[ -n $arch ]] || target="the compiler's default target (--portable)"
echo "demo.sh: built for $target, run on ${cpu:-$(uname -m)}"
echo "demo.sh: build ${build_secs} s, training ${train_secs} s, total $((SECONDS - start)) s"
