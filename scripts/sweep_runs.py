"""The runner shared by scripts/prune_sweep.py and scripts/fed_sweep.py (standard library only).

A sweep plans runs, one invocation of a program each, and hands them to `execute`: a run whose
RUNS_DIR/<name>.json exists is skipped (or reported, when it holds another recipe), the others run
`jobs` at a time (one thread each, OMP_NUM_THREADS=1), writing into RUNS_DIR/partial/<name>.json,
moved to RUNS_DIR/<name>.json once the result checks out, their output in RUNS_DIR/logs/<name>.log.
A progress line per run gives k/N, the accuracy (or why it failed), the time elapsed and an ETA from
the runs' estimated costs. Failures are returned, not raised: the sweep goes on without them, and
`report_failures` lists them at the end (and in OUT_DIR/failures.txt). `run_sweep` is the main of
both sweeps (plan, --dry-run, run, aggregate, report, exit status) with the flags of
`add_run_arguments`; what differs between the sweeps comes in as plain function arguments.

A run is any object with
    .name                          its file name without .json (unique in the sweep)
    .argv(program, out, data)      the command line that writes its JSON to `out`
    .estimated_seconds()           its cost on one core (for the estimate and the ETA)
"""

import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def clock(seconds):
    """3725.2 -> '1:02:05'."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def csv_list(text, cast=str):
    """'a, b,,c' -> ['a', 'b', 'c'], each through `cast` (argparse's type= for a comma list)."""
    return [cast(x.strip()) for x in text.split(",") if x.strip()]


def add_run_arguments(parser, *, program, out_dir, short_jobs=False):
    """The flags every sweep has, in this order: --jobs (also -j with short_jobs), --out-dir
    (its help: `out_dir`, the default's description), --runs-dir, --program (default `program`),
    --data, --aggregate-only, --dry-run, --no-plot (dest plot) and --check."""
    parser.add_argument(*(("-j",) if short_jobs else ()), "--jobs", type=int, default=2,
                        help="parallel runs (default 2)")
    parser.add_argument("--out-dir", type=Path, help=out_dir)
    parser.add_argument("--runs-dir", type=Path, help="default OUT_DIR/runs")
    parser.add_argument("--program", type=Path, default=program)
    parser.add_argument("--data", help="Fashion-MNIST directory (default: the program's)")
    parser.add_argument("--aggregate-only", action="store_true", help="rebuild from OUT_DIR/runs")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and its estimate")
    parser.add_argument("--no-plot", dest="plot", action="store_false")
    parser.add_argument("--check", action="store_true", help="exit 1 unless every check PASSes")


def _last_line(log):
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return f": {lines[-1][:200]}" if lines else ""


def execute(runs, runs_dir, *, program, data, jobs, prog, mismatch, check_result, accuracy,
            verify=None, last_log_line=False):
    """Runs what is missing of `runs`, `jobs` at a time; returns the failures as (run, reason).

    program, data      passed to run.argv (data: None for the program's default)
    prog               the sweep's name at the start of its messages
    mismatch(run, result)   why an existing RUNS_DIR/<name>.json is not the planned run, as the
                       text after "<path> exists with " (e.g. "seed 5 (planned 1)"), or None: it is
    check_result(result)    raises ValueError, KeyError or TypeError unless a fresh result is
                       the program's JSON (the run then fails: "no valid JSON ...")
    accuracy(result)   the number shown as a percentage in the progress line (None: "no accuracy")
    verify(run, result)     (optional) why a valid fresh result is still not kept, or None
    last_log_line      quote the log's last line when the program exits with an error
    """
    logs = runs_dir / "logs"
    partial = runs_dir / "partial"
    logs.mkdir(parents=True, exist_ok=True)
    partial.mkdir(parents=True, exist_ok=True)
    todo, failures = [], []
    for run in runs:
        path = runs_dir / f"{run.name}.json"
        if not path.exists():
            todo.append(run)
            continue
        try:
            done = read_json(path)
        except (OSError, ValueError) as e:
            failures.append((run, f"{path} exists but does not parse ({e}); delete it to rerun"))
            continue
        why = mismatch(run, done)
        if why:
            failures.append((run, f"{path} exists with {why}; use another --out-dir or delete it"))
    skipped = len(runs) - len(todo)
    total_cost = sum(r.estimated_seconds() for r in todo)
    print(f"{prog}: {len(runs)} runs planned, {skipped} already done, {len(todo)} to run "
          f"(estimated {clock(total_cost / max(1, min(jobs, len(todo) or 1)))} "
          f"with {jobs} jobs)", flush=True)
    if not todo:
        return failures

    env = dict(os.environ, OMP_NUM_THREADS="1")  # one core per run: --jobs sets the parallelism
    lock = threading.Lock()
    state = {"done": 0, "cost_done": 0.0}
    start = time.monotonic()

    def one(run):
        out = partial / f"{run.name}.json"
        log = logs / f"{run.name}.log"
        out.unlink(missing_ok=True)  # left by an earlier attempt that failed
        t0 = time.monotonic()
        try:
            with open(log, "w", encoding="utf-8") as f:
                rc = subprocess.run(run.argv(program, out, data), stdout=f,
                                    stderr=subprocess.STDOUT, env=env, check=False).returncode
        except OSError as e:
            return run, f"cannot start {program}: {e}", time.monotonic() - t0, None
        seconds = time.monotonic() - t0
        if rc != 0:
            last = _last_line(log) if last_log_line else ""
            return run, f"exit status {rc}{last} (see {log})", seconds, None
        try:
            result = read_json(out)
            check_result(result)
        except (OSError, ValueError, KeyError, TypeError) as e:
            return run, f"no valid JSON at {out} ({e}; see {log})", seconds, None
        why = verify(run, result) if verify else None
        if why:
            return run, why, seconds, None
        os.replace(out, runs_dir / f"{run.name}.json")
        return run, None, seconds, accuracy(result)

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(one, run) for run in todo]
        for future in concurrent.futures.as_completed(futures):
            run, failure, seconds, acc = future.result()
            with lock:
                state["done"] += 1
                state["cost_done"] += run.estimated_seconds()
                elapsed = time.monotonic() - start
                remaining = (total_cost - state["cost_done"]) * elapsed / max(state["cost_done"], 1e-9)
                k = skipped + state["done"]
                what = f"{run.name} ({seconds:.0f} s)"
                if failure:
                    failures.append((run, failure))
                    what += f" FAILED: {failure}"
                elif acc is None:
                    what += " no accuracy"
                else:
                    what += f" {100 * acc:.2f} %"
                print(f"[{k}/{len(runs)}] {what}  elapsed {clock(elapsed)}, ETA {clock(remaining)}",
                      flush=True)
    return failures


