#!/usr/bin/env bash
# Before and after: builds bench_nn at a base revision and at the working tree, and runs the two
# alternately on one core, so both see the same machine (these machines are noisy; a ratio taken
# within one session means more than two figures from two days). Prints, per benchmark present in
# both, the median samples/s (or bytes/s) of each and the ratio after/before.
#
#   scripts/bench_compare.sh BASE [benchmark filter]      e.g. scripts/bench_compare.sh 9b224f2 '^ours/'
#
# Environment knobs: EDGESCALE_BENCH_CPU (core, default 1), EDGESCALE_BENCH_ROUNDS (alternations,
# default 5), EDGESCALE_BENCH_MIN_TIME (seconds per benchmark per round, default 0.2).
# The base is checked out with `git worktree` under build/bench-compare/ (ignored by git); libtorch
# is not built into either (the comparison is ours against ours).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

base=${1:?usage: scripts/bench_compare.sh BASE [filter]}
filter=${2:-^ours/}
rounds=${EDGESCALE_BENCH_ROUNDS:-5}
min_time=${EDGESCALE_BENCH_MIN_TIME:-0.2}
jobs=${EDGESCALE_JOBS:-$(nproc)}
cpus=$(nproc --all)
cpu=${EDGESCALE_BENCH_CPU:-$((cpus > 1 ? 1 : 0))}
work=build/bench-compare
base_sha=$(git rev-parse --short "$base")

mkdir -p "$work"
if [[ -d "$work/base-src" ]]; then
  git worktree remove --force "$work/base-src" >/dev/null 2>&1 || rm -rf "$work/base-src"
  git worktree prune
fi
git worktree add --detach "$work/base-src" "$base" >/dev/null

configure() {  # configure SRC BUILD
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDGESCALE_BUILD_BENCH=ON \
    -DEDGESCALE_NATIVE=ON -DEDGESCALE_BUILD_TESTS=OFF -DEDGESCALE_BUILD_EXAMPLES=OFF \
    -DCMAKE_DISABLE_FIND_PACKAGE_Torch=ON >/dev/null
  cmake --build "$2" --target bench_nn -j "$jobs"
}
configure "$work/base-src" "$work/base-build"
configure . "$work/head-build"

pin=()
command -v taskset >/dev/null && pin=(taskset -c "$cpu")
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
rm -f "$work"/run-*.json
echo "bench_compare.sh: $rounds rounds, base $base_sha then working tree, core $cpu, filter '$filter'"
for ((r = 0; r < rounds; ++r)); do
  for side in base head; do
    "${pin[@]}" "$work/$side-build/bench/bench_nn" --benchmark_filter="$filter" \
      --benchmark_min_time="$min_time" --benchmark_out="$work/run-$side-$r.json" \
      --benchmark_out_format=json >/dev/null
  done
  echo "bench_compare.sh: round $((r + 1))/$rounds done"
done
git worktree remove --force "$work/base-src"

/usr/bin/python3 - "$work" "$rounds" "$base_sha" <<'EOF'
import json, statistics, sys
work, rounds, base = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def rates(side):
    out = {}
    for r in range(rounds):
        for b in json.load(open(f"{work}/run-{side}-{r}.json"))["benchmarks"]:
            rate = b.get("items_per_second") or b.get("bytes_per_second")
            if rate:
                out.setdefault(b["name"], []).append(rate)
    return out
before, after = rates("base"), rates("head")
print(f"\n| benchmark | before ({base}) /s | after /s | after / before | spread of the ratio |")
print("|---|---:|---:|---:|---:|")
for name in sorted(set(before) & set(after)):
    b, a = statistics.median(before[name]), statistics.median(after[name])
    ratios = [x / y for x, y in zip(after[name], before[name])]
    print(f"| {name} | {b:,.0f} | {a:,.0f} | {a / b:.3f} | {min(ratios):.2f}–{max(ratios):.2f} |")
only = sorted(set(after) - set(before))
if only:
    print("\nonly after: " + ", ".join(only))
EOF
