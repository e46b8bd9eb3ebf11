#!/usr/bin/env python3
"""Tabulates and plots docs/results/quant/ (written by scripts/quant_results.sh).

    scripts/quant_table.py docs/results/quant

Reads every <net>_<mode>_<bits>_<observer>[_uniform].json that examples/quantize wrote and, when
present, torch.json from scripts/quant_torch.py; writes table.md (accuracy, change against fp32,
model size, per-layer SQNR) and accuracy.png (the change in points per setting, with PyTorch's
beside LeNet-5's).
"""
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NETS = {"mlp": "LeNet-300-100", "lenet5": "LeNet-5"}
# PyTorch's settings in torch.json (scripts/quant_torch.py): key, how the table names it.
TORCH = (("ptq_int8_accuracy", "PTQ int8 per-channel (int8 kernels)"),
         ("ptq4_ends8_accuracy", "PTQ 4-bit, 8-bit ends (fake-quantized)"),
         ("ptq4_accuracy", "PTQ 4-bit uniform (fake-quantized)"),
         ("qat4_ends8_accuracy", "QAT 4-bit, 8-bit ends (fake-quantized)"),
         ("qat4_uniform_accuracy", "QAT 4-bit uniform (fake-quantized)"))


def setting(d):
    ends = "" if d["bits"] == 8 else (", uniform" if d["uniform"] else ", 8-bit ends")
    obs = f", {d['observer']}" if d["mode"] == "ptq" else ""
    return f"{d['mode'].upper()} {d['bits']}-bit{ends}{obs}"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "docs/results/quant"
    runs = []
    for path in sorted(glob.glob(os.path.join(out, "*_*_*_*.json"))):
        with open(path) as f:
            runs.append(json.load(f))
    order = {"ptq": 0, "qat": 1}
    runs.sort(key=lambda d: (d["net"] != "mlp", order[d["mode"]], -d["bits"], d["uniform"],
                             d["observer"]))
    lines = ["| network | setting | fp32 | integer | change (points) | QAT fake-quant | bytes fp32 "
             "| bytes quantized | per-layer SQNR (dB): input, then each Dense/Conv2D |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for d in runs:
        change = 100 * (d["quant_accuracy"] - d["fp32_accuracy"])
        fake = d.get("qat_fake_quant_accuracy")
        sqnr = ", ".join(f"{v:.1f}" for v in d["per_layer_sqnr_db"])
        lines.append(f"| {NETS[d['net']]} | {setting(d)} | {100 * d['fp32_accuracy']:.2f} % "
                     f"| {100 * d['quant_accuracy']:.2f} % | {change:+.2f} "
                     f"| {'' if fake is None else f'{100 * fake:.2f} %'} | {d['model_bytes_fp32']:,} "
                     f"| {d['model_bytes_quant']:,} | {sqnr} |")
    torch_path = os.path.join(out, "torch.json")
    torch = None
    if os.path.exists(torch_path):
        with open(torch_path) as f:
            torch = json.load(f)
        fp32 = torch["fp32_accuracy"]
        lines += ["", f"PyTorch {torch['torch_version']} on the same task (LeNet-5, its own fp32 "
                  f"training: {100 * fp32:.2f} %):", "",
                  "| setting | accuracy | change (points) |", "|---|---:|---:|"]
        for key, name in TORCH:
            if key in torch:
                lines.append(f"| {name} | {100 * torch[key]:.2f} % | "
                             f"{100 * (torch[key] - fp32):+.2f} |")
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, net in zip(axes, ("mlp", "lenet5")):
        mine = [d for d in runs if d["net"] == net]
        labels = [setting(d) for d in mine]
        values = [100 * (d["quant_accuracy"] - d["fp32_accuracy"]) for d in mine]
        colors = ["tab:blue" if d["mode"] == "ptq" else "tab:orange" for d in mine]
        if net == "lenet5" and torch is not None:
            fp32 = torch["fp32_accuracy"]
            for key, name in TORCH:
                if key in torch:
                    labels.append("PyTorch " + name.split(" (")[0])
                    values.append(100 * (torch[key] - fp32))
                    colors.append("tab:gray")
        ax.barh(range(len(values)), values, color=colors)
        ax.set_yticks(range(len(values)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(f"{NETS[net]} on Fashion-MNIST")
        ax.set_xlabel("test accuracy change against fp32 (points)")
        ax.invert_yaxis()
    fig.suptitle("edgescale quantization (blue: PTQ, orange: QAT; grey: PyTorch's)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "accuracy.png"), dpi=110)


if __name__ == "__main__":
    main()
