#!/usr/bin/python3
"""Tests scripts/prune_sweep.py without training anything:

    /usr/bin/python3 scripts/test_prune_sweep.py

1. aggregation: hand-written run JSONs (made-up accuracies, in a temporary directory only) through
   --aggregate-only; checks the CSV, the markdown table and the acceptance lines, passing and
   failing;
2. the runner: a stub program in place of prune_at_init (it echoes its flags into the JSON);
   checks file names, the rounds of grasp-oneshot and dense, resuming, a failing run, and a run
   left alone because it exists with another recipe.
Exits 1 on the first failed check. Standard library only (the plots are skipped with --no-plot,
and drawn once when matplotlib is there).
"""

import csv
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

SWEEP = Path(__file__).resolve().parent / "prune_sweep.py"


def fake_run(runs, net, label, sparsity, seed, accuracy, epochs=10, rounds=100, collapse=False):
    scorer = "random" if label == "dense" else label.removesuffix("-oneshot")
    name = f"{net}_dense_{seed}" if label == "dense" else f"{net}_{label}_{sparsity:g}_{seed}"
    result = {
        "net": net, "scorer": scorer, "seed": seed,
        "sparsity_target": 1e-9 if label == "dense" else sparsity,
        "sparsity_achieved": 0.0 if label == "dense" else sparsity + 1e-5,
        "rounds": rounds, "scope": "global", "per_class": 10,
        "per_layer_density": [], "layer_collapse": collapse, "test_accuracy": accuracy,
        "score_seconds": 0.5, "epochs": epochs, "train_seconds": 13.0,
        "history": [{"epoch": epochs, "train_loss": 0.3, "test_accuracy": accuracy}],
    }
    (runs / f"{name}.json").write_text(json.dumps(result), encoding="utf-8")


def sweep(*args):
    p = subprocess.run([sys.executable, str(SWEEP), *map(str, args)], capture_output=True,
                       text=True, check=False)
    return p.returncode, p.stdout, p.stderr


FAILED = []


def check(condition, what, detail=""):
    if not condition:
        FAILED.append(what)
        print(f"FAIL {what}\n{textwrap.indent(detail, '    ')}")
    else:
        print(f"ok   {what}")


