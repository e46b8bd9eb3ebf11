#!/usr/bin/python3
"""Tests scripts/fed_sweep.py without running examples/federated:

    /usr/bin/python3 scripts/test_fed_sweep.py      (or -m unittest scripts/test_fed_sweep.py)

- the plan of each preset (--dry-run) and the flags that override it;
- the runner, with a fake federated (a small Python script that parses the flags and writes a
  known curve): file names, resuming, a run the program rejects (fed3r+ft) reported while the
  sweep goes on, a run existing with another recipe left alone;
- the aggregation on hand-made curves: rounds and bytes to FED3R's accuracy (null rounds, a target
  met exactly, never reached), the ratios, the CSV, the markdown tables, the advantage map and
  the acceptance lines (passing and failing);
- the plots, when matplotlib is there.
Everything is written in a temporary directory; standard library only (matplotlib optional).
"""

import contextlib
import csv
import importlib.util
import io
import json
import math
import os
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("fed_sweep", HERE / "fed_sweep.py")
fed_sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fed_sweep)

HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

FAKE = r'''#!/usr/bin/python3
# A stand-in for examples/federated: parses its flags and writes a known curve as its JSON.
import json, math, sys
a, argv = {}, sys.argv[1:]
while argv:
    flag = argv.pop(0)
    a[flag] = True if flag == "--quiet" else argv.pop(0)
s = a.get("--strategy", "fed3r")
known = ("fed3r", "fed3r-rf", "fedncm", "fedavg", "fedavgm", "fedprox", "scaffold", "fedadam",
         "fedyogi")
if s not in known:
    sys.exit(f"federated: --strategy: '{s}' is not one of " + "|".join(known))
K, M, R = int(a["--clients"]), int(a["--per-round"]), int(a.get("--rounds", 0))
every = int(a.get("--evaluate-every", 1))
features = a.get("--features", "pixels")
model = a.get("--model", "head")
one_pass = s in ("fed3r", "fed3r-rf", "fedncm")
rounds = R if R > 0 else (math.ceil(K / M) if one_pass else 100)
acc, up, down = [], [], []
for r in range(1, rounds + 1):
    if one_pass:  # linear to 0.8 over the pass, whatever alpha
        acc.append(round(0.8 * r / rounds, 6))
        up.append(1000 * r)
        down.append(0)
    else:  # 0.9 (1 - exp(-r / 3)): 0.8 first reached at round 7
        evaluated = r % every == 0 or r == rounds
        acc.append(0.9 * (1 - math.exp(-r / 3)) if evaluated else None)
        up.append(500 * r)
        down.append(500 * r)
result = {"strategy": s, "features": features, "model": model,
          "partition": a.get("--partition", "dirichlet-prior"), "alpha": float(a["--alpha"]),
          "clients": K, "per_round": M, "seed": int(a.get("--seed", 1)), "lambda": 0.01,
          "feature_width": {"public": 84, "pixels": 784}.get(features, int(a.get("--width", 1024))),
          "rounds": rounds, "accuracy": acc, "bytes_up": up, "bytes_down": down,
          "final_accuracy": [x for x in acc if x is not None][-1], "rejected_updates": 0,
          "seconds": 0.01}
if features == "public":
    result["public_extractor_accuracy"] = 0.85
print(f"{s}: final accuracy {100 * result['final_accuracy']:.2f}%")
with open(a["--out"], "w") as f:
    json.dump(result, f)
'''


