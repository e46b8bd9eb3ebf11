#!/usr/bin/python3
"""Summarises a clang -ftime-trace JSON: phase totals, and the front end's template
instantiation time by owner (exclusive of nested instantiations).

    clang++ -std=c++20 -O2 -ftime-trace -Iinclude -isystem /usr/include/eigen3 \
        -c examples/train.cpp -o /tmp/train.o   # writes /tmp/train.json
    scripts/time_trace_summary.py /tmp/train.json
"""
import collections
import json
import sys


def owner(detail):
    for prefix, name in (("edgescale::data", "edgescale data"), ("edgescale::nn", "edgescale nn"),
                         ("edgescale", "edgescale core"), ("Eigen", "Eigen"), ("std", "std"),
                         ("(anonymous namespace)", "the example itself")):
        if detail.startswith(prefix):
            return name
    return "other"


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


if __name__ == "__main__":
    main(sys.argv[1])
