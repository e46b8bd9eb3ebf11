#!/usr/bin/python3
"""The federated sweep of issue 8: FED3R against its peers, in accuracy, rounds and bytes.

Runs examples/federated over strategies x models x features x alphas x clients x seeds, then
writes a CSV, markdown tables and plots, and the acceptance lines of issue 8 point 4.

    scripts/fed_sweep.py --preset main -j 2          # the doc's main table (--dry-run: the plan)
    scripts/fed_sweep.py --preset map -j 2           # where FED3R's advantage holds
    scripts/fed_sweep.py --preset smoke -j 1         # a tiny end-to-end check (about a minute)
    scripts/fed_sweep.py --aggregate-only --out-dir DIR   # rebuild CSV, tables, plots from DIR/runs
    scripts/fed_sweep.py --preset main --strategies fed3r,fedavg --models head --alphas 0.5

Presets (every flag below overrides its part):
  main   public features (the LeNet-5 extractor trained on a public 10 %), dirichlet-prior with
         alpha 0.05, 0.5, 1000, 100 clients, 10 per round, seed 1. FED3R, FED3R-RF and FedNCM make
         their one pass (K/M rounds); FED3R+FT fine-tunes LeNet-5 for 100 rounds; every gradient
         strategy (fedavg, fedavgm, fedprox, scaffold, fedadam, fedyogi) trains a linear head
         (evaluated every round) and the whole LeNet-5 (every 2 rounds), 100 rounds.
  map    where FED3R's advantage holds: fed3r against fedavg and scaffold (linear heads, evaluated
         every 5 rounds), 100 and 1000 clients (10 per round; 300 and 1000 rounds), alpha 0.05,
         0.5, 1000, features public (D = 84), pixels (784) and random (--width 1024).
  smoke  a tiny version: public features, 20 clients (FED3R's pass: 2 rounds), 4 rounds for the
         others, alpha 0.05 and 1000.

Strategy labels are federated's --strategy names; the gradient ones run once per model (lenet5
trains on the images: only with --features public or pixels). fed3r+ft runs with --features public
only, as fed3r+ft/lenet5 (the program's default --ft-part whole: the public LeNet-5 with FED3R's
head, fine-tuned whole); its R rounds count FED3R's pass. A run that the program rejects (an
unknown strategy, say) is reported as failed and the sweep goes on.

Runs land in OUT_DIR/runs/<features>_<partition>_K<k>_M<m>_a<alpha>_<strategy>[.<model>]_R<rounds>
_s<seed>.json (R0: one pass), with their output in OUT_DIR/runs/logs/. A run whose JSON exists is
skipped, so an interrupted sweep resumes; one that exists with another recipe is left alone and
reported. Failed runs are reported at the end (and in OUT_DIR/failures.txt). (The runner is
scripts/sweep_runs.py, shared with scripts/prune_sweep.py.)

Aggregates, per group (features, partition, alpha, clients, per round, seed): the target is
FED3R's final accuracy in the group; each run's rounds-to-target is the first round (1-based) whose
accuracy is >= the target, its bytes-to-target the bytes up + down to the end of that round; both
are also given as a ratio to FED3R's own pass (its K/M rounds, its total bytes up + down).
OUT_DIR/federated.csv (a row per run), OUT_DIR/federated_table.md (also printed),
OUT_DIR/accuracy_rounds_<features>_K<k>.png and accuracy_bytes_<features>_K<k>.png (a panel per
alpha), and where FED3R and gradient heads share cells, OUT_DIR/advantage_map.{csv,md,png} (bytes
to target of each gradient head over FED3R's pass). Then the acceptance lines of issue 8 point 4
(--check exits 1 unless they PASS). Running needs the standard library only; the plots need
matplotlib (Debian's: /usr/bin/python3).
"""

import argparse
import csv
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sweep_runs.py, run from anywhere
import sweep_runs  # noqa: E402
from sweep_runs import clock, csv_list, read_json  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ONE_PASS = ("fed3r", "fed3r-rf", "fedncm")  # one pass over the clients, no model to choose
FINETUNE = ("fed3r+ft",)  # FED3R's pass, its head in the public LeNet-5, then fine-tuning
GRADIENT = ("fedavg", "fedavgm", "fedprox", "scaffold", "fedadam", "fedyogi")
STRATEGIES = ONE_PASS + FINETUNE + GRADIENT
MODELS = ("head", "lenet5")
IMAGE_FEATURES = ("public", "pixels")  # what --model lenet5 accepts
HEAD_WIDTHS = (84, 784, 1024)  # the widths federated has a gradient head for
PARTITIONS = ("dirichlet-prior", "dirichlet-class", "iid", "shards")
FED3R = "fed3r"