def sweep(*argv):
    """fed_sweep.main in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = fed_sweep.main([str(a) for a in argv])
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def read_csv(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_run(runs, name, strategy, accuracy, up, down, alpha=0.5, model="head", clients=100,
              per_round=10, features="public", width=84, final=None):
    result = {"strategy": strategy, "features": features, "model": model,
              "partition": "dirichlet-prior", "alpha": alpha, "clients": clients,
              "per_round": per_round, "seed": 1, "lambda": 0.01, "feature_width": width,
              "rounds": len(accuracy), "accuracy": accuracy, "bytes_up": up, "bytes_down": down,
              "final_accuracy": final if final is not None else
              [a for a in accuracy if a is not None][-1],
              "rejected_updates": 0, "seconds": 1.5, "public_extractor_accuracy": 0.85}
    (runs / f"{name}.json").write_text(json.dumps(result), encoding="utf-8")


class Temp(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="test_fed_sweep.")
        self.tmp = Path(self._tmp.name)

    def tearDown(self):
        self._tmp.cleanup()


class TestPlan(Temp):
    def plan(self, *argv):
        rc, stdout, _ = sweep("--dry-run", "--out-dir", self.tmp, *argv)
        self.assertEqual(rc, 0, stdout)
        names = [line.split()[0] for line in stdout.splitlines() if line.endswith(" s")
                 and "~" in line and not line.split()[0].endswith(":")]
        return names, stdout

    def test_main(self):
        names, stdout = self.plan("--preset", "main")
        # 3 alphas x (fed3r, fed3r-rf, fedncm, fed3r+ft on LeNet-5, 6 gradient x 2 models)
        self.assertEqual(len(names), 3 * 16, stdout)
        self.assertIn("total: 48 runs", stdout)
        for a in ("0.05", "0.5", "1000"):
            self.assertIn(f"public_dirichlet-prior_K100_M10_a{a}_fed3r_R0_s1", names)
            self.assertIn(f"public_dirichlet-prior_K100_M10_a{a}_fed3r+ft.lenet5_R100_s1", names)
            for s in fed_sweep.GRADIENT:
                for m in ("head", "lenet5"):
                    self.assertIn(f"public_dirichlet-prior_K100_M10_a{a}_{s}.{m}_R100_s1", names)

    def test_main_argv(self):
        args = fed_sweep.argparse.Namespace(
            preset="main", strategies=None, models=None, features=None, alphas=None,
            clients=None, per_round=10, partition="dirichlet-prior", width=1024, rounds=None,
            evaluate_every=None, seeds=None)
        runs = fed_sweep.plan(args)
        by_label = {r.label: r for r in runs if r.alpha == 0.05}
        head = by_label["fedavg/head"].argv("P", "o.json", None)
        lenet = by_label["scaffold/lenet5"].argv("P", "o.json", None)
        fed3r = by_label["fed3r"].argv("P", "o.json", "D")
        self.assertEqual(head[head.index("--evaluate-every") + 1], "1")
        self.assertEqual(lenet[lenet.index("--evaluate-every") + 1], "2")
        self.assertEqual(lenet[lenet.index("--model") + 1], "lenet5")
        self.assertEqual(head[head.index("--rounds") + 1], "100")
        self.assertNotIn("--model", fed3r)
        self.assertEqual(fed3r[fed3r.index("--rounds") + 1], "0")
        self.assertEqual(fed3r[fed3r.index("--data") + 1], "D")
        for flag, value in (("--features", "public"), ("--partition", "dirichlet-prior"),
                            ("--alpha", "0.05"), ("--clients", "100"), ("--per-round", "10"),
                            ("--seed", "1"), ("--out", "o.json")):
            self.assertEqual(head[head.index(flag) + 1], value, head)
        self.assertIn("--quiet", head)

    def test_map(self):
        names, stdout = self.plan("--preset", "map")
        self.assertEqual(len(names), 2 * 3 * 3 * 3, stdout)  # K x features x alpha x strategy
        self.assertIn("random1024_dirichlet-prior_K1000_M10_a0.05_fedavg.head_R1000_s1", names)
        self.assertIn("pixels_dirichlet-prior_K100_M10_a1000_scaffold.head_R300_s1", names)
        self.assertIn("public_dirichlet-prior_K1000_M10_a0.5_fed3r_R0_s1", names)
        self.assertFalse([n for n in names if "lenet5" in n or "fed3r+ft" in n])

    def test_smoke_and_overrides(self):
        names, _ = self.plan("--preset", "smoke")
        self.assertEqual(len(names), 2 * 7, names)
        self.assertIn("public_dirichlet-prior_K20_M10_a0.05_fedavg.lenet5_R4_s1", names)
        self.assertIn("public_dirichlet-prior_K20_M10_a1000_fed3r+ft.lenet5_R4_s1", names)
        names, _ = self.plan("--preset", "main", "--strategies", "fed3r,fed3r+ft,fedavg",
                             "--models", "head", "--alphas", "0.1", "--features", "pixels,random",
                             "--clients", "50", "--rounds", "50=7", "--seeds", "1,2", "-j", "1",
                             "--width", "784")
        # per seed: pixels and random (fed3r, fedavg/head); fed3r+ft needs public features
        self.assertEqual(len(names), 2 * 4, names)
        self.assertIn("random784_dirichlet-prior_K50_M10_a0.1_fedavg.head_R7_s2", names)
        self.assertFalse([n for n in names if "fed3r+ft" in n])

    def test_estimates(self):
        _, stdout = self.plan("--preset", "main", "-j", "2")
        self.assertRegex(stdout, r"total: 48 runs, ~\d+:\d\d:\d\d of CPU, ~\d+:\d\d:\d\d with 2 jobs")


class TestRunner(Temp):
    def test_run_resume_fail(self):
        fake = self.tmp / "fake_federated"
        fake.write_text(FAKE, encoding="utf-8")
        fake.chmod(0o755)
        out = self.tmp / "out"
        argv = ["--program", fake, "--out-dir", out, "--preset", "smoke",
                "--strategies", "fed3r,fed3r+ft,fedavg", "--models", "head",
                "--alphas", "0.05,1000", "--rounds", "9", "--evaluate-every", "2", "-j", "2",
                "--no-plot"]
        rc, stdout, stderr = sweep(*argv)
        runs = out / "runs"
        names = sorted(p.stem for p in runs.glob("*.json"))
        self.assertEqual(rc, 1, stdout + stderr)  # the failures make it 1, after every run
        self.assertEqual(names, sorted(
            f"public_dirichlet-prior_K20_M10_a{a}_{s}" for a in ("0.05", "1000")
            for s in ("fed3r_R0_s1", "fedavg.head_R9_s1")), stdout + stderr)
        self.assertIn("[6/6]", stdout)
        self.assertIn("2 runs failed", stderr)
        self.assertIn("fed3r+ft.lenet5_R9_s1: exit status 1: federated: --strategy: 'fed3r+ft'",
                      stderr)
        self.assertIn("FAILED", stdout)
        self.assertTrue((out / "failures.txt").exists())
        self.assertIn("is not one of", (runs / "logs" /
                      "public_dirichlet-prior_K20_M10_a1000_fed3r+ft.lenet5_R9_s1.log").read_text())
        self.assertFalse(list((runs / "partial").glob("*.json")), "nothing left half-written")
        fedavg = json.loads((runs / "public_dirichlet-prior_K20_M10_a0.05_fedavg.head_R9_s1.json")
                            .read_text())
        self.assertEqual(fedavg["accuracy"][0], None)  # --evaluate-every 2 reached the program
        self.assertEqual(len(fedavg["accuracy"]), 9)
        # Aggregated after running: fedavg passes fed3r's 0.8 at round 7, first evaluated at 8.
        rows = read_csv(out / "federated.csv")
        row = next(r for r in rows if r["label"] == "fedavg/head" and r["alpha"] == "0.05")
        self.assertEqual((row["rounds_to_target"], row["fed3r_rounds"]), ("8", "2"))
        self.assertIn("FED3R's accuracy is the same for every α: PASS (spread 0", stdout)

        # Resume: only the failed ones run again; a result of another recipe is left alone.
        path = runs / "public_dirichlet-prior_K20_M10_a1000_fedavg.head_R9_s1.json"
        path.write_text(path.read_text().replace('"seed": 1', '"seed": 5'))
        rc, stdout, stderr = sweep(*argv)
        self.assertIn("6 runs planned, 4 already done, 2 to run", stdout)
        self.assertIn("exists with seed 5 (planned 1)", stderr)
        self.assertIn('"seed": 5', path.read_text())
        self.assertEqual(rc, 1)

    def test_missing_program(self):
        rc, _, stderr = sweep("--program", self.tmp / "nothing", "--out-dir", self.tmp,
                              "--preset", "smoke")
        self.assertEqual(rc, 2)
        self.assertIn("not found", stderr)


class TestToTarget(unittest.TestCase):
    def test_to_target(self):
        up, down = [10, 20, 30, 40], [1, 2, 3, 4]
        f = fed_sweep.to_target
        self.assertEqual(f([0.1, 0.5, 0.9, 0.95], up, down, 0.8), (3, 33))
        self.assertEqual(f([0.1, 0.8, 0.9, 0.95], up, down, 0.8), (2, 22))  # >=, met exactly
        self.assertEqual(f([None, None, 0.9, None], up, down, 0.8), (3, 33))
        self.assertEqual(f([None, 0.7, None, 0.79], up, down, 0.8), (None, None))
        self.assertEqual(f([0.9], [5], [0], None), (None, None))  # no target
        self.assertEqual(f([float("nan"), 0.85], [1, 2], [0, 0], 0.8), (2, 2))
        self.assertEqual(fed_sweep.final_accuracy(
            {"accuracy": [0.5, 0.7, None], "final_accuracy": 0.7}), 0.7)
        self.assertIsNone(fed_sweep.final_accuracy({"accuracy": [None], "final_accuracy": "nan"}))


class TestAggregation(Temp):
    """Hand-made curves, K = 100, M = 10: FED3R 10 rounds to 0.8 with 1 MB up per round."""

    def make(self, spread=0.0, fed3r_rounds=10):
        runs = self.tmp / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        for alpha, final in ((0.05, 0.8), (0.5, 0.8 + spread), (1000.0, 0.8)):
            acc = [round(final * (i + 1) / fed3r_rounds, 12) for i in range(fed3r_rounds)]
            acc[-1] = final
            up = [1_000_000 * (i + 1) for i in range(fed3r_rounds)]
            write_run(runs, f"fed3r_{alpha:g}", "fed3r", acc, up, [0] * fed3r_rounds, alpha=alpha)
        n = 20
        up = [2_000_000 * (i + 1) for i in range(n)]
        # fedavg (alpha 0.5): evaluated every 2 rounds; 0.79 at round 4, 0.8 exactly at round 6
        # (so 6 rounds and 24 MB: 0.6x the rounds, 2.4x the bytes of FED3R's pass).
        acc = [None] * n
        for r, a in ((2, 0.5), (4, 0.79), (6, 0.8 + spread), (8, 0.82), (20, 0.83)):
            acc[r - 1] = a
        write_run(runs, "fedavg", "fedavg", acc, up, up)
        # scaffold never gets there: 0.79 at best; 20 rounds = 80 MB up + down.
        write_run(runs, "scaffold", "scaffold", [0.79 * (i + 1) / n for i in range(n)], up, up)
        # fedavg on LeNet-5 (images: width 784) reaches it at round 1.
        write_run(runs, "fedavg_lenet5", "fedavg", [0.9] * 3, [1_000_000] * 3, [1_000_000] * 3,
                  model="lenet5", width=784)
        # another alpha of fedavg, and a group without FED3R (K = 50): no target.
        write_run(runs, "fedavg_a0.05", "fedavg", [0.81], [5_000_000], [5_000_000], alpha=0.05)
        write_run(runs, "fedavg_k50", "fedavg", [0.81], [5], [5], clients=50)
        (runs / "broken.json").write_text("{not json", encoding="utf-8")
        return runs

    def test_csv_markdown_acceptance(self):
        self.make()
        rc, stdout, stderr = sweep("--aggregate-only", "--out-dir", self.tmp, "--no-plot",
                                   "--check")
        self.assertEqual(rc, 0, stdout + stderr)
        self.assertIn("broken.json", stderr)
        rows = read_csv(self.tmp / "federated.csv")
        self.assertEqual(len(rows), 8)

        def row(label, alpha="0.5", clients="100"):
            found = [r for r in rows if (r["label"], r["alpha"], r["clients"]) ==
                     (label, alpha, clients)]
            self.assertEqual(len(found), 1, (label, alpha, found))
            return found[0]

        fedavg = row("fedavg/head")
        self.assertEqual((fedavg["target"], fedavg["reached"], fedavg["rounds_to_target"],
                          fedavg["bytes_to_target"], fedavg["fed3r_rounds"],
                          fedavg["fed3r_bytes"]), ("0.8", "yes", "6", "24000000", "10", "10000000"))
        self.assertAlmostEqual(float(fedavg["rounds_ratio"]), 0.6)
        self.assertAlmostEqual(float(fedavg["bytes_ratio"]), 2.4)
        self.assertEqual((fedavg["final_accuracy"], fedavg["rounds"], fedavg["total_bytes"]),
                         ("0.83", "20", "80000000"))
        scaffold = row("scaffold/head")
        self.assertEqual((scaffold["reached"], scaffold["rounds_to_target"],
                          scaffold["bytes_to_target"], scaffold["bytes_ratio"]), ("no", "", "", ""))
        lenet = row("fedavg/lenet5")
        self.assertEqual((lenet["rounds_to_target"], lenet["bytes_to_target"], lenet["features"],
                          lenet["feature_width"]), ("1", "2000000", "public", "84"))
        fed3r = row("fed3r")
        self.assertEqual((fed3r["model"], fed3r["rounds_to_target"], fed3r["rounds_ratio"],
                          fed3r["bytes_ratio"]), ("", "10", "1", "1"))
        self.assertEqual(row("fedavg/head", alpha="0.05")["bytes_ratio"], "1")
        alone = row("fedavg/head", alpha="0.5", clients="50")
        self.assertEqual((alone["target"], alone["reached"], alone["rounds_to_target"]),
                         ("", "", ""))

        table = (self.tmp / "federated_table.md").read_text(encoding="utf-8")
        self.assertIn("**public features (D = 84), dirichlet-prior, K = 100, M = 10, seed 1**",
                      table)
        self.assertIn("| strategy | α=0.05 acc | rounds | MB | × FED3R | α=0.5 acc |", table)
        self.assertIn("| fed3r | 80.00 | 10 | 10 | 1× | 80.00 | 10 | 10 | 1× | 80.00 | 10 | 10 | 1× |",
                      table)
        self.assertIn("| fedavg/head | 81.00 | 1 | 10 | 1× | 83.00 | 6 | 24 | 2.4× | — | — | — | — |",
                      table)
        self.assertIn("| scaffold/head | — | — | — | — | 79.00 | not within 20 | > 80 | > 8× |",
                      table)
        k100 = table[table.index("K = 100"):]
        self.assertLess(k100.index("| fed3r |"), k100.index("| fedavg/head |"))
        self.assertLess(k100.index("| fedavg/head |"), k100.index("| fedavg/lenet5 |"))
        self.assertLess(k100.index("| fedavg/lenet5 |"), k100.index("| scaffold/head |"))
        self.assertIn("| fedavg/head | 81.00 | no target |  |  |", table)
        self.assertIn("Public extractor (LeNet-5 on the public 10 %): 85.00 %", table)
        self.assertIn(table.split("| fedavg/head |")[0], stdout)  # printed

        self.assertIn("FED3R reaches its final accuracy after one pass (K/M rounds): PASS "
                      "(3 of 3 runs; K=100, M=10: 10 rounds)", stdout)
        self.assertIn("FED3R's accuracy is the same for every α: PASS (spread 0,", stdout)
        self.assertIn("FED3R's accuracy is the same for every α: PASS", table)

        cells = read_csv(self.tmp / "advantage_map.csv")
        by = {(c["strategy"], c["alpha"]): c for c in cells}
        self.assertEqual(set(by), {("fedavg", "0.5"), ("scaffold", "0.5"), ("fedavg", "0.05")})
        self.assertAlmostEqual(float(by["fedavg", "0.5"]["bytes_ratio"]), 2.4)
        self.assertEqual(by["fedavg", "0.5"]["bytes_ratio_lower_bound"], "")
        self.assertEqual((by["scaffold", "0.5"]["reached"], by["scaffold", "0.5"]["bytes_ratio"],
                          by["scaffold", "0.5"]["bytes_ratio_lower_bound"]), ("no", "", "8"))
        md = (self.tmp / "advantage_map.md").read_text(encoding="utf-8")
        self.assertIn("| public (D = 84) | 1× bytes, 0.1× rounds (1 of 1) | "
                      "2.4× bytes, 0.6× rounds (6 of 20) |", md)
        self.assertIn("| public (D = 84) | not within 20 (> 8× bytes) |", md)

    def test_acceptance_fails(self):
        self.make(spread=1e-4, fed3r_rounds=12)
        rc, stdout, _ = sweep("--aggregate-only", "--out-dir", self.tmp, "--no-plot", "--check")
        self.assertEqual(rc, 1)
        self.assertIn("FED3R reaches its final accuracy after one pass (K/M rounds): FAIL (0 of 3 "
                      "runs; K=100, M=10: 10 rounds; fed3r_0.05.json: 12 rounds, one pass is 10",
                      stdout)
        self.assertIn("FED3R's accuracy is the same for every α: FAIL (spread 0.0001, tolerance "
                      "1e-12;", stdout)
        # Without --check the verdicts are reported, the exit status stays 0.
        rc, _, _ = sweep("--aggregate-only", "--out-dir", self.tmp, "--no-plot")
        self.assertEqual(rc, 0)

    def test_no_runs(self):
        (self.tmp / "runs").mkdir()
        rc, _, stderr = sweep("--aggregate-only", "--out-dir", self.tmp, "--no-plot")
        self.assertEqual(rc, 1)
        self.assertIn("no runs", stderr)

    @unittest.skipUnless(HAVE_MATPLOTLIB, "no matplotlib")
    def test_plots(self):
        self.make()
        rc, stdout, stderr = sweep("--aggregate-only", "--out-dir", self.tmp)
        self.assertEqual(rc, 0, stdout + stderr)
        for name in ("accuracy_rounds_public_K100.png", "accuracy_bytes_public_K100.png",
                     "accuracy_rounds_public_K50.png", "advantage_map.png"):
            path = self.tmp / name
            self.assertTrue(path.exists() and path.stat().st_size > 5000, name)
            self.assertIn(str(path), stdout)


class TestCostModel(unittest.TestCase):
    def test_estimates_in_the_measured_range(self):
        def run(strategy, model, features="public", clients=100, rounds=0, every=1):
            return fed_sweep.Run(strategy, model, features, 1024, "dirichlet-prior", 0.5, clients,
                                 10, rounds, every, 1).estimated_seconds()
        self.assertTrue(2 < run("fed3r", None) < 10)
        self.assertTrue(4 < run("fedavg", "head", rounds=100) < 20)
        self.assertTrue(30 < run("fedavg", "lenet5", rounds=100, every=2) < 90)
        self.assertTrue(math.isfinite(run("fed3r-rf", None, features="random", clients=1000)))


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    unittest.main(verbosity=1, argv=sys.argv[:1] + sys.argv[1:])
