#!/usr/bin/python3
"""Turns bench_sparse's Google Benchmark JSON into the tables of docs/results/sparse.md.

    scripts/sparse_table.py build/bench/sparse.json

Benchmark names are "<impl>/<workload>/<batch>/<density per mille>[/process_time]" (bench/
bench_sparse.cpp). Times are process CPU time per iteration in µs: the median over repetitions when
the run has aggregates, else the single run. For each layer and batch, the crossover is the density
where CSR's time equals the dense time, interpolated linearly between the two benchmarked densities
around it (CSR's time grows about linearly with the kept weights); "≥ 1" when CSR wins everywhere.
Standard library only.
"""

import argparse
import json
from collections import defaultdict

TIME_UNIT_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
LAYERS = ["mlp_fc1", "mlp_fc2", "mlp_fc3", "lenet_conv1", "lenet_conv2"]
NETWORKS = ["mlp", "lenet5"]


def load(path):
    with open(path) as f:
        data = json.load(f)
    medians, singles = {}, {}
    for b in data["benchmarks"]:
        parts = b.get("run_name", b["name"]).split("/")
        if len(parts) < 4:
            continue
        key = (parts[0], parts[1], int(parts[2]), int(parts[3]))
        us = b["cpu_time"] * TIME_UNIT_US[b.get("time_unit", "ns")]
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[key] = us
        else:
            singles.setdefault(key, []).append(us)
    times = dict(medians)
    for key, values in singles.items():
        times.setdefault(key, sorted(values)[len(values) // 2])
    return data.get("context", {}), times


def crossover(points):
    """points: [(density, dense_us, csr_us)] -> density where csr == dense."""
    points = sorted(points)
    wins = [d for d, dense, csr in points if csr < dense]
    if len(wins) == len(points):
        return None  # CSR wins at every density
    for (d0, a0, c0), (d1, a1, c1) in zip(points, points[1:]):
        r0, r1 = c0 - a0, c1 - a1  # negative: CSR faster
        if r0 < 0 <= r1:
            return d0 + (d1 - d0) * (-r0) / (r1 - r0)
    return 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json")
    args = parser.parse_args()
    context, t = load(args.json)
    print(f"CPU: {context.get('num_cpus', '?')} x {context.get('mhz_per_cpu', '?')} MHz; "
          f"{context.get('date', '')}\n")

    batches = sorted({k[2] for k in t if k[1] in LAYERS})
    densities = sorted({k[3] for k in t if k[1] in LAYERS}, reverse=True)
    print("Layer forward, µs of CPU time (median); dense / CSR = how many times faster CSR is.\n")
    for layer in LAYERS:
        for batch in batches:
            if ("dense", layer, batch, densities[0]) not in t:
                continue
            eigen = ("eigen_sparse", layer, batch, densities[0]) in t
            head = "| density | dense | CSR | dense / CSR |" + (" Eigen sparse | Eigen / CSR |" if eigen else "")
            print(f"**{layer}, batch {batch}**\n")
            print(head)
            print("|" + "---:|" * (head.count("|") - 1))
            points = []
            for d in densities:
                dense, csr = t.get(("dense", layer, batch, d)), t.get(("csr", layer, batch, d))
                if dense is None or csr is None:
                    continue
                points.append((d / 1000, dense, csr))
                row = f"| {d / 10:g} % | {dense:.2f} | {csr:.2f} | {dense / csr:.2f}× |"
                if eigen:
                    e = t.get(("eigen_sparse", layer, batch, d))
                    row += f" {e:.2f} | {e / csr:.2f}× |"
                print(row)
            c = crossover(points)
            print(f"\ncrossover: {'CSR faster at every density' if c is None else f'{100 * c:.1f} %'}\n")

    print("Crossover density per layer (CSR faster below it):\n")
    print("| layer | " + " | ".join(f"batch {b}" for b in batches) + " |")
    print("|---|" + "---:|" * len(batches))
    for layer in LAYERS:
        cells = []
        for batch in batches:
            points = [(d / 1000, t[("dense", layer, batch, d)], t[("csr", layer, batch, d)])
                      for d in densities
                      if ("dense", layer, batch, d) in t and ("csr", layer, batch, d) in t]
            if not points:
                cells.append("")
                continue
            c = crossover(points)
            cells.append("≥ 100 %" if c is None else f"{100 * c:.1f} %")
        print(f"| {layer} | " + " | ".join(cells) + " |")

    print("\nWhole networks, inference, µs of CPU time per batch (median):\n")
    print("| network | batch | sparsity | dense | picked (compile_sparse) | dense / picked |")
    print("|---|---:|---:|---:|---:|---:|")
    for net in NETWORKS:
        for batch in sorted({k[2] for k in t if k[1] == net}):
            for d in sorted({k[3] for k in t if k[1] == net}, reverse=True):
                dense, picked = t.get(("dense", net, batch, d)), t.get(("picked", net, batch, d))
                if dense is None or picked is None:
                    continue
                print(f"| {net} | {batch} | {100 - d / 10:g} % | {dense:.2f} | {picked:.2f} | "
                      f"{dense / picked:.2f}× |")


if __name__ == "__main__":
    main()
