#!/usr/bin/python3
"""The pruning-at-initialization sweep of docs/results/pruning.md (issue 6).

Runs examples/prune_at_init over nets x scorers x sparsities x seeds, then writes a CSV, a markdown
table and a plot per net.

    scripts/prune_sweep.py --preset quick            # about an hour on 2 cores (--dry-run: the plan)
    scripts/prune_sweep.py --preset full             # the literature's recipe everywhere (~2.6 h)
    scripts/prune_sweep.py --aggregate-only --out-dir DIR   # rebuild CSV, table, plots from DIR/runs
    scripts/prune_sweep.py --preset quick --nets mlp --scorers px,random --sparsities 0.99 --seeds 1

Presets (every flag below overrides its part):
  full   the recipe of the PX paper and its baselines (prune_at_init's defaults): 100 rounds of the
         exponential schedule, then 10 epochs (SGD momentum 0.9, lr 0.1 cosine, wd 5e-4, batch
         128), seeds 1-3, both nets, every scorer, sparsities 0.5 ... 0.995.
  quick  the same but LeNet-5 trains 2 epochs instead of 10 (its cosine schedule spans the 2). The
         whole LeNet-300-100 grid keeps the full recipe, so its panel (and the acceptance check at
         98 % and 99 %) is the literature's; only LeNet-5's absolute accuracies are short-run.

Scorer labels are prune_at_init's --scorer names, plus "<name>-oneshot" = --scorer <name> --rounds 1.
The default grid: px, px-consistent (lenet5 only: it differs from px only where max pooling routes
paths), snip-oneshot (SNIP as published; iterated it would repeat itersnip, see SCORERS), itersnip,
grasp (iterated) and grasp-oneshot, synflow, magnitude, random. "dense" is the same recipe with nothing
pruned (--scorer random --rounds 1 --sparsity 1e-9: floor(1e-9 n) = 0 weights removed; checked).

Runs land in OUT_DIR/runs/<net>_<label>_<sparsity>_<seed>.json (dense: <net>_dense_<seed>.json),
with their output in OUT_DIR/runs/logs/. A run whose JSON exists is skipped, so an interrupted sweep
resumes; one that exists with another recipe (epochs, rounds) is left alone and reported. Failed
runs are reported at the end (and in OUT_DIR/failures.txt); the sweep goes on without them. (The
runner is scripts/sweep_runs.py, shared with scripts/fed_sweep.py.)

Aggregates (over seeds, per net, label, rounds, epochs and sparsity): OUT_DIR/pruning.csv,
OUT_DIR/pruning_table.md (also printed) and OUT_DIR/pruning_<net>.png: test accuracy against
sparsity, x on a log scale of the density 1 - sparsity (so 50 %, 80 %, ... 99.5 % are about evenly
spaced), markers at the mean, error bars from the worst to the best seed (min/max). Then the
acceptance check of issue 6 at LeNet-300-100 99 % and 98 % (PASS/FAIL lines; --check exits 1 on a
FAIL). Running needs the standard library only; the plots need matplotlib.
"""

import argparse
import csv
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sweep_runs.py, run from anywhere
import sweep_runs  # noqa: E402
from sweep_runs import clock, csv_list, read_json  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NETS = ("mlp", "lenet5")
NET_TITLES = {"mlp": "LeNet-300-100", "lenet5": "LeNet-5"}
# The default grid. SNIP runs one-shot, as published: iterated, it is IterSNIP here, since the
# schedule zeroes pruned weights and SNIP's |θ ⊙ ∂L/∂(θ ⊙ m)| then equals IterSNIP's |θ ⊙ ∂L/∂θ|
# (prune/itersnip.hpp), so `snip` at R = 100 would repeat `itersnip` run for run.
SCORERS = ("px", "px-consistent", "snip-oneshot", "itersnip", "grasp", "grasp-oneshot", "synflow",
           "magnitude", "random")
LABEL_ORDER = ("px", "px-consistent", "snip", "snip-oneshot", "itersnip", "grasp", "grasp-oneshot",
               "synflow", "magnitude", "random")
PROGRAM_SCORERS = ("px", "px-consistent", "snip", "itersnip", "grasp", "synflow", "magnitude",
                   "random")