PRESETS = {
    "main": {"strategies": STRATEGIES, "models": MODELS, "features": ("public",),
             "alphas": (0.05, 0.5, 1000.0), "clients": (100,), "seeds": (1,),
             "rounds": {None: 100}, "evaluate_every": {"head": 1, "lenet5": 2}},
    "map": {"strategies": ("fed3r", "fedavg", "scaffold"), "models": ("head",),
            "features": ("public", "pixels", "random"), "alphas": (0.05, 0.5, 1000.0),
            "clients": (100, 1000), "seeds": (1,), "rounds": {100: 300, 1000: 1000, None: 300},
            "evaluate_every": {"head": 5, "lenet5": 5}},
    "smoke": {"strategies": ("fed3r", "fedncm", "fed3r+ft", "fedavg", "scaffold"),
              "models": MODELS, "features": ("public",), "alphas": (0.05, 1000.0),
              "clients": (20,), "seeds": (1,), "rounds": {None: 4},
              "evaluate_every": {"head": 1, "lenet5": 1}},
}

# The cost model behind --dry-run's estimate and the first ETA: seconds on one core of the shared
# 2-vCPU machine, fitted to a few timed runs (fed3r on public / pixels / random K = 1000, fedavg
# heads on pixels / random / public, fedavg on LeNet-5): rough, a run may take half or twice.
LOAD_SECONDS = 0.5
PUBLIC_SECONDS = 4.0  # training the public LeNet-5 extractor (5 epochs on 6 000 images)
RANDOM_SECONDS = 2.0  # mapping the 70 000 images through the random features
SECONDS_PER_FLOP = 3e-11  # FED3R's rank updates and its evaluation (Eigen GEMM)
SECONDS_PER_SOLVE_FLOP = 1e-10  # FED3R's Cholesky solve, every evaluated round
SECONDS_PER_HEAD_FLOP = 6e-11  # the gradient heads' small GEMMs
HEAD_ROUND_SECONDS = 0.005  # a gradient head's round besides its arithmetic
LENET5_TRAIN_SECONDS = 5.5e-5  # per sample and local epoch
LENET5_EVAL_SECONDS = 1.9e-5  # per test sample
RF_WIDTH = 2048  # federated's default --rf-width (FED3R-RF solves in that width)
TEST_SAMPLES = 10_000
POOL = {"public": 54_000}  # the federation's samples (public: 90 % of the training set)
POOL_DEFAULT = 60_000

# Issue 8, point 4: FED3R's accuracy should not depend on alpha (it is centralized ridge
# regression over the same samples); 1e-12 allows for nothing but the printing of the values.
SAME_ACCURACY_TOLERANCE = 1e-12


def number_name(x):
    return format(x, "g")


def feature_label(features, width):
    """'public', 'pixels', 'random1024', 'file-NAME': the features as they appear in file names."""
    if features == "random":
        return f"random{width}"
    if features.startswith("file:"):
        return "file-" + (Path(features[5:]).name or "features")
    return features


def feature_title(label, width):
    """'public (D = 84)', 'random (D = 1024)': a features label as a table or axis shows it."""
    name = "random" if label == f"random{width}" else label
    return f"{name} (D = {width})" if width else name


def feature_width(features, width):
    return {"public": 84, "pixels": 784, "random": width}.get(features)


def one_pass_rounds(clients, per_round):
    return math.ceil(clients / per_round)


class Run:
    """One invocation of examples/federated."""

    def __init__(self, strategy, model, features, width, partition, alpha, clients, per_round,
                 rounds, evaluate_every, seed):
        self.strategy, self.model = strategy, model  # model None: one-pass strategies
        self.features, self.width, self.partition = features, width, partition
        self.alpha, self.clients, self.per_round = alpha, clients, per_round
        self.rounds, self.evaluate_every, self.seed = rounds, evaluate_every, seed

    @property
    def label(self):
        return run_label(self.strategy, self.model)

    @property
    def name(self):
        what = self.strategy + (f".{self.model}" if self.model else "")
        return (f"{feature_label(self.features, self.width)}_{self.partition}_K{self.clients}"
                f"_M{self.per_round}_a{number_name(self.alpha)}_{what}_R{self.rounds}_s{self.seed}")

    def argv(self, program, out, data):
        args = [str(program), "--strategy", self.strategy, "--features", self.features]
        if self.features == "random":
            args += ["--width", str(self.width)]
        if self.model:
            args += ["--model", self.model]
        args += ["--partition", self.partition, "--alpha", repr(self.alpha),
                 "--clients", str(self.clients), "--per-round", str(self.per_round),
                 "--rounds", str(self.rounds), "--seed", str(self.seed), "--threads", "1",
                 "--evaluate-every", str(self.evaluate_every), "--out", str(out), "--quiet"]
        if data:
            args += ["--data", data]
        return args

    def planned_rounds(self):
        return self.rounds if self.rounds > 0 else (
            one_pass_rounds(self.clients, self.per_round) if self.strategy in ONE_PASS else 100)

    def estimated_seconds(self):
        seconds = LOAD_SECONDS + {"public": PUBLIC_SECONDS, "random": RANDOM_SECONDS}.get(
            self.features, 0.0)
        rounds = self.planned_rounds()
        per_client = POOL.get(self.features, POOL_DEFAULT) / self.clients
        per_round = per_client * self.per_round
        evaluations = rounds / self.evaluate_every
        d = feature_width(self.features, self.width) or 784
        if self.strategy in ONE_PASS or self.strategy in FINETUNE:
            if self.strategy == "fed3r-rf":
                d = RF_WIDTH
            fed3r_rounds = one_pass_rounds(self.clients, self.per_round)
            if self.strategy in ONE_PASS:
                fed3r_rounds = rounds
            seconds += fed3r_rounds * (SECONDS_PER_FLOP * (2 * per_round * d * d +
                                                           2 * TEST_SAMPLES * d * 10) +
                                       SECONDS_PER_SOLVE_FLOP * d ** 3 / 3)
        if self.strategy in ONE_PASS:
            return seconds
        if self.strategy in FINETUNE:
            rounds = max(0, rounds - one_pass_rounds(self.clients, self.per_round))
            evaluations = rounds / self.evaluate_every
        if self.model == "lenet5" or self.strategy in FINETUNE:
            return (seconds + rounds * per_round * LENET5_TRAIN_SECONDS +
                    evaluations * TEST_SAMPLES * LENET5_EVAL_SECONDS)
        return seconds + rounds * HEAD_ROUND_SECONDS + SECONDS_PER_HEAD_FLOP * (
            rounds * per_round * d * 60 + evaluations * TEST_SAMPLES * d * 20)


