#!/usr/bin/env bash
# Strong and weak scaling of the federated simulation over MPI (bench/bench_mpi.cpp) on 1, 2 and 4
# ranks, written to docs/results/distributed/: bench_mpi_p<P>.json (Google Benchmark's JSON) and
# scaling.md (the table docs/distributed.md quotes).
#
#   scripts/bench_mpi.sh            # builds build/bench (Release) and runs it
#   RANKS="1 2 4 8" scripts/bench_mpi.sh
#
# On a machine with fewer cores than ranks, mpirun oversubscribes (--oversubscribe, no binding):
# the ranks then share cores, which the table shows as efficiency below 1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ranks=${RANKS:-1 2 4}
out=docs/results/distributed
mkdir -p "$out"
cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDGESCALE_BUILD_BENCH=ON >/dev/null
cmake --build build/bench --target bench_mpi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
for p in $ranks; do
  echo "== $p rank(s)"
  mpirun -np "$p" --oversubscribe --bind-to none build/bench/bench/bench_mpi \
    --benchmark_out="$out/bench_mpi_p$p.json" --benchmark_out_format=json
done
python3 - "$out" $ranks <<'PY'
import json, sys
out, ranks = sys.argv[1], [int(r) for r in sys.argv[2:]]
runs = {}
ctx = {}
for p in ranks:
    data = json.load(open(f"{out}/bench_mpi_p{p}.json"))
    ctx = data["context"]
    for b in data["benchmarks"]:
        runs[(b["name"].split("/iterations")[0], p)] = b
cpu = "unknown CPU"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
cpu = f'{cpu}, {ctx.get("num_cpus")} cores at {ctx.get("mhz_per_cpu")} MHz'
rank_word = lambda p: f"{p} rank{'s' if p > 1 else ''}"

rounds = sorted({n for n, _ in runs if not n.startswith("reduction")})
lines = ["| workload | scaling | reduction | "
         + " | ".join(f"{rank_word(p)}: ms/round" for p in ranks) + " | "
         + " | ".join(f"{rank_word(p)}: speed-up (strong) or efficiency (weak)" for p in ranks[1:])
         + " | bytes/round of the busiest rank (" + ", ".join(rank_word(p) for p in ranks) + ") |",
         "|---|---|---|" + "---|" * (2 * len(ranks) - 1) + "---|"]
for n in rounds:
    w, scaling, mode = n.split("/")
    scaling = "weak" if scaling.endswith("1") else "strong"
    mode = "fast" if mode.endswith("1") else "deterministic"
    t = [runs[(n, p)]["real_time"] for p in ranks]
    ratio = [f"{t[0] / x:.2f}" + ("×" if scaling == "strong" else "") for x in t[1:]]
    by = [f'{runs[(n, p)]["bytes_max"] / 1e3:.0f} kB' for p in ranks]
    lines.append(f"| {w} | {scaling} | {mode} | " + " | ".join(f"{x:.2f}" for x in t) + " | "
                 + " | ".join(ratio) + " | " + ", ".join(by) + " |")
table = "\n".join(lines)

sizes = sorted({int(n.split("/")[1].split(":")[1]) for n, _ in runs if n.startswith("reduction")})
multi = [p for p in ranks if p > 1]
red = ["| doubles | MB | " + " | ".join(f"{rank_word(p)}: deterministic µs | fast µs | ratio" for p in multi) + " |",
       "|---|---|" + "---|---|---|" * len(multi)]
for v in sizes:
    cells = []
    for p in multi:
        d = runs[(f"reduction/values:{v}/fast:0", p)]["real_time"]
        f = runs[(f"reduction/values:{v}/fast:1", p)]["real_time"]
        cells.append(f"{d:.0f} | {f:.0f} | {d / f:.2f}")
    red.append(f"| {v} | {v * 8 / 1e6:.2f} | " + " | ".join(cells) + " |")
reduction = "\n".join(red)
open(f"{out}/scaling.md", "w").write(
    f"Measured on {cpu} (ranks beyond the cores are oversubscribed).\n\n"
    f"Rounds:\n\n{table}\n\nThe reduction alone (one node of that many doubles per rank):\n\n{reduction}\n")
print(open(f"{out}/scaling.md").read())
PY