ONLY_ON = {"px-consistent": ("lenet5",)}  # label -> the nets it runs on (others: all)
SPARSITIES = (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)
DENSE = "dense"
DENSE_SPARSITY = 1e-9  # prune_at_init needs a sparsity in (0, 1); this one removes no weight

PRESETS = {
    "full": {"epochs": {"mlp": 10, "lenet5": 10}, "rounds": 100},
    "quick": {"epochs": {"mlp": 10, "lenet5": 2}, "rounds": 100},
}

# The cost model behind --dry-run's estimate and the first ETA (seconds on one free core of the
# 2-vCPU Zen 3 of docs/results/nn.md): loading Fashion-MNIST, one epoch of training + test, one
# round of scoring on the 100-example pruning batch (measured on a loaded machine: upper bounds).
LOAD_SECONDS = 1.0
EPOCH_SECONDS = {"mlp": 1.3, "lenet5": 8.0}
ROUND_SECONDS = {"mlp": {"grasp": 0.04, "px": 0.023, "px-consistent": 0.023},
                 "lenet5": {"grasp": 0.07, "px": 0.026, "px-consistent": 0.036}}
OTHER_ROUND_SECONDS = 0.015

# Acceptance 2 of issue 6, on LeNet-300-100 under the default recipe.
ACCEPT_NET, ACCEPT_EPOCHS, ACCEPT_ROUNDS, ACCEPT_SEEDS = "mlp", 10, 100, 3
CHANCE = 0.11  # mean accuracy at or below this (10 classes) without layer collapse: marked ‡


def sparsity_name(s):
    return format(s, "g")


class Run:
    """One invocation of prune_at_init (or its dense twin)."""

    def __init__(self, net, label, sparsity, seed, epochs, rounds):
        self.net, self.label, self.sparsity, self.seed = net, label, sparsity, seed
        self.epochs = epochs
        self.dense = label == DENSE
        oneshot = self.dense or label.endswith("-oneshot")
        self.scorer = "random" if self.dense else label.removesuffix("-oneshot")
        self.rounds = 1 if oneshot else rounds

    @property
    def name(self):
        if self.dense:
            return f"{self.net}_{DENSE}_{self.seed}"
        return f"{self.net}_{self.label}_{sparsity_name(self.sparsity)}_{self.seed}"

    def argv(self, program, out, data):
        sparsity = DENSE_SPARSITY if self.dense else self.sparsity
        args = [str(program), "--net", self.net, "--scorer", self.scorer,
                "--sparsity", repr(sparsity), "--rounds", str(self.rounds),
                "--epochs", str(self.epochs), "--seed", str(self.seed), "--out", str(out), "--quiet"]
        if data:
            args += ["--data", data]
        return args

    def estimated_seconds(self):
        per_round = ROUND_SECONDS.get(self.net, {}).get(self.scorer, OTHER_ROUND_SECONDS)
        return LOAD_SECONDS + self.rounds * per_round + self.epochs * EPOCH_SECONDS[self.net]


def per_net(text, what):
    """'10' (every net) or 'mlp=10,lenet5=2' -> {net: int}; None -> {}."""
    if text is None:
        return {}
    if "=" not in text:
        return {net: int(text) for net in NETS}
    out = {}
    for part in text.split(","):
        net, _, value = part.partition("=")
        if net not in NETS:
            raise SystemExit(f"prune_sweep: {what}: unknown net '{net}' (expected {', '.join(NETS)})")
        out[net] = int(value)
    return out


def plan(args):
    preset = PRESETS[args.preset]
    epochs = dict(preset["epochs"], **per_net(args.epochs, "--epochs"))
    rounds = dict({net: preset["rounds"] for net in NETS}, **per_net(args.rounds, "--rounds"))
    runs = []
    for net in args.nets:
        if args.dense:
            runs += [Run(net, DENSE, 0.0, seed, epochs[net], 1) for seed in args.seeds]
        for label in args.scorers:
            if net not in ONLY_ON.get(label, NETS):
                continue
            for sparsity in args.sparsities:
                runs += [Run(net, label, sparsity, seed, epochs[net], rounds[net])
                         for seed in args.seeds]
    return runs


def mismatch(run, done):
    """Why an existing result is not the planned run (None: it is)."""
    if done.get("epochs") != run.epochs or done.get("rounds") != run.rounds:
        return (f"epochs {done.get('epochs')}, rounds {done.get('rounds')} "
                f"(planned {run.epochs}, {run.rounds})")
    return None


