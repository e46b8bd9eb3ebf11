#!/usr/bin/python3
"""Compares the scores `build/examples/score` wrote with PyTorch's, on the same network and data.

    build/release/examples/score --net mlp --load DIR --inputs X.npy --labels y.npy \\
        --scorer px --double --out OUT
    /usr/bin/python3 scripts/compare_scores.py --net mlp --load DIR --inputs X.npy \\
        --labels y.npy --scorer px --scores OUT

Builds LeNet-300-100 or LeNet-5 in torch (float64), loads DIR/<name>.npy and the masks
DIR/<name>_mask.npy beside them (as torch.nn.utils.prune names them), computes the scorer with the
reference functions of scripts/fixtures/make_pruning_fixtures.py (written from the PX authors'
procedure, DESIGN.md §3a) and prints, per tensor, the largest difference relative to the largest
score. Exits 1 when one exceeds --tolerance (1e-10 by default, for scores computed with --double).
"""
import argparse
import pathlib
import sys

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "fixtures"))
import make_pruning_fixtures as ref  # noqa: E402  (sets float64 as torch's default)

SCORERS = {
    "px": lambda m, x, y, k: ref.px(m, x, y, k),
    "px-consistent": lambda m, x, y, k: ref.px(m, x, y, k, consistent=True),
    "snip": lambda m, x, y, k: ref.reference_snip(m, x, y, k),
    "itersnip": lambda m, x, y, k: ref.itersnip(m, x, y, k),
    "grasp": lambda m, x, y, k: ref.grasp(m, x, y, k),
    "synflow": lambda m, x, y, k: ref.synflow(m, x, y),
    "magnitude": lambda m, x, y, k: ref.magnitude(m, x, y),
}


def network(net):
    nn = torch.nn
    if net == "mlp":
        return nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                             nn.Linear(100, 10)), (784,)
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10)), (1, 28, 28)


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    a.add_argument("--net", choices=["mlp", "lenet5"], required=True)
    a.add_argument("--load", required=True)
    a.add_argument("--inputs", required=True)
    a.add_argument("--labels", required=True)
    a.add_argument("--scorer", choices=sorted(SCORERS), required=True)
    a.add_argument("--scores", required=True, help="the OUT directory score wrote")
    a.add_argument("--tolerance", type=float, default=1e-10)
    o = a.parse_args()

    model, shape = network(o.net)
    load = pathlib.Path(o.load)
    masks = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(np.load(load / f"{name}.npy").astype(np.float64)))
            mask_file = load / f"{name}_mask.npy"
            if name.endswith("weight"):
                masks[name] = (torch.from_numpy(np.load(mask_file).astype(np.float64))
                               if mask_file.exists() else torch.ones_like(p))
    model.eval()
    x = torch.from_numpy(np.load(o.inputs).astype(np.float64)).reshape((-1,) + shape)
    y = torch.from_numpy(np.load(o.labels).astype(np.int64))
    expected = SCORERS[o.scorer](model, x, y, masks)
    worst = 0.0
    for name, e in expected.items():
        got = np.load(pathlib.Path(o.scores) / f"{name}.npy")
        e = e.detach().numpy()
        if got.shape != e.shape:
            print(f"{name}: shape {got.shape}, PyTorch's {e.shape}")
            return 1
        scale = max(np.abs(e).max(), 1e-300)
        rel = float(np.abs(got - e).max() / scale)
        worst = max(worst, rel)
        print(f"{name}: {got.size} scores, largest difference {rel:.3g} of the largest score")
    print(f"{o.scorer}: worst {worst:.3g} (tolerance {o.tolerance:g})")
    return 0 if worst <= o.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