def run_label(strategy, model):
    return strategy if strategy in ONE_PASS or not model else f"{strategy}/{model}"


def keyed(text, keys, cast, what):
    """'N' (every key) or 'k=N,k2=M' -> {key: N}, None -> {}; keys None accepts any int key."""
    if text is None:
        return {}
    if "=" not in text:
        return {None: cast(text)}
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        key = key.strip()
        if keys is None:
            try:
                key = int(key)
            except ValueError:
                raise SystemExit(f"fed_sweep: {what}: '{key}' is not a number of clients") from None
        elif key not in keys:
            raise SystemExit(f"fed_sweep: {what}: unknown '{key}' (expected {', '.join(keys)})")
        out[key] = cast(value)
    return out


def plan(args):
    preset = PRESETS[args.preset]
    rounds = dict(preset["rounds"])
    override = keyed(args.rounds, None, int, "--rounds")
    if None in override:
        rounds = {None: override[None]}
    rounds.update(override)
    every = dict(preset["evaluate_every"])
    override = keyed(args.evaluate_every, MODELS, int, "--evaluate-every")
    every = {m: override.get(None, every[m]) for m in MODELS}
    every.update({k: v for k, v in override.items() if k is not None})
    strategies = args.strategies or list(preset["strategies"])
    models = args.models or list(preset["models"])
    runs = []
    for seed in args.seeds or preset["seeds"]:
        for clients in args.clients or preset["clients"]:
            r = rounds.get(clients, rounds.get(None, 100))
            for features in args.features or preset["features"]:
                for alpha in args.alphas or preset["alphas"]:
                    def add(strategy, model, n_rounds, evaluate_every):
                        runs.append(Run(strategy, model, features, args.width, args.partition,
                                        alpha, clients, args.per_round, n_rounds, evaluate_every,
                                        seed))
                    for strategy in strategies:
                        if strategy in ONE_PASS:
                            add(strategy, None, 0, 1)  # every round: acceptance 4 reads them all
                        elif strategy in FINETUNE:
                            if features == "public":  # it fine-tunes the public LeNet-5
                                add(strategy, "lenet5", r, every["lenet5"])
                        else:
                            for model in models:
                                if model == "lenet5" and features not in IMAGE_FEATURES:
                                    continue
                                add(strategy, model, r, every[model])
    return runs


def check_result(result):
    """Raises ValueError unless `result` looks like federated's JSON."""
    acc, up, down = result["accuracy"], result["bytes_up"], result["bytes_down"]
    if not (isinstance(acc, list) and isinstance(up, list) and isinstance(down, list)):
        raise ValueError("accuracy, bytes_up and bytes_down must be lists")
    if not len(acc) == len(up) == len(down):
        raise ValueError(f"accuracy, bytes_up, bytes_down have {len(acc)}, {len(up)}, "
                         f"{len(down)} rounds")
    for key in ("strategy", "features", "alpha", "clients", "per_round", "seed"):
        if key not in result:
            raise ValueError(f"no {key}")


def mismatch(run, done):
    """Why an existing result is not the planned run (None: it is)."""
    want = {"strategy": run.strategy, "features": run.features, "partition": run.partition,
            "alpha": run.alpha, "clients": run.clients, "per_round": run.per_round,
            "seed": run.seed}
    if run.model:
        want["model"] = run.model
    diff = [f"{k} {done.get(k)!r} (planned {v!r})" for k, v in want.items() if done.get(k) != v]
    if run.rounds > 0 and done.get("rounds") != run.rounds:
        diff.append(f"rounds {done.get('rounds')!r} (planned {run.rounds})")
    return ", ".join(diff) or None


def ran_another_recipe(run, result):
    why = mismatch(run, result)
    return f"the program ran another recipe: {why}" if why else None


def execute(runs, args, runs_dir):
    """Runs what is missing, `args.jobs` at a time; returns the failures as (run, reason)."""
    return sweep_runs.execute(runs, runs_dir, program=args.program, data=args.data,
                              jobs=args.jobs, prog="fed_sweep", mismatch=mismatch,
                              check_result=check_result, accuracy=final_accuracy,
                              verify=ran_another_recipe, last_log_line=True)


# ---------------------------------------------------------------------------------- aggregation