def result_accuracy(result):
    return float(result["test_accuracy"])


def dense_pruned(run, result):
    """Why a dense run's result is not kept: it pruned weights (None: it did not, or not dense)."""
    if run.dense and result.get("sparsity_achieved", 1) != 0:
        return f"dense run pruned {result.get('sparsity_achieved')} of the weights"
    return None


def execute(runs, args, runs_dir):
    """Runs what is missing, `args.jobs` at a time; returns the failures as (run, reason)."""
    return sweep_runs.execute(runs, runs_dir, program=args.program, data=args.data,
                              jobs=args.jobs, prog="prune_sweep", mismatch=mismatch,
                              check_result=result_accuracy, accuracy=result_accuracy,
                              verify=dense_pruned)


# ---------------------------------------------------------------------------------- aggregation

def load_runs(runs_dir):
    """Every run JSON in runs_dir as (label, result); the label comes from the file name."""
    runs = []
    for path in sorted(runs_dir.glob("*.json")):
        parts = path.stem.split("_")
        try:
            result = read_json(path)
        except (OSError, ValueError) as e:
            print(f"prune_sweep: skipping {path}: {e}", file=sys.stderr)
            continue
        if len(parts) not in (3, 4) or parts[0] != result.get("net"):
            print(f"prune_sweep: skipping {path}: not <net>_<label>_<sparsity>_<seed>.json",
                  file=sys.stderr)
            continue
        if not isinstance(result.get("test_accuracy"), (int, float)):
            print(f"prune_sweep: skipping {path}: no test_accuracy", file=sys.stderr)
            continue
        label = parts[1]
        if label != DENSE and label.removesuffix("-oneshot") != result.get("scorer"):
            print(f"prune_sweep: {path} names scorer {label} but holds {result.get('scorer')}",
                  file=sys.stderr)
        runs.append((label, result))
    return runs


def aggregate(runs):
    """Rows over seeds, keyed by net, label, rounds, epochs and target sparsity."""
    groups = {}
    for label, r in runs:
        # Rounded so that a target written with a few digits less still groups with its twins.
        target = 0.0 if label == DENSE else float(f"{float(r['sparsity_target']):.10g}")
        key = (r["net"], label, int(r["rounds"]), int(r["epochs"]), target)
        groups.setdefault(key, []).append(r)
    rows = []
    for (net, label, rounds, epochs, target), rs in groups.items():
        rs.sort(key=lambda r: r["seed"])
        acc = [100.0 * float(r["test_accuracy"]) for r in rs]
        rows.append({
            "net": net, "scorer": label, "rounds": rounds, "epochs": epochs,
            "sparsity_target": target,
            "sparsity_achieved_mean": statistics.fmean(float(r["sparsity_achieved"]) for r in rs),
            "accuracy_mean_pct": statistics.fmean(acc),
            "accuracy_std_pct": statistics.stdev(acc) if len(acc) > 1 else float("nan"),
            "accuracy_min_pct": min(acc), "accuracy_max_pct": max(acc),
            "n_seeds": len(rs), "seeds": " ".join(str(r["seed"]) for r in rs),
            "layer_collapse": sum(bool(r.get("layer_collapse")) for r in rs),
            "score_seconds_mean": statistics.fmean(float(r.get("score_seconds") or 0) for r in rs),
            "train_seconds_mean": statistics.fmean(float(r.get("train_seconds") or 0) for r in rs),
        })
    order = {label: i for i, label in enumerate((DENSE,) + LABEL_ORDER)}
    rows.sort(key=lambda r: (NETS.index(r["net"]) if r["net"] in NETS else 9, r["epochs"],
                             order.get(r["scorer"], 99), r["scorer"], r["rounds"],
                             r["sparsity_target"]))
    return rows


CSV_FIELDS = ("net", "scorer", "rounds", "epochs", "sparsity_target", "sparsity_achieved_mean",
              "accuracy_mean_pct", "accuracy_std_pct", "accuracy_min_pct", "accuracy_max_pct",
              "n_seeds", "seeds", "layer_collapse", "score_seconds_mean", "train_seconds_mean")


def write_csv(rows, path):
    def cell(v):
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.6g}"
        return v
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for row in rows:
            w.writerow([cell(row[k]) for k in CSV_FIELDS])


