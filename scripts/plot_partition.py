#!/usr/bin/python3
"""A stacked bar per client of a federated split's class histogram.

Reads the CSV that fed::PartitionSummary::write_csv writes (header client,size,c0,...,c{C-1}; one
row per client) and draws each client's samples stacked by class to a PNG.

    scripts/plot_partition.py split.csv                       # -> split.png, counts
    scripts/plot_partition.py split.csv -o split.png --fraction --title "Dirichlet a=0.1"

Needs matplotlib (Debian: apt-get install python3-matplotlib).
"""

import argparse
import csv
import sys
from pathlib import Path


def read_split(path):
    """The class names and, per client, (client id, [count per class]) from a write_csv file."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][:2] != ["client", "size"]:
        sys.exit(f"plot_partition: {path}: expected the header client,size,c0,..., got {rows[:1]}")
    classes = rows[0][2:]
    clients = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            sys.exit(f"plot_partition: {path}:{line}: expected {len(rows[0])} fields, got {len(row)}")
        counts = [int(x) for x in row[2:]]
        if sum(counts) != int(row[1]):
            sys.exit(f"plot_partition: {path}:{line}: the class counts sum to {sum(counts)}, "
                     f"not the size {row[1]}")
        clients.append((int(row[0]), counts))
    return classes, clients


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="a fed::PartitionSummary::write_csv file")
    parser.add_argument("-o", "--output", type=Path, help="PNG to write (default: CSV name .png)")
    parser.add_argument("--fraction", action="store_true",
                        help="each bar as class fractions of the client (heights 1)")
    parser.add_argument("--title", default=None, help="figure title (default: the CSV's name)")
    args = parser.parse_args()

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_partition: matplotlib not found (apt-get install python3-matplotlib)")

    classes, clients = read_split(args.csv)
    ids = [k for k, _ in clients]
    width = max(6.0, min(24.0, 0.12 * len(clients) + 2.0))
    fig, ax = plt.subplots(figsize=(width, 4.0))
    colours = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
    bottom = [0.0] * len(clients)
    for c, name in enumerate(classes):
        heights = []
        for _, counts in clients:
            total = sum(counts)
            value = counts[c] if not args.fraction else (counts[c] / total if total else 0.0)
            heights.append(value)
        ax.bar(ids, heights, bottom=bottom, width=0.9, color=colours(c % colours.N), label=name,
               linewidth=0)
        bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set_xlabel("client")
    ax.set_ylabel("fraction of the client's samples" if args.fraction else "samples")
    ax.set_title(args.title if args.title is not None else args.csv.stem)
    if ids:
        ax.set_xlim(min(ids) - 0.6, max(ids) + 0.6)
    if len(classes) <= 20:
        ax.legend(title="class", bbox_to_anchor=(1.01, 1.0), loc="upper left", fontsize="small")
    fig.tight_layout()
    output = args.output if args.output is not None else args.csv.with_suffix(".png")
    fig.savefig(output, dpi=120)
    print(f"plot_partition: {len(clients)} clients, {len(classes)} classes -> {output}")


if __name__ == "__main__":
    main()