def number(x):
    """x as a float, or None (null, NaN, a string the JSON writer used for NaN)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return None if math.isnan(x) else float(x)


def final_accuracy(result):
    """The last evaluated accuracy (the program's final_accuracy when no round was evaluated)."""
    for a in reversed(result["accuracy"]):
        if number(a) is not None:
            return float(a)
    return number(result.get("final_accuracy"))


def to_target(accuracy, bytes_up, bytes_down, target):
    """(rounds, bytes) to the first round (1-based) whose accuracy is >= target; (None, None)
    when no evaluated round reaches it. Rounds not evaluated (null) do not count."""
    if target is None:
        return None, None
    for i, a in enumerate(accuracy):
        a = number(a)
        if a is not None and a >= target:
            return i + 1, int(bytes_up[i]) + int(bytes_down[i])
    return None, None


def total_bytes(result):
    if not result["accuracy"]:
        return 0
    return int(result["bytes_up"][-1]) + int(result["bytes_down"][-1])


def load_runs(runs_dir):
    """Every run JSON in runs_dir (not partial/), with its file name under '_file'."""
    runs = []
    for path in sorted(runs_dir.glob("*.json")):
        try:
            result = read_json(path)
            check_result(result)
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"fed_sweep: skipping {path}: {e}", file=sys.stderr)
            continue
        result["_file"] = path.name
        runs.append(result)
    return runs


def group_key(r):
    """Runs that FED3R's final accuracy is the target of: same data, split and sampling."""
    return (r["_features"], r.get("partition", ""), float(r["alpha"]), int(r["clients"]),
            int(r["per_round"]), int(r["seed"]))


def label_order(label):
    strategy, _, model = label.partition("/")
    return (STRATEGIES.index(strategy) if strategy in STRATEGIES else len(STRATEGIES),
            MODELS.index(model) if model in MODELS else -1, label)


def aggregate(results):
    """A row per run, with its to-target numbers against FED3R of its group."""
    for r in results:
        model = r.get("model") if r["strategy"] not in ONE_PASS else None
        r["_label"] = run_label(r["strategy"], model)
        r["_model"] = model or ""
        # lenet5 runs hold images (width 784): their features are named by the flag alone.
        r["_features"] = feature_label(r["features"], r.get("feature_width"))
    fed3r = {}
    for r in results:
        if r["strategy"] == FED3R and group_key(r) not in fed3r:
            fed3r[group_key(r)] = r
    rows = []
    for r in results:
        ref = fed3r.get(group_key(r))
        target = final_accuracy(ref) if ref else None
        ref_rounds = len(ref["accuracy"]) if ref else None
        ref_bytes = total_bytes(ref) if ref else None
        rounds, nbytes = to_target(r["accuracy"], r["bytes_up"], r["bytes_down"], target)
        width = r.get("feature_width") if r["_model"] != "lenet5" else None
        if r["_model"] == "lenet5" and ref:
            width = ref.get("feature_width")
        rows.append({
            "features": r["_features"], "feature_width": width,
            "partition": r.get("partition", ""), "alpha": float(r["alpha"]),
            "clients": int(r["clients"]), "per_round": int(r["per_round"]), "seed": int(r["seed"]),
            "strategy": r["strategy"], "model": r["_model"], "label": r["_label"],
            "rounds": len(r["accuracy"]), "final_accuracy": final_accuracy(r),
            "public_extractor_accuracy": number(r.get("public_extractor_accuracy")),
            "target": target, "reached": rounds is not None if target is not None else None,
            "rounds_to_target": rounds, "bytes_to_target": nbytes,
            "fed3r_rounds": ref_rounds, "fed3r_bytes": ref_bytes,
            "rounds_ratio": rounds / ref_rounds if rounds is not None and ref_rounds else None,
            "bytes_ratio": nbytes / ref_bytes if nbytes is not None and ref_bytes else None,
            "total_bytes": total_bytes(r), "rejected_updates": r.get("rejected_updates"),
            "seconds": number(r.get("seconds")), "file": r["_file"],
            "_accuracy": r["accuracy"], "_bytes_up": r["bytes_up"], "_bytes_down": r["bytes_down"],
        })
    rows.sort(key=lambda x: (x["features"], x["partition"], x["clients"], x["per_round"],
                             x["seed"], label_order(x["label"]), x["alpha"], x["file"]))
    return rows


CSV_FIELDS = ("features", "feature_width", "partition", "alpha", "clients", "per_round", "seed",
              "strategy", "model", "label", "rounds", "final_accuracy",
              "public_extractor_accuracy", "target", "reached", "rounds_to_target",
              "bytes_to_target", "fed3r_rounds", "fed3r_bytes", "rounds_ratio", "bytes_ratio",
              "total_bytes", "rejected_updates", "seconds", "file")


def cell(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.10g}"
    return v


def write_csv(rows, path, fields):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for row in rows:
            w.writerow([cell(row.get(k)) for k in fields])


def megabytes(n):
    return f"{n / 1e6:.3g}"


def ratio(x):
    return f"{x:.3g}×"


def table_key(row):
    return (row["features"], row["partition"], row["clients"], row["per_round"], row["seed"])