def pct(s):
    return f"{100 * s:g} %"


def markdown_tables(rows):
    """One table per net and epoch count: scorer (and rounds) x sparsity, mean ± std over seeds."""
    out = []
    for net, epochs in dict.fromkeys((r["net"], r["epochs"]) for r in rows):
        sub = [r for r in rows if r["net"] == net and r["epochs"] == epochs]
        sparsities = sorted({r["sparsity_target"] for r in sub if r["scorer"] != DENSE})
        seeds = sorted({r["n_seeds"] for r in sub})
        out.append(f"**{NET_TITLES.get(net, net)}, {epochs} epochs** — test accuracy (%), mean ± std "
                   f"over {'/'.join(map(str, seeds))} seeds; best mean per sparsity in bold; "
                   "† layer collapse in k of n seeds; ‡ chance-level accuracy without collapse")
        out.append("")
        out.append("| scorer | R | " + " | ".join(pct(s) for s in sparsities) + " |")
        out.append("|---|---:|" + "---:|" * len(sparsities))
        best = {}
        for s in sparsities:
            means = [r["accuracy_mean_pct"] for r in sub if r["sparsity_target"] == s and r["scorer"] != DENSE]
            best[s] = max(means) if means else None
        for label, rounds in dict.fromkeys((r["scorer"], r["rounds"]) for r in sub):
            if label == DENSE:
                r = next(r for r in sub if r["scorer"] == DENSE)
                out.append(f"| dense (no pruning) | — | {fmt_cell(r, False)} (all sparsities) |"
                           + " |" * (len(sparsities) - 1))
                continue
            cells = []
            for s in sparsities:
                r = next((r for r in sub if (r["scorer"], r["rounds"], r["sparsity_target"]) ==
                          (label, rounds, s)), None)
                cells.append("—" if r is None else fmt_cell(r, r["accuracy_mean_pct"] == best[s]))
            out.append(f"| {label} | {rounds} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def fmt_cell(r, bold):
    text = f"{r['accuracy_mean_pct']:.2f}"
    if bold:
        text = f"**{text}**"
    if not math.isnan(r["accuracy_std_pct"]):
        text += f" ± {r['accuracy_std_pct']:.2f}"
    if r["layer_collapse"]:
        text += f" †{r['layer_collapse']}/{r['n_seeds']}"
    elif r["accuracy_mean_pct"] <= 100 * CHANCE:
        text += " ‡"
    return text


def acceptance(rows):
    """Issue 6, acceptance 2: (PASS|FAIL|N/A, text) lines."""
    def find(label, sparsity):
        return next((r for r in rows if r["net"] == ACCEPT_NET and r["scorer"] == label and
                     r["epochs"] == ACCEPT_EPOCHS and r["rounds"] == ACCEPT_ROUNDS and
                     r["sparsity_target"] == sparsity), None)

    def missing(*rs):
        for label, r in rs:
            if r is None:
                return f"no {label} runs (LeNet-300-100, {ACCEPT_EPOCHS} epochs, {ACCEPT_ROUNDS} rounds)"
            if r["n_seeds"] < ACCEPT_SEEDS:
                return f"{label} has {r['n_seeds']} seeds, needs {ACCEPT_SEEDS}"
        return None

    lines = []
    px99 = find("px", 0.99)
    for other in ("random", "magnitude"):
        o = find(other, 0.99)
        what = f"LeNet-300-100 99 %: px mean beats {other} mean by more than {other}'s seed spread"
        why = missing(("px", px99), (other, o))
        if why:
            lines.append(("N/A", f"{what} ({why})"))
            continue
        spread = o["accuracy_max_pct"] - o["accuracy_min_pct"]
        margin = px99["accuracy_mean_pct"] - o["accuracy_mean_pct"]
        lines.append(("PASS" if margin > spread else "FAIL",
                      f"{what}: px {px99['accuracy_mean_pct']:.2f} (spread "
                      f"{px99['accuracy_max_pct'] - px99['accuracy_min_pct']:.2f}) vs {other} "
                      f"{o['accuracy_mean_pct']:.2f}, margin {margin:+.2f} vs spread {spread:.2f}"))
    px98, r98 = find("px", 0.98), find("random", 0.98)
    what = "LeNet-300-100 98 %: px worst seed beats random best seed"
    why = missing(("px", px98), ("random", r98))
    if why:
        lines.append(("N/A", f"{what} ({why})"))
    else:
        lines.append(("PASS" if px98["accuracy_min_pct"] > r98["accuracy_max_pct"] else "FAIL",
                      f"{what}: px min {px98['accuracy_min_pct']:.2f} vs random max "
                      f"{r98['accuracy_max_pct']:.2f}"))
    return lines


# ------------------------------------------------------------------------------------- plots

STYLE = {  # label -> (colour, marker); PX drawn thicker
    "px": ("tab:red", "o"), "px-consistent": ("tab:pink", "D"), "snip": ("tab:blue", "s"),
    "snip-oneshot": ("tab:blue", "s"),
    "itersnip": ("tab:cyan", "v"), "grasp": ("tab:green", "^"), "grasp-oneshot": ("tab:olive", "<"),
    "synflow": ("tab:purple", "P"), "magnitude": ("tab:brown", "X"), "random": ("tab:gray", "*"),
}


def plot(rows, out_dir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("prune_sweep: matplotlib not found, no plots (apt-get install python3-matplotlib)",
              file=sys.stderr)
        return []
    written = []
    for net in dict.fromkeys(r["net"] for r in rows):
        sub = [r for r in rows if r["net"] == net]
        pruned = [r for r in sub if r["scorer"] != DENSE]
        series = list(dict.fromkeys((r["scorer"], r["rounds"], r["epochs"]) for r in pruned))
        several_recipes = len({e for _, _, e in series}) > 1
        sparsities = sorted({r["sparsity_target"] for r in pruned})
        means = sorted(r["accuracy_mean_pct"] for r in pruned)
        # Collapsed or dead runs (near 10 %) would squash the curves that compete: then the top
        # panel zooms on the upper 90 % of the means and a small panel below shows everything.
        zoom_low = means[len(means) // 10] - 2 if means else 0
        zoom = bool(means) and means[0] < zoom_low - 10
        if zoom:
            fig, (ax, ax_all) = plt.subplots(2, 1, figsize=(9, 7.5), sharex=True,
                                             gridspec_kw={"height_ratios": [3, 1]})
            axes = (ax, ax_all)
        else:
            fig, ax = plt.subplots(figsize=(9, 5.5))
            axes = (ax,)
        for i, (label, rounds, epochs) in enumerate(series):
            pts = sorted((r for r in pruned if (r["scorer"], r["rounds"], r["epochs"]) ==
                          (label, rounds, epochs)), key=lambda r: r["sparsity_target"])
            # Spread the series a little along x so their error bars do not hide each other.
            shift = 1.0 + 0.025 * (i - (len(series) - 1) / 2)
            x = [(1 - r["sparsity_target"]) * shift for r in pts]
            y = [r["accuracy_mean_pct"] for r in pts]
            err = [[r["accuracy_mean_pct"] - r["accuracy_min_pct"] for r in pts],
                   [r["accuracy_max_pct"] - r["accuracy_mean_pct"] for r in pts]]
            colour, marker = STYLE.get(label, (None, "."))
            name = f"{label} (R={rounds})" + (f", {epochs} ep" if several_recipes else "")
            for a in axes:
                a.errorbar(x, y, yerr=err, label=name, color=colour, marker=marker, markersize=5,
                           capsize=2.5, linewidth=2.4 if label.startswith("px") else 1.2,
                           zorder=3 if label.startswith("px") else 2)
        for d in (r for r in sub if r["scorer"] == DENSE):
            for a in axes:
                a.axhline(d["accuracy_mean_pct"], color="black", linestyle="--", linewidth=1,
                          label=f"dense, {d['epochs']} ep ({d['accuracy_mean_pct']:.2f} %)")
                a.axhspan(d["accuracy_min_pct"], d["accuracy_max_pct"], color="black", alpha=0.08)
        for a in axes:
            a.set_xscale("log")
            a.grid(True, alpha=0.3)
            a.set_ylabel("test accuracy (%)")
        ax.invert_xaxis()  # sparsity grows to the right (shared with the lower panel)
        bottom = axes[-1]
        bottom.set_xticks([1 - s for s in sparsities])
        bottom.set_xticklabels([f"{100 * s:g}" for s in sparsities])
        bottom.minorticks_off()
        bottom.set_xlabel("sparsity (%)  — log scale of the density 1 − sparsity")
        if zoom:
            top = max(r["accuracy_max_pct"] for r in sub)
            ax.set_ylim(zoom_low, top + 0.5)
            ax.text(0.99, 0.02, "zoomed: the lower panel shows every point", ha="right",
                    va="bottom", transform=ax.transAxes, fontsize=8, color="0.3")
            ax_all.set_ylim(0, 100)
        epochs = sorted({r["epochs"] for r in sub})
        ax.set_title(f"{NET_TITLES.get(net, net)} on Fashion-MNIST, pruned at initialization "
                     f"({'/'.join(map(str, epochs))} epochs); bars: min–max over seeds")
        ax.legend(fontsize=8, loc="lower left", ncol=2)
        fig.tight_layout()
        path = out_dir / f"pruning_{net}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def report(rows, out_dir, draw=True):
    """Writes the aggregated rows (not none) into out_dir (which exists); returns the acceptance
    lines."""
    write_csv(rows, out_dir / "pruning.csv")
    checks = acceptance(rows)
    table = markdown_tables(rows)
    table.append("Acceptance 2 (issue 6):")
    table.append("")
    table += [f"- {verdict} {text}" for verdict, text in checks]
    (out_dir / "pruning_table.md").write_text("\n".join(table) + "\n", encoding="utf-8")
    print("\n".join(table[:-len(checks) - 2]))
    for verdict, text in checks:
        print(f"{verdict} {text}")
    written = plot(rows, out_dir) if draw else []
    print(f"prune_sweep: wrote {out_dir / 'pruning.csv'}, {out_dir / 'pruning_table.md'}"
          + "".join(f", {p}" for p in written))
    return checks


def print_plan(runs):
    """--dry-run's lines before the total."""
    for net, epochs in dict.fromkeys((r.net, r.epochs) for r in runs):
        group = [r for r in runs if (r.net, r.epochs) == (net, epochs)]
        print(f"{NET_TITLES[net]}: {len(group)} runs of {epochs} epochs, "
              f"~{clock(sum(r.estimated_seconds() for r in group))} on one core")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[5:]))
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    parser.add_argument("--nets", type=csv_list, default=list(NETS), help="mlp,lenet5")
    parser.add_argument("--scorers", type=csv_list, default=list(SCORERS),
                        help="default: " + ",".join(SCORERS) + "; labels are --scorer names and "
                        "NAME-oneshot (--scorer NAME --rounds 1)")
    parser.add_argument("--sparsities", type=lambda t: csv_list(t, float), default=list(SPARSITIES))
    parser.add_argument("--seeds", type=lambda t: csv_list(t, int), default=[1, 2, 3])
    parser.add_argument("--epochs", help="N for every net, or mlp=N,lenet5=M (default: preset)")
    parser.add_argument("--rounds", help="R for every net, or mlp=R,lenet5=Q (default: preset); "
                        "*-oneshot and dense always 1")
    parser.add_argument("--no-dense", dest="dense", action="store_false",
                        help="skip the dense reference runs (same recipe, nothing pruned)")
    sweep_runs.add_run_arguments(parser, program=ROOT / "build/release/examples/prune_at_init",
                                 out_dir="default build/prune-sweep/<preset>")
    args = parser.parse_args()

    for net in args.nets:
        if net not in NETS:
            parser.error(f"--nets: unknown net '{net}' (expected {', '.join(NETS)})")
    for label in args.scorers:
        if label.removesuffix("-oneshot") not in PROGRAM_SCORERS:
            parser.error(f"--scorers: unknown scorer '{label}' (expected one of "
                         f"{', '.join(PROGRAM_SCORERS)}, or NAME-oneshot)")
    for s in args.sparsities:
        if not 0 < s < 1:
            parser.error(f"--sparsities: {s} is not in (0, 1)")
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")
    out_dir = args.out_dir or ROOT / "build/prune-sweep" / args.preset
    return sweep_runs.run_sweep(args, out_dir, prog="prune_sweep",
                                target="prune_at_init", plan=plan, print_plan=print_plan,
                                execute=execute, aggregate=lambda d: aggregate(load_runs(d)),
                                report=report, verdict=lambda c: c[0])


if __name__ == "__main__":
    sys.exit(main())