def read_csv(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def row(rows, scorer, sparsity, net="mlp"):
    found = [r for r in rows if r["net"] == net and r["scorer"] == scorer and
             float(r["sparsity_target"]) == sparsity]
    assert len(found) == 1, (scorer, sparsity, found)
    return found[0]


def test_aggregation(tmp, passing):
    out = tmp / ("pass" if passing else "fail")
    runs = out / "runs"
    runs.mkdir(parents=True)
    # px at 99 %: 0.80, 0.81, 0.82 (mean 81). Passing: random 0.70-0.74, magnitude 0.76-0.78;
    # failing: magnitude 0.76, 0.78, 0.83 (mean 79, spread 7 > margin 2).
    for seed, acc in zip((1, 2, 3), (0.80, 0.81, 0.82)):
        fake_run(runs, "mlp", "px", 0.99, seed, acc)
    for seed, acc in zip((1, 2, 3), (0.70, 0.72, 0.74)):
        fake_run(runs, "mlp", "random", 0.99, seed, acc)
    for seed, acc in zip((1, 2, 3), (0.76, 0.77, 0.78) if passing else (0.76, 0.78, 0.83)):
        fake_run(runs, "mlp", "magnitude", 0.99, seed, acc)
    # 98 %: px worst 0.84 vs random best 0.83 (pass) or 0.85 (fail).
    for seed, acc in zip((1, 2, 3), (0.84, 0.86, 0.85)):
        fake_run(runs, "mlp", "px", 0.98, seed, acc)
    for seed, acc in zip((1, 2, 3), (0.80, 0.83 if passing else 0.85, 0.81)):
        fake_run(runs, "mlp", "random", 0.98, seed, acc)
    # GraSP iterated dies (chance, no collapse), one-shot does not; synflow collapses in one seed.
    for seed in (1, 2, 3):
        fake_run(runs, "mlp", "grasp", 0.99, seed, 0.10)
        fake_run(runs, "mlp", "grasp-oneshot", 0.99, seed, 0.75, rounds=1)
        fake_run(runs, "mlp", "synflow", 0.99, seed, 0.10 if seed == 1 else 0.79,
                 collapse=seed == 1)
        fake_run(runs, "mlp", "dense", 0, seed, 0.89 + 0.001 * seed, rounds=1)
        fake_run(runs, "lenet5", "px-consistent", 0.9, seed, 0.85, epochs=2)
    # Same cell under another recipe: a row of its own, not mixed into the 10-epoch one.
    fake_run(runs, "mlp", "px", 0.95, 1, 0.50, epochs=3)
    (runs / "mlp_px_0.5_1.json").write_text("{not json", encoding="utf-8")  # skipped with a warning

    rc, stdout, stderr = sweep("--aggregate-only", "--out-dir", out, "--no-plot", "--check")
    detail = stdout + stderr
    check(rc == (0 if passing else 1), f"--check exit status ({'pass' if passing else 'fail'})", detail)
    rows = read_csv(out / "pruning.csv")
    px = row([r for r in rows if r["epochs"] == "10"], "px", 0.99)
    check(abs(float(px["accuracy_mean_pct"]) - 81.0) < 1e-9, "CSV mean in percent", str(px))
    check(abs(float(px["accuracy_std_pct"]) - 1.0) < 1e-9, "CSV std over seeds (n - 1)", str(px))
    check((px["accuracy_min_pct"], px["accuracy_max_pct"], px["n_seeds"], px["seeds"]) ==
          ("80", "82", "3", "1 2 3"), "CSV min, max, seeds", str(px))
    check(px["rounds"] == "100" and px["epochs"] == "10", "CSV recipe columns", str(px))
    check(abs(float(px["sparsity_achieved_mean"]) - 0.99001) < 1e-9, "CSV achieved sparsity", str(px))
    short = [r for r in rows if r["scorer"] == "px" and r["epochs"] == "3"]
    check(len(short) == 1 and short[0]["n_seeds"] == "1" and short[0]["accuracy_std_pct"] == "",
          "another recipe is a row of its own; one seed has no std", str(short))
    check(row(rows, "grasp-oneshot", 0.99)["rounds"] == "1", "grasp-oneshot keeps its label, R=1")
    check(row(rows, "synflow", 0.99)["layer_collapse"] == "1", "layer collapse counted")
    check(row(rows, "dense", 0.0)["n_seeds"] == "3", "dense row at sparsity 0")
    check(row(rows, "px-consistent", 0.9, net="lenet5")["epochs"] == "2", "lenet5 rows")
    check("mlp_px_0.5_1.json" in stderr, "an unreadable run is reported and skipped", stderr)

    table = (out / "pruning_table.md").read_text(encoding="utf-8")
    check("| px | 100 | **85.00** ± 1.00 | **81.00** ± 1.00 |" in table,
          "table row: mean ± std, best mean in bold", table)
    check("| grasp | 100 | — | 10.00 ± 0.00 ‡ |" in table, "table marks chance level (‡)", table)
    check("†1/3" in table, "table marks layer collapse (†k/n)", table)
    check("| dense (no pruning) | — | 89.20 ± 0.10 (all sparsities) |" in table, "table dense row",
          table)
    check("**LeNet-5, 2 epochs**" in table and "**LeNet-300-100, 3 epochs**" in table,
          "one table per net and epoch count", table)
    check(table.split("| px |")[0] in stdout, "table printed to stdout", stdout)

    expected = {
        True: ["PASS LeNet-300-100 99 %: px mean beats random mean",
               "PASS LeNet-300-100 99 %: px mean beats magnitude mean",
               "PASS LeNet-300-100 98 %: px worst seed beats random best seed: px min 84.00 vs "
               "random max 83.00"],
        False: ["PASS LeNet-300-100 99 %: px mean beats random mean",
                "FAIL LeNet-300-100 99 %: px mean beats magnitude mean by more than magnitude's "
                "seed spread: px 81.00 (spread 2.00) vs magnitude 79.00, margin +2.00 vs spread 7.00",
                "FAIL LeNet-300-100 98 %: px worst seed beats random best seed: px min 84.00 vs "
                "random max 85.00"],
    }[passing]
    lines = stdout.splitlines()
    for text in expected:
        check(any(line.startswith(text) for line in lines), f"acceptance line: {text[:60]}...",
              stdout)
        check(text.split(":")[0] in table, "acceptance line in pruning_table.md", table)


def test_missing_runs(tmp):
    out = tmp / "missing"
    runs = out / "runs"
    runs.mkdir(parents=True)
    for seed in (1, 2):  # two seeds only, and no magnitude
        fake_run(runs, "mlp", "px", 0.99, seed, 0.8)
        fake_run(runs, "mlp", "random", 0.99, seed, 0.7)
    rc, stdout, stderr = sweep("--aggregate-only", "--out-dir", out, "--no-plot", "--check")
    check(rc == 1, "--check fails when the acceptance runs are missing", stdout + stderr)
    check("N/A LeNet-300-100 99 %: px mean beats random mean by more than random's seed spread "
          "(px has 2 seeds, needs 3)" in stdout, "N/A names too few seeds", stdout)
    check("98 %: px worst seed beats random best seed (no px runs" in stdout,
          "N/A names missing runs", stdout)


STUB = r'''#!/usr/bin/python3
# A stand-in for prune_at_init: writes its flags back as the JSON the real program writes.
import json, sys
a = dict(zip(sys.argv[1::2], sys.argv[2::2]))
if a["--scorer"] == "snip" and a["--seed"] == "2":
    sys.exit("stub: failing on purpose")
s = float(a["--sparsity"])
json.dump({"net": a["--net"], "scorer": a["--scorer"], "seed": int(a["--seed"]),
           "sparsity_target": s, "sparsity_achieved": 0.0 if s < 1e-6 else s,
           "rounds": int(a["--rounds"]), "scope": "global", "per_class": 10,
           "per_layer_density": [], "layer_collapse": False, "test_accuracy": 0.5,
           "score_seconds": 0.0, "epochs": int(a["--epochs"]), "train_seconds": 0.0,
           "history": []}, open(a["--out"], "w"))
'''


def test_runner(tmp):
    stub = tmp / "stub_prune_at_init"
    stub.write_text(STUB, encoding="utf-8")
    stub.chmod(0o755)
    out = tmp / "runner"
    args = ["--program", stub, "--out-dir", out, "--nets", "mlp,lenet5",
            "--scorers", "px,px-consistent,grasp,grasp-oneshot,snip", "--sparsities", "0.9,0.995",
            "--seeds", "1,2", "--epochs", "mlp=3,lenet5=1", "--rounds", "7", "--no-plot"]
    rc, stdout, stderr = sweep(*args)
    runs = out / "runs"
    names = sorted(p.name for p in runs.glob("*.json"))
    # mlp: 4 scorers (no px-consistent) x 2 x 2 + 2 dense; lenet5: 5 x 2 x 2 + 2 dense; snip seed 2
    # fails on both nets at both sparsities.
    check(rc == 1, "a failed run makes the exit status 1 but not the sweep stop", stdout + stderr)
    check(len(names) == 16 + 2 + 20 + 2 - 4, "every other run written", "\n".join(names))
    check("mlp_px-consistent_0.9_1.json" not in names and "lenet5_px-consistent_0.9_1.json" in names,
          "px-consistent on lenet5 only")
    check("[40/40]" in stdout and "ETA" in stdout, "progress k/N with ETA", stdout)
    check("4 runs failed" in stderr and "lenet5_snip_0.995_2: exit status 1" in stderr,
          "failures reported at the end", stderr)
    check((out / "failures.txt").exists(), "failures.txt written")
    check("stub: failing on purpose" in (runs / "logs/mlp_snip_0.9_2.log").read_text(),
          "the failed run's output is kept in runs/logs")
    oneshot = json.loads((runs / "mlp_grasp-oneshot_0.995_1.json").read_text())
    grasp = json.loads((runs / "lenet5_grasp_0.9_2.json").read_text())
    dense = json.loads((runs / "lenet5_dense_1.json").read_text())
    check((oneshot["scorer"], oneshot["rounds"], oneshot["epochs"]) == ("grasp", 1, 3),
          "grasp-oneshot runs --scorer grasp --rounds 1", str(oneshot))
    check((grasp["rounds"], grasp["epochs"]) == (7, 1), "--rounds and per-net --epochs", str(grasp))
    check((dense["scorer"], dense["rounds"], dense["sparsity_target"]) == ("random", 1, 1e-9),
          "dense runs prune nothing, one-shot", str(dense))
    check((out / "pruning.csv").exists(), "aggregated after running")
    check(not list((runs / "partial").glob("*.json")), "nothing left half-written")

    # Resume: only the failures are retried; a run existing with another recipe is left alone.
    conflict = runs / "mlp_px_0.9_1.json"
    conflict.write_text(conflict.read_text().replace('"epochs": 3', '"epochs": 10'))
    rc, stdout, stderr = sweep(*args)
    check("40 runs planned, 36 already done, 4 to run" in stdout, "resumes: only missing runs rerun",
          stdout)
    check("mlp_px_0.9_1: " in stderr and "exists with epochs 10" in stderr and
          '"epochs": 10' in conflict.read_text(), "a run of another recipe is reported, not redone",
          stderr)

    rc, stdout, _ = sweep(*args[:-1], "--dry-run")
    check(rc == 0 and "total: 40 runs" in stdout and "LeNet-5: 22 runs of 1 epochs" in stdout,
          "--dry-run prints the plan", stdout)


def test_plot(tmp):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("skip plots: no matplotlib")
        return
    rc, stdout, stderr = sweep("--aggregate-only", "--out-dir", tmp / "pass")
    check(rc == 0 and (tmp / "pass/pruning_mlp.png").stat().st_size > 10000 and
          (tmp / "pass/pruning_lenet5.png").exists(), "plots drawn", stdout + stderr)


def main():
    os.environ.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryDirectory(prefix="test_prune_sweep.") as d:
        tmp = Path(d)
        test_aggregation(tmp, passing=True)
        test_aggregation(tmp, passing=False)
        test_missing_runs(tmp)
        test_runner(tmp)
        test_plot(tmp)
    if FAILED:
        print(f"\n{len(FAILED)} checks failed")
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