def describe(key, width=None):
    features, partition, clients, per_round, seed = key
    what = feature_title(features, width).replace(" (", " features (", 1) if width else \
        f"{features} features"
    return f"{what}, {partition}, K = {clients}, M = {per_round}, seed {seed}"


def markdown_tables(rows):
    """Per (features, partition, K, M, seed): rows strategy (+ model), columns per alpha."""
    out = []
    for key in dict.fromkeys(table_key(r) for r in rows):
        sub = [r for r in rows if table_key(r) == key]
        alphas = sorted({r["alpha"] for r in sub})
        refs = {r["alpha"]: r for r in sub if r["strategy"] == FED3R}
        width = next((r["feature_width"] for r in sub if r["feature_width"]), None)
        out.append(f"**{describe(key, width)}** — per α: final test accuracy (%), rounds and "
                   "MB (up + down) until the accuracy reaches FED3R's final one, and that many "
                   "bytes over FED3R's one pass (× FED3R)")
        out.append("")
        targets = ", ".join(f"α = {number_name(a)}: " +
                            (f"{100 * refs[a]['final_accuracy']:.2f} % after {refs[a]['rounds']} "
                             f"rounds, {megabytes(refs[a]['total_bytes'])} MB"
                             if a in refs and refs[a]["final_accuracy"] is not None else "no FED3R run")
                            for a in alphas)
        out.append(f"Targets (FED3R): {targets}.")
        public = sorted({r["public_extractor_accuracy"] for r in sub
                         if r["public_extractor_accuracy"] is not None})
        if public:
            out.append(f"Public extractor (LeNet-5 on the public 10 %): "
                       f"{', '.join(f'{100 * p:.2f}' for p in public)} % test accuracy.")
        out.append("")
        head = ["strategy"]
        for a in alphas:
            head += [f"α={number_name(a)} acc", "rounds", "MB", "× FED3R"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|---|" + "---:|" * (4 * len(alphas)))
        for label in sorted(dict.fromkeys(r["label"] for r in sub), key=label_order):
            cells = [label]
            for a in alphas:
                r = next((r for r in sub if r["label"] == label and r["alpha"] == a), None)
                cells += table_cells(r)
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return out


def table_cells(r):
    if r is None:
        return ["—"] * 4
    acc = "—" if r["final_accuracy"] is None else f"{100 * r['final_accuracy']:.2f}"
    if r["target"] is None:
        return [acc, "no target", "", ""]
    if r["rounds_to_target"] is None:
        # Not reached: the bytes it spent are a lower bound of its bytes to target.
        bound = (f"> {ratio(r['total_bytes'] / r['fed3r_bytes'])}" if r["fed3r_bytes"] else "")
        return [acc, f"not within {r['rounds']}", f"> {megabytes(r['total_bytes'])}", bound]
    return [acc, str(r["rounds_to_target"]), megabytes(r["bytes_to_target"]),
            ratio(r["bytes_ratio"]) if r["bytes_ratio"] is not None else ""]


# --------------------------------------------------------------------------------- advantage map

MAP_FIELDS = ("features", "feature_width", "partition", "alpha", "clients", "per_round", "seed",
              "strategy", "rounds", "fed3r_final_accuracy", "final_accuracy", "reached",
              "rounds_to_target", "fed3r_rounds", "rounds_ratio", "bytes_to_target",
              "fed3r_bytes", "bytes_ratio", "bytes_ratio_lower_bound")


def advantage_cells(rows):
    """For every gradient head run beside a FED3R run: its bytes and rounds to FED3R's accuracy
    over FED3R's pass (a lower bound from all its bytes when it does not get there)."""
    cells = []
    for r in rows:
        if r["strategy"] not in GRADIENT or r["model"] != "head" or r["target"] is None:
            continue
        cells.append({
            "features": r["features"], "feature_width": r["feature_width"],
            "partition": r["partition"], "alpha": r["alpha"], "clients": r["clients"],
            "per_round": r["per_round"], "seed": r["seed"], "strategy": r["strategy"],
            "rounds": r["rounds"], "fed3r_final_accuracy": r["target"],
            "final_accuracy": r["final_accuracy"], "reached": r["reached"],
            "rounds_to_target": r["rounds_to_target"], "fed3r_rounds": r["fed3r_rounds"],
            "rounds_ratio": r["rounds_ratio"], "bytes_to_target": r["bytes_to_target"],
            "fed3r_bytes": r["fed3r_bytes"], "bytes_ratio": r["bytes_ratio"],
            "bytes_ratio_lower_bound": (None if r["reached"] or not r["fed3r_bytes"]
                                        else r["total_bytes"] / r["fed3r_bytes"]),
        })
    return cells


def map_key(c):
    return (c["strategy"], c["partition"], c["clients"], c["per_round"], c["seed"])


def features_order(cells):
    order = {"public": 0, "pixels": 1}
    return sorted(dict.fromkeys((c["features"], c["feature_width"]) for c in cells),
                  key=lambda f: (order.get(f[0], 2), f[1] or 0, f[0]))


def map_cell_text(c):
    if c is None:
        return "—"
    if c["reached"]:
        return (f"{ratio(c['bytes_ratio'])} bytes, {ratio(c['rounds_ratio'])} rounds "
                f"({c['rounds_to_target']} of {c['rounds']})")
    bound = c["bytes_ratio_lower_bound"]
    return f"not within {c['rounds']}" + (f" (> {ratio(bound)} bytes)" if bound else "")


def advantage_markdown(cells):
    out = ["Bytes (up + down) a gradient-trained linear head needs to reach FED3R's final "
           "accuracy, over the bytes of FED3R's one pass; rounds likewise over FED3R's K/M.", ""]
    for key in sorted(dict.fromkeys(map_key(c) for c in cells),
                      key=lambda k: (STRATEGIES.index(k[0]) if k[0] in STRATEGIES else 99,) + k):
        strategy, partition, clients, per_round, seed = key
        sub = [c for c in cells if map_key(c) == key]
        alphas = sorted({c["alpha"] for c in sub})
        out.append(f"**{strategy} (head) / FED3R, {partition}, K = {clients}, M = {per_round}, "
                   f"seed {seed}**")
        out.append("")
        out.append("| features | " + " | ".join(f"α = {number_name(a)}" for a in alphas) + " |")
        out.append("|---|" + "---|" * len(alphas))
        for features, width in features_order(sub):
            texts = [map_cell_text(next((c for c in sub if (c["features"], c["feature_width"],
                                                             c["alpha"]) == (features, width, a)),
                                        None)) for a in alphas]
            out.append(f"| {feature_title(features, width)} | " + " | ".join(texts) + " |")
        out.append("")
    return out


def plot_advantage(cells, path, plt):
    import matplotlib.colors as mcolors
    from matplotlib.patches import Rectangle
    strategies = sorted({c["strategy"] for c in cells},
                        key=lambda s: STRATEGIES.index(s) if s in STRATEGIES else 99)
    ks = sorted({(c["clients"], c["per_round"]) for c in cells})
    features = features_order(cells)
    alphas = sorted({c["alpha"] for c in cells})
    ratios = [c["bytes_ratio"] for c in cells if c["bytes_ratio"]]
    ratios += [c["bytes_ratio_lower_bound"] for c in cells if c["bytes_ratio_lower_bound"]]
    # Symmetric about 1 on a log scale: green where FED3R needs fewer bytes (ratio > 1).
    span = max([1.5] + [max(x, 1 / x) for x in ratios])
    norm = mcolors.LogNorm(vmin=1 / span, vmax=span)
    cmap = plt.get_cmap("RdYlGn")
    fig, axes = plt.subplots(len(strategies), len(ks), squeeze=False, constrained_layout=True,
                             figsize=(2.0 * len(alphas) * len(ks) + 3.0,
                                      1.0 * len(features) * len(strategies) + 1.6))
    image = None
    for i, strategy in enumerate(strategies):
        for j, (clients, per_round) in enumerate(ks):
            ax = axes[i][j]
            grid = [[math.nan] * len(alphas) for _ in features]
            for y, f in enumerate(features):
                for x, a in enumerate(alphas):
                    c = next((c for c in cells if (c["strategy"], c["clients"], c["per_round"],
                                                   c["features"], c["feature_width"], c["alpha"]) ==
                              (strategy, clients, per_round, f[0], f[1], a)), None)
                    if c is None:
                        ax.text(x, y, "no run", ha="center", va="center", fontsize=8, color="0.4")
                        continue
                    if c["reached"]:
                        grid[y][x] = c["bytes_ratio"]
                        text = f"{c['bytes_ratio']:.3g}×\n{c['rounds_to_target']} rounds"
                    else:
                        ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor="0.85",
                                               edgecolor="0.3", hatch="//", linewidth=0))
                        bound = c["bytes_ratio_lower_bound"]
                        text = (f"not reached\nin {c['rounds']}" +
                                (f"\n(> {bound:.3g}×)" if bound else ""))
                    ax.text(x, y, text, ha="center", va="center", fontsize=8,
                            bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0,
                                  "boxstyle": "round,pad=0.2"})
            image = ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto")
            ax.set_xticks(range(len(alphas)))
            ax.set_xticklabels([f"α={number_name(a)}" for a in alphas])
            ax.set_yticks(range(len(features)))
            ax.set_yticklabels([feature_title(f, w) for f, w in features])
            ax.set_title(f"{strategy} head / FED3R, K={clients}, M={per_round}", fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.9,
                     label="bytes to FED3R's accuracy / FED3R's bytes")
    fig.suptitle("Where FED3R's advantage holds: bytes (up + down) a gradient head needs to reach "
                 "FED3R's accuracy, over FED3R's one pass\n(> 1: FED3R is cheaper; hatched: never "
                 "reached within the rounds run, > its bytes so far)", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------------ acceptance

def acceptance(rows):
    """Issue 8, point 4: (text, PASS|FAIL|N/A, detail) lines."""
    lines = []
    what = "FED3R reaches its final accuracy after one pass (K/M rounds)"
    refs = [r for r in rows if r["strategy"] == FED3R]
    if not refs:
        lines.append((what, "N/A", "no FED3R runs"))
    else:
        bad = []
        for r in refs:
            pass_rounds = one_pass_rounds(r["clients"], r["per_round"])
            last = number(r["_accuracy"][-1]) if r["_accuracy"] else None
            if r["rounds"] != pass_rounds:
                bad.append(f"{r['file']}: {r['rounds']} rounds, one pass is {pass_rounds}")
            elif last is None or last != r["final_accuracy"]:
                bad.append(f"{r['file']}: the last round's accuracy {last} is not its final")
        passes = sorted({(r["clients"], r["per_round"]) for r in refs})
        detail = (f"{len(refs) - len(bad)} of {len(refs)} runs; " +
                  ", ".join(f"K={k}, M={m}: {one_pass_rounds(k, m)} rounds" for k, m in passes))
        if bad:
            detail += "; " + "; ".join(bad[:3]) + (" ..." if len(bad) > 3 else "")
        lines.append((what, "FAIL" if bad else "PASS", detail))

    what = "FED3R's accuracy is the same for every α"
    groups = {}
    for r in refs:
        key = (r["features"], r["partition"], r["clients"], r["per_round"], r["seed"])
        if r["final_accuracy"] is not None:
            groups.setdefault(key, {})[r["alpha"]] = r["final_accuracy"]
    groups = {k: v for k, v in groups.items() if len(v) > 1}
    if not groups:
        lines.append((what, "N/A", "no two α with the same features, partition, K, M and seed"))
    else:
        spreads = {k: max(v.values()) - min(v.values()) for k, v in groups.items()}
        worst = max(spreads, key=spreads.get)
        verdict = "PASS" if spreads[worst] <= SAME_ACCURACY_TOLERANCE else "FAIL"
        parts = []
        for k, v in groups.items():
            accs = ", ".join(f"α={number_name(a)}: {100 * x:.4f} %" for a, x in sorted(v.items()))
            parts.append(f"{k[0]} K={k[2]} {k[1]}: spread {spreads[k]:.3g} ({accs})")
        lines.append((what, verdict, f"spread {spreads[worst]:.3g}, tolerance "
                      f"{SAME_ACCURACY_TOLERANCE:g}; " + "; ".join(parts)))
    return lines


def acceptance_text(line):
    what, verdict, detail = line
    return f"{what}: {verdict} ({detail})"


# ------------------------------------------------------------------------------------- plots

STYLE = {  # strategy -> colour; the model picks the line style
    "fed3r": "tab:red", "fed3r-rf": "tab:orange", "fedncm": "tab:pink", "fed3r+ft": "darkred",
    "fedavg": "tab:blue", "fedavgm": "tab:cyan", "fedprox": "tab:green", "scaffold": "tab:purple",
    "fedadam": "tab:brown", "fedyogi": "tab:olive",
}


def load_matplotlib():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("fed_sweep: matplotlib not found, no plots (apt-get install python3-matplotlib, "
              "and run /usr/bin/python3)", file=sys.stderr)
        return None
    return plt


def plot_curves(rows, out_dir, plt):
    """accuracy against rounds and against bytes, a panel per alpha, per (features, K)."""
    written = []
    for features, clients in dict.fromkeys((r["features"], r["clients"]) for r in rows):
        sub = [r for r in rows if (r["features"], r["clients"]) == (features, clients)]
        alphas = sorted({r["alpha"] for r in sub})
        several = len({(r["partition"], r["per_round"], r["seed"]) for r in sub}) > 1
        for x_axis in ("rounds", "bytes"):
            fig, axes = plt.subplots(1, len(alphas), squeeze=False, sharey=True,
                                     figsize=(5.2 * len(alphas), 5.4))
            for ax, alpha in zip(axes[0], alphas):
                for r in (r for r in sub if r["alpha"] == alpha):
                    pts = [(i, number(a)) for i, a in enumerate(r["_accuracy"])
                           if number(a) is not None]
                    if not pts:
                        continue
                    if x_axis == "rounds":
                        xs = [i + 1 for i, _ in pts]
                    else:
                        xs = [int(r["_bytes_up"][i]) + int(r["_bytes_down"][i]) for i, _ in pts]
                    ys = [100 * a for _, a in pts]
                    name = r["label"] + (f" ({r['partition']}, M={r['per_round']}, s{r['seed']})"
                                         if several else "")
                    one_pass = r["strategy"] in ONE_PASS
                    ax.plot(xs, ys, label=name, color=STYLE.get(r["strategy"]),
                            linestyle="--" if r["model"] == "lenet5" else "-",
                            linewidth=2.2 if r["strategy"] == FED3R else 1.2,
                            marker="o" if one_pass or len(xs) < 12 else None, markersize=3,
                            zorder=3 if r["strategy"] == FED3R else 2)
                for ref in (r for r in sub if r["alpha"] == alpha and r["strategy"] == FED3R):
                    if ref["final_accuracy"] is not None:
                        ax.axhline(100 * ref["final_accuracy"], color="tab:red", linestyle=":",
                                   linewidth=1)
                if x_axis == "bytes":
                    ax.set_xscale("log")
                    ax.set_xlabel("bytes up + down, cumulative (log)")
                else:
                    ax.set_xlabel("round")
                ax.set_title(f"α = {number_name(alpha)}")
                ax.grid(True, alpha=0.3)
            axes[0][0].set_ylabel("test accuracy (%)")
            handles, labels = axes[0][0].get_legend_handles_labels()
            for ax in axes[0][1:]:  # every label once, whichever panel has it
                for h, lab in zip(*ax.get_legend_handles_labels()):
                    if lab not in labels:
                        handles.append(h)
                        labels.append(lab)
            ncol = min(len(labels), 6) or 1
            legend_rows = math.ceil(len(labels) / ncol)
            fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8)
            fig.suptitle(f"Fashion-MNIST, {features} features, K = {clients}: accuracy against "
                         f"{'rounds' if x_axis == 'rounds' else 'communication'} (dotted: FED3R's "
                         "final accuracy; dashed lines: LeNet-5)", fontsize=10)
            fig.tight_layout(rect=(0, 0.045 * legend_rows + 0.02, 1, 1))
            path = out_dir / f"accuracy_{x_axis}_{features}_K{clients}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
    return written


