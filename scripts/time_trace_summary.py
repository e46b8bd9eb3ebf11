#!/usr/bin/python3
"""Summarises a clang -ftime-trace JSON: phase totals, the front end's template instantiation
time by owner (exclusive of nested instantiations), and the back end's per-function time by
owner (the OptFunction and CodeGen Function events; the inliner's time is not per function and
is left out, so these add up to less than Backend), with the costliest functions.

    clang++ -std=c++20 -O2 -ftime-trace -Iinclude -isystem /usr/include/eigen3 \
        -c examples/train.cpp -o /tmp/train.o   # writes /tmp/train.json
    scripts/time_trace_summary.py /tmp/train.json
"""
import collections
import json
import shutil
import subprocess
import sys


def owner(detail):
    if detail == "main":
        return "the example itself"
    for prefix, name in (("edgescale::examples", "examples' shared code"),
                         ("edgescale::data", "edgescale data"), ("edgescale::nn", "edgescale nn"),
                         ("edgescale", "edgescale core"), ("Eigen", "Eigen"), ("std", "std"),
                         ("(anonymous namespace)", "the example itself")):
        if detail.startswith(prefix):
            return name
    return "other"


def function_owner(name):
    """The owner of a demangled function name, by its namespace (return types skipped)."""
    depth = 0
    for i, c in enumerate(name):  # the name starts after the return type's last top-level space
        if c in "<(":
            depth += 1
        elif c in ">)":
            depth -= 1
        elif c == " " and depth == 0 and not name.startswith("operator", i + 1):
            return function_owner(name[i + 1:])
        if c == "(" and depth == 1:
            break
    return owner(name)


def demangle(names):
    if not shutil.which("c++filt"):
        return names
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True)
    lines = out.stdout.split("\n")
    return lines[:len(names)] if len(lines) >= len(names) else names


def main(path):
    events = [e for e in json.load(open(path))["traceEvents"] if e.get("ph") == "X"]
    totals = {e["name"][6:]: e["dur"] / 1e6 for e in events if e["name"].startswith("Total ")}
    print("phase                         seconds")
    for phase in ("ExecuteCompiler", "Frontend", "Source", "PerformPendingInstantiations",
                  "Backend", "Optimizer", "CodeGenPasses"):
        print(f"  {phase:<28}{totals.get(phase, 0):7.2f}")
    inst = sorted((e for e in events if e["name"] in ("InstantiateFunction", "InstantiateClass")),
                  key=lambda e: (e["ts"], -e["dur"]))
    exclusive = collections.Counter()
    stack = []
    for e in inst:
        while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
            stack.pop()
        if stack:
            stack[-1]["children"] = stack[-1].get("children", 0) + e["dur"]
        stack.append(e)
    for e in inst:
        exclusive[owner(e.get("args", {}).get("detail", ""))] += (e["dur"] - e.get("children", 0)) / 1e6
    print("template instantiation by owner (exclusive seconds)")
    for name, seconds in exclusive.most_common():
        print(f"  {name:<28}{seconds:7.2f}")
    per_function = collections.Counter()
    for e in events:
        if e["name"] in ("OptFunction", "CodeGen Function"):
            per_function[e.get("args", {}).get("detail", "")] += e["dur"] / 1e6
    mangled = list(per_function)
    readable = dict(zip(mangled, demangle(mangled)))
    by_owner = collections.Counter()
    for name, seconds in per_function.items():
        by_owner[function_owner(readable[name])] += seconds
    print(f"back end by owner (seconds in {len(per_function)} functions' own passes)")
    for name, seconds in by_owner.most_common():
        print(f"  {name:<28}{seconds:7.2f}")
    print("costliest functions in the back end (seconds)")
    for name, seconds in per_function.most_common(8):
        print(f"  {seconds:5.2f}  {readable[name][:110]}")


if __name__ == "__main__":
    main(sys.argv[1])
