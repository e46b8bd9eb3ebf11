#!/usr/bin/python3
"""FED3R on Fashion-MNIST pixels recomputed with numpy, and features for `federated --features file:DIR`.

    /usr/bin/python3 scripts/fed3r_numpy.py                    # the centralized ridge solution
    /usr/bin/python3 scripts/fed3r_numpy.py --export DIR       # and DIR/{features,labels,...}.npy

ψ(x) is the 784 pixels scaled to [0, 1] with a constant 1 appended. FED3R's federated solution is the
centralized ridge regression W = (ΦᵀΦ + λI)⁻¹ ΦᵀY, bias row regularised, λ = 0.01 (Fanì et al.
2024), whatever the split. This script solves that in float64 with numpy and prints its test accuracy,
which `build/release/examples/federated --strategy fed3r --features pixels` must reproduce for any
partition (docs/results/federated.md).

--export DIR writes what `--features file:DIR` reads: features.npy [n, 784] float32, labels.npy [n]
uint8, test_features.npy, test_labels.npy, and with --clients K a clients.npy [K, n/K] int64 of
row indices (a random equal split from --seed), so the same federation runs from files.
Needs numpy only (Debian: python3-numpy); reads the gzipped IDX files of dataset-fashion-mnist.
"""

import argparse
import gzip
import pathlib
import sys

import numpy as np

DEFAULT_DATA = pathlib.Path("/usr/share/datasets/fashion-mnist")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(data_dir / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(data_dir / f"{prefix}-labels-idx1-ubyte.gz")
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255), labels


def ridge(features, labels, classes, lam):
    phi = np.hstack([features.astype(np.float64), np.ones((len(features), 1))])
    a = phi.T @ phi + lam * np.eye(phi.shape[1])
    b = phi.T @ np.eye(classes)[labels]
    return np.linalg.solve(a, b)


def accuracy(w, features, labels):
    phi = np.hstack([features.astype(np.float64), np.ones((len(features), 1))])
    return float(np.mean(np.argmax(phi @ w, axis=1) == labels))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=pathlib.Path, default=DEFAULT_DATA)
    parser.add_argument("--lambda", dest="lam", type=float, default=0.01)
    parser.add_argument("--export", type=pathlib.Path, help="write features for file:DIR here")
    parser.add_argument("--clients", type=int, default=0, help="with --export: clients.npy of K")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not (args.data / "train-images-idx3-ubyte.gz").exists():
        sys.exit(f"fed3r_numpy: no Fashion-MNIST in {args.data} (apt-get install dataset-fashion-mnist)")
    x, y = load(args.data, "train")
    xt, yt = load(args.data, "test")
    w = ridge(x, y, 10, args.lam)
    print(f"numpy FED3R (centralized ridge, lambda {args.lam}) on pixels: test accuracy "
          f"{100 * accuracy(w, xt, yt):.2f} %")
    if args.export:
        args.export.mkdir(parents=True, exist_ok=True)
        np.save(args.export / "features.npy", x)
        np.save(args.export / "labels.npy", y.astype(np.uint8))
        np.save(args.export / "test_features.npy", xt)
        np.save(args.export / "test_labels.npy", yt.astype(np.uint8))
        if args.clients > 0:
            order = np.random.default_rng(args.seed).permutation(len(x))
            per = len(x) // args.clients
            np.save(args.export / "clients.npy",
                    order[:per * args.clients].reshape(args.clients, per).astype(np.int64))
        print(f"fed3r_numpy: wrote {args.export}")


if __name__ == "__main__":
    main()