# ------------------------------------------------------------------------------------- report

def report(rows, out_dir, draw=True):
    """Writes the aggregated rows (not none) into out_dir (which exists); returns the acceptance
    lines."""
    written = [out_dir / "federated.csv", out_dir / "federated_table.md"]
    write_csv(rows, written[0], CSV_FIELDS)
    checks = acceptance(rows)
    table = markdown_tables(rows)
    table += ["Acceptance (issue 8, point 4):", ""] + [f"- {acceptance_text(c)}" for c in checks]
    written[1].write_text("\n".join(table) + "\n", encoding="utf-8")
    print("\n".join(table[:-len(checks) - 2]))

    cells = advantage_cells(rows)
    plt = load_matplotlib() if draw else None
    if cells:
        write_csv(cells, out_dir / "advantage_map.csv", MAP_FIELDS)
        md = advantage_markdown(cells)
        (out_dir / "advantage_map.md").write_text("\n".join(md) + "\n", encoding="utf-8")
        written += [out_dir / "advantage_map.csv", out_dir / "advantage_map.md"]
        if plt:
            plot_advantage(cells, out_dir / "advantage_map.png", plt)
            written.append(out_dir / "advantage_map.png")
    if plt:
        written += plot_curves(rows, out_dir, plt)
    for c in checks:
        print(acceptance_text(c))
    print("fed_sweep: wrote " + ", ".join(str(p) for p in written))
    return checks


