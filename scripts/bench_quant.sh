#!/usr/bin/env bash
# Builds and runs the int8 GEMM benchmarks the way docs/results/quant.md records them:
#   Release, one thread, pinned to one core, repetitions interleaved at random (as scripts/bench.sh
#   does for bench_nn, which it alone runs). Three runs, one JSON each under build/bench:
#     bench_quant        -march=native: every gemm_s8 path, Eigen float, oneDNN at the ISA it
#                        picks, gemmlowp                                        -> quant.json
#     bench_quant_vnni   icelake-server (AVX-512 VNNI, no AMX), oneDNN capped at VNNI in the same
#                        process: what a CPU without AMX gets, side by side; when the CPU has
#                        AVX-512 VNNI                                           -> quant_vnni.json
#     bench_quant_avx2   x86-64-v3, oneDNN capped at AVX2: what an AVX2-only CPU gets
#                                                                               -> quant_avx2.json
#   and the markdown tables to build/bench/quant.md and stdout.
#
#   scripts/bench_quant.sh                                 # everything (about 10 minutes)
#   scripts/bench_quant.sh --benchmark_filter=fc784_300    # extra arguments go to every run
#
# Environment knobs:
#   EDGESCALE_BENCH_CPU=N         core to pin to with taskset (default 1, or 0 on a 1-core machine)
#   EDGESCALE_BENCH_MIN_TIME=S    seconds per benchmark and repetition (default 0.3)
#   EDGESCALE_BENCH_REPETITIONS=N repetitions, reported as median (default 5)
#   EDGESCALE_JOBS=N              parallel compile jobs (default: nproc)
#   EDGESCALE_BENCH_TABLES_ONLY=1 build and run nothing: the tables from the JSON already there
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=build/bench
jobs=${EDGESCALE_JOBS:-$(nproc)}
min_time=${EDGESCALE_BENCH_MIN_TIME:-0.3}
repetitions=${EDGESCALE_BENCH_REPETITIONS:-5}

x86=false
vnni=false
if [[ $(uname -m) == x86_64 ]]; then
  x86=true
  grep -qw avx512_vnni /proc/cpuinfo && vnni=true
fi
jsons=("$build/quant.json")
$vnni && jsons+=("$build/quant_vnni.json")
$x86 && jsons+=("$build/quant_avx2.json")