def report_failures(failures, out_dir, prog):
    """Writes OUT_DIR/failures.txt (a line per run: '<name>: <reason>') and lists it on stderr;
    nothing when there are none."""
    if not failures:
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    text = "\n".join(f"{run.name}: {why}" for run, why in failures)
    (out_dir / "failures.txt").write_text(text + "\n", encoding="utf-8")
    print(f"\n{prog}: {len(failures)} runs failed or were left alone "
          f"(also in {out_dir / 'failures.txt'}):\n{text}", file=sys.stderr)


def run_sweep(args, out_dir, *, prog, target, plan, print_plan, execute, aggregate, report,
              verdict):
    """A sweep's main once its flags (add_run_arguments' among them) are parsed and checked;
    returns the exit status.

    Unless --aggregate-only: plans the runs (`plan(args)`); with --dry-run prints the plan
    (`print_plan(runs)`, then the total estimate) and returns 0; returns 2 when --program does not
    exist (`target`: its CMake target, for the message); else runs them
    (`execute(runs, args, runs_dir)` -> failures). Then aggregates RUNS_DIR (`aggregate(runs_dir)`
    -> rows; none: "no runs", exit status 1) into OUT_DIR (`report(rows, out_dir, draw)` -> the
    acceptance checks), reports the failures, and returns 1 when there are any, or with --check
    and a check whose `verdict(check)` is not PASS; else 0. `prog` begins the messages."""
    runs_dir = args.runs_dir or out_dir / "runs"
    failures = []
    if not args.aggregate_only:
        runs = plan(args)
        if args.dry_run:
            print_plan(runs)
            total = sum(r.estimated_seconds() for r in runs)
            print(f"total: {len(runs)} runs, ~{clock(total)} of CPU, ~{clock(total / args.jobs)} "
                  f"with {args.jobs} jobs on free cores")
            return 0
        if not args.program.exists():
            print(f"{prog}: {args.program} not found: build it (cmake --build build/release "
                  f"--target {target}) or pass --program", file=sys.stderr)
            return 2
        failures = execute(runs, args, runs_dir)

    rows = aggregate(runs_dir)
    checks = None
    if rows:
        out_dir.mkdir(parents=True, exist_ok=True)
        checks = report(rows, out_dir, draw=args.plot)
    else:
        print(f"{prog}: no runs in {runs_dir}", file=sys.stderr)
    report_failures(failures, out_dir, prog)
    if checks is None:
        return 1
    if failures or (args.check and any(verdict(c) != "PASS" for c in checks)):
        return 1
    return 0