def print_plan(runs):
    """--dry-run's lines before the total."""
    for run in runs:
        print(f"{run.name}  ~{run.estimated_seconds():.0f} s")
    for label in sorted(dict.fromkeys(r.label for r in runs), key=label_order):
        group = [r for r in runs if r.label == label]
        print(f"{label}: {len(group)} runs, ~{clock(sum(r.estimated_seconds() for r in group))}"
              " on one core")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--preset", choices=sorted(PRESETS), default="main")
    parser.add_argument("--strategies", type=csv_list, help=",".join(STRATEGIES))
    parser.add_argument("--models", type=csv_list, help="head,lenet5 (for the gradient strategies)")
    parser.add_argument("--features", type=csv_list, help="public,pixels,random,file:DIR")
    parser.add_argument("--alphas", type=lambda t: csv_list(t, float))
    parser.add_argument("--clients", type=lambda t: csv_list(t, int))
    parser.add_argument("--per-round", type=int, default=10, help="clients per round (default 10)")
    parser.add_argument("--partition", choices=PARTITIONS, default="dirichlet-prior")
    parser.add_argument("--width", type=int, default=1024,
                        help="width of --features random (default 1024; heads: 84, 784, 1024)")
    parser.add_argument("--rounds", help="R of the gradient strategies and fed3r+ft (its pass "
                        "included), or per K: 100=300,1000=1000 (default: preset); fed3r, "
                        "fed3r-rf, fedncm: one pass")
    parser.add_argument("--evaluate-every", help="N, or head=N,lenet5=M (default: preset)")
    parser.add_argument("--seeds", type=lambda t: csv_list(t, int))
    sweep_runs.add_run_arguments(parser, program=ROOT / "build/release/examples/federated",
                                 out_dir="default build/fed-sweep/<preset>", short_jobs=True)
    args = parser.parse_args(argv)

    # Unknown strategies are the program's to reject (fed3r+ft may be newer than this script).
    for model in args.models or ():
        if model not in MODELS:
            parser.error(f"--models: unknown model '{model}' (expected {', '.join(MODELS)})")
    for features in args.features or ():
        if features not in ("public", "pixels", "random") and not features.startswith("file:"):
            parser.error(f"--features: '{features}' is not public, pixels, random or file:DIR")
    for alpha in args.alphas or ():
        if not alpha > 0:
            parser.error(f"--alphas: {alpha} is not > 0")
    if args.jobs < 1 or args.per_round < 1 or args.width < 1:
        parser.error("--jobs, --per-round and --width must be >= 1")
    out_dir = args.out_dir or ROOT / "build/fed-sweep" / args.preset
    return sweep_runs.run_sweep(args, out_dir, prog="fed_sweep",
                                target="federated", plan=plan, print_plan=print_plan,
                                execute=execute, aggregate=lambda d: aggregate(load_runs(d)),
                                report=report, verdict=lambda c: c[1])


if __name__ == "__main__":
    sys.exit(main())
