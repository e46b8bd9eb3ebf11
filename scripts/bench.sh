#!/usr/bin/env bash
# Builds and runs the nn benchmarks the way docs/results/nn.md records them:
#   Release, -O3 -march=native (EDGESCALE_NATIVE=ON), one thread, pinned to one core, libtorch
#   beside us in the same executable when libtorch-dev is installed. Two runs:
#     bench_nn       everything, Eigen's own GEMM kernels     -> build/bench/nn.json
#     bench_nn_blas  LeNet-300-100 only, EIGEN_USE_BLAS       -> build/bench/nn_blas.json
#   and their markdown tables (scripts/bench_table.py) to build/bench/nn.md and stdout.
#
#   scripts/bench.sh                                  # everything (about 4 minutes, plus the build)
#   scripts/bench.sh --benchmark_filter=mlp_train     # extra arguments go to both programs
#
# Environment knobs:
#   EDGESCALE_BENCH_CPU=N         core to pin to with taskset (default 1, or 0 on a 1-core machine)
#   EDGESCALE_BENCH_MIN_TIME=S    seconds per benchmark and repetition (default 0.3)
#   EDGESCALE_BENCH_REPETITIONS=N repetitions, reported as mean/median/stddev/cv (default 5)
#   EDGESCALE_BENCH_BLAS=0        skip the bench_nn_blas run
#   EDGESCALE_JOBS=N              parallel compile jobs (default: nproc)
#
# libtorch calls libblas.so.3, which Debian resolves through the alternative
# libblas.so.3-x86_64-linux-gnu. The reference BLAS makes libtorch about 20x slower and is no fair
# peer, so OpenBLAS (libopenblas0-pthread) must be selected: run as root, this script selects it
# (and says so); otherwise it warns.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=build/bench
jobs=${EDGESCALE_JOBS:-$(nproc)}
min_time=${EDGESCALE_BENCH_MIN_TIME:-0.3}
repetitions=${EDGESCALE_BENCH_REPETITIONS:-5}

# ---- BLAS behind libtorch ----
alternative=libblas.so.3-x86_64-linux-gnu
openblas=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
if command -v update-alternatives >/dev/null && update-alternatives --query "$alternative" >/dev/null 2>&1; then
  current=$(update-alternatives --query "$alternative" | sed -n 's/^Value: //p')
  if [[ "$current" == "$openblas" ]]; then
    echo "bench.sh: BLAS for libtorch: $current (openblas-pthread)"
  elif [[ -e "$openblas" && $(id -u) -eq 0 ]]; then
    echo "bench.sh: BLAS alternative pointed to '$current'; selecting OpenBLAS for a fair libtorch:"
    echo "bench.sh:   update-alternatives --set $alternative $openblas"
    update-alternatives --set "$alternative" "$openblas"
  else
    echo "bench.sh: WARNING: libblas.so.3 is '$current', not OpenBLAS ($openblas): libtorch will be" \
      "much slower than it should (install libopenblas0-pthread and select it as root)" >&2
  fi
else
  echo "bench.sh: no $alternative alternative (not Debian?); libtorch uses whatever BLAS it found"
fi

# ---- build ----
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDGESCALE_BUILD_BENCH=ON \
  -DEDGESCALE_NATIVE=ON -DEDGESCALE_BUILD_TESTS=OFF -DEDGESCALE_BUILD_EXAMPLES=OFF
cmake --build "$build" -j "$jobs"

# ---- run: one thread everywhere, one core (scripts/bench_run.sh: run) ----
# shellcheck source=scripts/bench_run.sh
source scripts/bench_run.sh

run bench_nn "$build/nn.json" "$@"
{
  echo "### bench_nn (Eigen's own kernels)"
  echo
  /usr/bin/python3 scripts/bench_table.py "$build/nn.json"
} >"$build/nn.md"

if [[ "${EDGESCALE_BENCH_BLAS:-1}" != 0 && -x "$build/bench/bench_nn_blas" ]]; then
  run bench_nn_blas "$build/nn_blas.json" '--benchmark_filter=^(ours|torch|eigen)/mlp_' "$@"
  {
    echo
    echo "### bench_nn_blas (EIGEN_USE_BLAS: Eigen's products through the system BLAS)"
    echo
    /usr/bin/python3 scripts/bench_table.py "$build/nn_blas.json"
  } >>"$build/nn.md"
fi

echo
cat "$build/nn.md"
echo
echo "bench.sh: JSON in $build/nn.json (and nn_blas.json), tables in $build/nn.md"
