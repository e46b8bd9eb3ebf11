# scripts/bench_run.sh — sourced by scripts/bench.sh and scripts/bench_quant.sh: one thread and one
# core for the benchmarks, a warning when the machine is busy, and run(), which runs a bench program
# the way docs/results record it. Expects $build, $min_time and $repetitions; messages are
# prefixed with the calling script's name.
# shellcheck shell=bash

bench_name=$(basename "$0")

# One thread everywhere (libtorch's BLAS, oneDNN's OpenMP), one core. OPENBLAS_CORETYPE, if set by
# the caller, is left as it is.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
cpus=$(nproc --all)
cpu=${EDGESCALE_BENCH_CPU:-$((cpus > 1 ? 1 : 0))}
pin=()
if command -v taskset >/dev/null; then
  pin=(taskset -c "$cpu")
  echo "$bench_name: pinned to core $cpu (taskset)"
else
  echo "$bench_name: taskset not found, not pinned"
fi
read -r load1 _ </proc/loadavg
echo "$bench_name: load average $load1 on $cpus cores before the run"
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
  echo "$bench_name: WARNING: other processes are running; rates are per second of CPU time, but" \
    "shared caches and frequency still make the numbers noisier than on an idle machine" >&2
fi

# run <program> <json> [args...]: repetitions interleaved at random, so a burst of load on the
# machine spreads over every implementation instead of landing on one.
run() {
  local program=$1 json=$2
  shift 2
  local command=("${pin[@]}" "$build/bench/$program" --benchmark_min_time="$min_time"
    --benchmark_repetitions="$repetitions" --benchmark_report_aggregates_only=true
    --benchmark_enable_random_interleaving=true
    --benchmark_out="$json" --benchmark_out_format=json "$@")
  echo
  echo "$bench_name: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 ${command[*]}"
  local start=$SECONDS
  "${command[@]}"
  echo "$bench_name: $program took $((SECONDS - start)) s"
}
