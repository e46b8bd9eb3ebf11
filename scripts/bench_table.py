#!/usr/bin/python3
"""Turns bench_nn's Google Benchmark JSON into the markdown tables of docs/results/nn.md.

    scripts/bench_table.py build/bench/nn.json            # tables on stdout
    scripts/bench_table.py build/bench/nn.json --check    # exit 1 when an acceptance bound is missed

Benchmark names are "<impl>/<net>_<mode>/<batch>[/process_time]" with impl ours, torch or eigen
(bench/workloads.hpp), and parts/<net>_<piece>/<batch> for the pieces of our training steps.
Throughput is samples/s (items_per_second) and times are process CPU time per iteration: the
median over repetitions when the run has aggregates, else the single run. Standard library only.
"""

import argparse
import json
import sys

WORKLOADS = [
    ("mlp_forward", "LeNet-300-100 inference"),
    ("mlp_train", "LeNet-300-100 training step"),
    ("lenet5_forward", "LeNet-5 inference"),
    ("lenet5_train", "LeNet-5 training step"),
]

# (description, workload, batch, numerator impl, denominator impl, required ratio)
BOUNDS = [
    ("training step >= 3x libtorch at batch 1 (LeNet-300-100)", "mlp_train", 1, "ours", "torch", 3.0),
    ("training step >= 3x libtorch at batch 1 (LeNet-5)", "lenet5_train", 1, "ours", "torch", 3.0),
    ("training step >= 1.2x libtorch at batch 32 (LeNet-300-100)", "mlp_train", 32, "ours", "torch", 1.2),
    ("training step >= 1.2x libtorch at batch 32 (LeNet-5)", "lenet5_train", 32, "ours", "torch", 1.2),
    ("training step >= 0.9x libtorch at batch 256 (LeNet-300-100)", "mlp_train", 256, "ours", "torch", 0.9),
    ("batch-1 inference >= 3x libtorch (LeNet-300-100)", "mlp_forward", 1, "ours", "torch", 3.0),
    ("batch-1 inference >= 3x libtorch (LeNet-5)", "lenet5_forward", 1, "ours", "torch", 3.0),
    ("Dense forward at batch 256 >= 0.8x raw Eigen GEMM (LeNet-300-100)", "mlp_forward", 256, "ours", "eigen", 0.8),
    ("inference >= 0.85x raw Eigen GEMM at batch 1 (LeNet-5)", "lenet5_forward", 1, "ours", "eigen", 0.85),
    ("inference >= 0.85x raw Eigen GEMM at batch 32 (LeNet-5)", "lenet5_forward", 32, "ours", "eigen", 0.85),
    ("training step >= 0.8x raw Eigen GEMM at batch 1 (LeNet-5)", "lenet5_train", 1, "ours", "eigen", 0.8),
    ("training step >= 0.8x raw Eigen GEMM at batch 32 (LeNet-5)", "lenet5_train", 32, "ours", "eigen", 0.8),
]


def parse_name(run_name):
    parts = run_name.split("/")
    if len(parts) < 3 or not parts[2].isdigit():
        return None
    return parts[0], parts[1], int(parts[2])


TIME_UNIT_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