if [[ "${EDGESCALE_BENCH_TABLES_ONLY:-0}" != 1 ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDGESCALE_BUILD_BENCH=ON \
    -DEDGESCALE_NATIVE=ON -DEDGESCALE_BUILD_TESTS=OFF -DEDGESCALE_BUILD_EXAMPLES=OFF
  targets=(bench_quant)
  $x86 && targets+=(bench_quant_avx2)
  $vnni && targets+=(bench_quant_vnni)
  cmake --build "$build" -j "$jobs" --target "${targets[@]}"

  # One thread everywhere (oneDNN runs on OpenMP), one core (scripts/bench_run.sh: run).
  # shellcheck source=scripts/bench_run.sh
  source scripts/bench_run.sh

  run bench_quant "$build/quant.json" "$@"
  if $vnni; then
    run bench_quant_vnni "$build/quant_vnni.json" \
      --benchmark_filter='^(s8_avx512_vnni|s8_requant|eigen_f32|onednn_[a-z0-9_]+|gemmlowp_u8)/' "$@"
  fi
  if $x86; then
    run bench_quant_avx2 "$build/quant_avx2.json" \
      --benchmark_filter='^(s8_avx2|s8_requant|eigen_f32|onednn_[a-z0-9_]+|gemmlowp_u8)/' "$@"
  fi
fi

# ---- tables: the median GOP/s of every row, and the ratios the docs quote ----
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
CPU_MODEL="${cpu_model:-$(uname -m)}" /usr/bin/python3 - "${jsons[@]}" >"$build/quant.md" <<'EOF'
import json
import os
import re
import sys

SHAPES = {"gemm1024": "1024 x 1024", "gemm256": "256 x 256", "fc784_300": "300 x 784",
          "fc300_100": "100 x 300", "fc100_10": "10 x 100"}
WORKLOADS = ["gemm1024/1024", "gemm256/256"] + [
    f"{s}/{n}" for n in (1, 32, 256) for s in ("fc784_300", "fc300_100", "fc100_10")]


def load(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    rates, labels = {}, {}
    for b in data["benchmarks"]:
        run = b.get("run_name", b["name"]).removesuffix("/process_time")
        impl, _, workload = run.partition("/")
        if b.get("error_occurred"):
            rates[(impl, workload)] = None
            labels[(impl, workload)] = b.get("error_message", "error")
        elif b.get("aggregate_name", "median") == "median" and "GOP/s" in b:
            rates[(impl, workload)] = b["GOP/s"]
            if b.get("label"):
                labels[(impl, workload)] = b["label"]
    return data["context"], rates, labels


def name(workload):
    shape, _, n = workload.partition("/")
    return f"{shape}: {SHAPES[shape]} / {n}"


def cell(rates, impl, workload):
    v = rates.get((impl, workload))
    return "—" if v is None else f"{v:.1f}"


def ratio(rates, a, b, workload):
    x, y = rates.get((a, workload)), rates.get((b, workload))
    return "—" if not x or not y else f"{x / y:.2f}"


def table(title, context, rates, labels, columns, ratios):
    impls = sorted({i for i, _ in rates})
    cols = [c for c in columns if c in impls]
    ratios = [(a, b) for a, b in ratios if a in impls and b in impls]
    print(f"### {title}\n")
    print(f"{context.get('date', '?')}; {os.environ.get('CPU_MODEL', '?')}, "
          f"{context.get('mhz_per_cpu', '?')} MHz nominal, 1 thread; {context.get('compiler', '?')}; "
          f"Eigen {context.get('eigen', '?')}.  \ngemm_s8: {context.get('gemm_s8', '?')}.  \n"
          f"oneDNN: {context.get('onednn', '?')}.  \ngemmlowp: {context.get('gemmlowp', '?')}.\n")
    head = ["M x K / N"] + cols
    print("GOP/s (2·M·N·K per second of CPU time, median of the repetitions):\n")
    print("| " + " | ".join(head) + " |")
    print("|---|" + "--:|" * len(cols))
    for w in WORKLOADS:
        print("| " + " | ".join([name(w)] + [cell(rates, c, w) for c in cols]) + " |")
    print("\nRatios, measured side by side in the same run:\n")
    head = ["M x K / N"] + [f"{a} / {b}" for a, b in ratios]
    print("| " + " | ".join(head) + " |")
    print("|---|" + "--:|" * len(ratios))
    for w in WORKLOADS:
        print("| " + " | ".join([name(w)] + [ratio(rates, a, b, w) for a, b in ratios]) + " |")
    for impl in cols:
        marked = [l for (i, w), l in labels.items() if i == impl and w in WORKLOADS]
        inexact = [re.search(r"(\d+) of 61 sampled entries differ from W·x, by up to (\d+)", l)
                   for l in marked]
        inexact = [m for m in inexact if m]
        if inexact:
            print(f"\n{impl} is INEXACT in {len(inexact)} of these rows: "
                  f"{min(int(m[1]) for m in inexact)}-{max(int(m[1]) for m in inexact)} of 61 "
                  f"sampled entries differ from W·x, by up to {max(int(m[2]) for m in inexact)}.")
        errors = sorted({l for l in marked if "cannot run" in l or "differs" in l})
        for e in errors:
            print(f"\n{impl}: {e}")
    print()


native_context, native, native_labels = load(sys.argv[1])
avx2 = vnni = None
for extra in sys.argv[2:]:
    if not os.path.exists(extra):
        continue
    if "quant_avx2" in extra:
        avx2 = load(extra)
    elif "quant_vnni" in extra:
        vnni = load(extra)
onednn = sorted({i for i, _ in native if i.startswith("onednn_")})
table("bench_quant: -march=native, every path", native_context, native, native_labels,
      ["s8_amx", "s8_avx512_vnni", "s8_avx2", "s8_portable", "s8_requant", "eigen_f32"] + onednn +
      ["gemmlowp_u8"],
      [("s8_amx", "eigen_f32"), ("s8_avx512_vnni", "eigen_f32"), ("s8_avx2", "eigen_f32")] +
      [("s8_amx", o) for o in onednn if "amx" in o] +
      [("s8_avx512_vnni", o) for o in onednn] + [("s8_avx512_vnni", "gemmlowp_u8")])
if vnni:
    table("bench_quant_vnni: icelake-server (AVX-512 VNNI, no AMX), oneDNN capped at VNNI — a CPU "
          "without AMX", *vnni,
          ["s8_avx512_vnni", "s8_requant", "eigen_f32", "onednn_avx512_core_vnni", "gemmlowp_u8"],
          [("s8_avx512_vnni", "eigen_f32"), ("s8_avx512_vnni", "onednn_avx512_core_vnni"),
           ("s8_avx512_vnni", "gemmlowp_u8")])
if avx2:
    table("bench_quant_avx2: x86-64-v3 (AVX2, FMA), oneDNN capped at AVX2 — an AVX2-only CPU",
          *avx2, ["s8_avx2", "s8_requant", "eigen_f32", "onednn_avx2", "gemmlowp_u8"],
          [("s8_avx2", "eigen_f32"), ("s8_avx2", "onednn_avx2"), ("s8_avx2", "gemmlowp_u8")])
EOF
echo
cat "$build/quant.md"
echo
echo "bench_quant.sh: JSON in ${jsons[*]}, tables in $build/quant.md"