def load(path):
    """Context, samples/s, per-iteration CPU microseconds, coefficients of variation, repetitions."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    medians, median_times, singles, cvs = {}, {}, {}, {}
    repetitions = 1
    for b in data.get("benchmarks", []):
        key = parse_name(b.get("run_name", b["name"]))
        if key is None:
            continue
        rate = b.get("items_per_second")
        us = b.get("cpu_time", 0.0) * TIME_UNIT_US.get(b.get("time_unit", "ns"), 1e-3)
        if b.get("run_type") == "aggregate":
            repetitions = max(repetitions, int(b.get("repetitions", 1)))
            if b.get("aggregate_name") == "median" and rate is not None:
                medians[key] = rate
                median_times[key] = us
            elif b.get("aggregate_name") == "cv" and rate is not None:
                cvs[key] = rate
        elif rate is not None:
            singles.setdefault(key, []).append((rate, us))
    rates, times = dict(medians), dict(median_times)
    for key, values in singles.items():
        if key not in rates:
            values = sorted(values)
            rates[key], times[key] = values[len(values) // 2]
    return data.get("context", {}), rates, times, cvs, repetitions


def fmt_rate(value):
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def fmt_ratio(num, den):
    if num is None or den is None or den == 0:
        return "—"
    return f"{num / den:.2f}×"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="bench_nn --benchmark_out file")
    parser.add_argument("--check", action="store_true", help="exit 1 if an acceptance bound is missed")
    args = parser.parse_args()

    context, rates, times, cvs, repetitions = load(args.json)
    batches = sorted({key[2] for key in rates})
    have_torch = any(key[0] == "torch" for key in rates)

    out = []
    out.append(f"Samples/s ({'median of ' + str(repetitions) + ' repetitions' if repetitions > 1 else 'one run'}, "
               "per second of process CPU time). *Eigen GEMM* is the raw Eigen products of the same "
               "shapes only (no bias, activation, pooling, im2col, loss or optimizer).")
    out.append("")
    out.append(f"Eigen's matrix products: {context.get('eigen_products', 'Eigen kernels')}.")
    out.append("")
    out.append("| workload | batch | ours | libtorch | Eigen GEMM | ours / libtorch | ours / Eigen GEMM |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for workload, title in WORKLOADS:
        for batch in batches:
            ours = rates.get(("ours", workload, batch))
            if ours is None:
                continue
            torch = rates.get(("torch", workload, batch))
            eigen = rates.get(("eigen", workload, batch))
            out.append(f"| {title} | {batch} | {fmt_rate(ours)} | {fmt_rate(torch)} | {fmt_rate(eigen)} | "
                       f"{fmt_ratio(ours, torch)} | {fmt_ratio(ours, eigen)} |")
    if cvs:
        worst_key = max(cvs, key=cvs.get)
        out.append("")
        out.append(f"Largest coefficient of variation over the repetitions: {100 * cvs[worst_key]:.1f} % "
                   f"({'/'.join(map(str, worst_key))}).")

    out.append("")
    out.append("| acceptance bound | measured | required | met |")
    out.append("|---|---:|---:|:---:|")
    missed = []
    for description, workload, batch, num_impl, den_impl, required in BOUNDS:
        num = rates.get((num_impl, workload, batch))
        den = rates.get((den_impl, workload, batch))
        if num is None or den is None:
            reason = "libtorch not built" if den_impl == "torch" and not have_torch else "not measured"
            out.append(f"| {description} | — | {required:g}× | n/a ({reason}) |")
            continue
        ratio = num / den
        ok = ratio >= required
        if not ok:
            missed.append(description)
        out.append(f"| {description} | {ratio:.2f}× | {required:g}× | {'yes' if ok else '**no**'} |")

    for net, title in (("mlp", "LeNet-300-100"), ("lenet5", "LeNet-5")):
        part_batches = sorted({key[2] for key in times if key[0] == "parts" and key[1].startswith(net + "_")})
        if not part_batches:
            continue
        # No zero_grad: the step's backward writes the gradients (nn/overwrite.hpp).
        pieces = [("forward", "forward"), ("loss", "loss"), ("backward", "backward"),
                  ("sgd", "SGD step")]
        out.append("")
        out.append(f"Our {title} training step, piece by piece (µs of CPU time per step; each piece "
                   "timed alone, `parts/...`), beside the whole step and the raw Eigen GEMMs of the step:")
        out.append("")
        out.append("| batch | " + " | ".join(name for _, name in pieces) +
                   " | sum of pieces | whole step | Eigen GEMMs of the step | libtorch step |")
        out.append("|---:|" + "---:|" * (len(pieces) + 4))
        for batch in part_batches:
            cells = [times.get(("parts", f"{net}_{piece}", batch)) for piece, _ in pieces]
            total = sum(c for c in cells if c is not None)
            whole = times.get(("ours", f"{net}_train", batch))
            gemm = times.get(("eigen", f"{net}_train", batch))
            torch = times.get(("torch", f"{net}_train", batch))

            def us(v):
                if v is None:
                    return "—"
                return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"

            def share(v):
                return f"{us(v)} ({100 * v / total:.0f} %)" if v is not None and total else us(v)
            out.append(f"| {batch} | " + " | ".join(share(c) for c in cells) +
                       f" | {us(total)} | {us(whole)} | {us(gemm)} | {us(torch)} |")

    out.append("")
    for key in ("host_name", "date", "compiler", "eigen", "eigen_products", "torch", "library_build_type"):
        if key in context:
            out.append(f"- {key}: {context[key]}")
    print("\n".join(out))
    if missed:
        print("\nmissed: " + "; ".join(missed), file=sys.stderr)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
