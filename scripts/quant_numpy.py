#!/usr/bin/env python3
"""Recomputes a saved edgescale integer model in numpy and checks it against `infer`, code for code.

    scripts/quant_numpy.py --model DIR --infer build/examples/infer [--samples 500] [--work TMP]

DIR was written by `quantize --save DIR` (LeNet-300-100 or LeNet-5). The script writes the first
--samples Fashion-MNIST test images (standardised as the examples do) to X.npy, runs
`infer --load DIR --inputs X.npy --out Y.npy`, recomputes the int8 output codes from the .npy files
alone with the arithmetic docs/quantization.md documents (TFLite's: int32 accumulation, the
zero-point correction in the bias, the rounding doubling high multiply, the rounding divide by a
power of two, the clamp), and exits non-zero unless every code agrees. Nothing from edgescale's C++
is used here but the files and the program's output.
"""
import argparse
import gzip
import os
import subprocess
import sys
import tempfile

import numpy as np

MEAN, STD = 0.2860, 0.3530  # data::fashion_mnist_standardize


def load_test_images(n):
    root = os.environ.get("EDGESCALE_FASHION_MNIST_DIR") or "/usr/share/datasets/fashion-mnist"
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"):
        path = os.path.join(root, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                raw = f.read()
            count = int.from_bytes(raw[4:8], "big")
            pixels = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, 784)[:n]
            x = pixels.astype(np.float32) / np.float32(255)
            return ((x - np.float32(MEAN)) / np.float32(STD)).astype(np.float32)
    sys.exit(f"quant_numpy.py: no Fashion-MNIST test images under {root}")


def load(d, name):
    return np.load(os.path.join(d, name + ".npy"))


def params(d, name):
    rng = load(d, name + ".range")
    return float(load(d, name + ".scale")), int(load(d, name + ".zero_point")), int(rng[0]), int(rng[1])


def quantize_input(x, d):
    scale, zp, qmin, qmax = params(d, "input")
    r = np.rint(x / np.float32(scale)).astype(np.float32)  # float32 division, ties to even
    return np.clip(r + np.float32(zp), qmin, qmax).astype(np.int64)


def trunc_div(x, d):
    return np.where(x >= 0, x // d, -((-x) // d))


def requantize(acc, multiplier, shift):
    """TFLite's MultiplyByQuantizedMultiplier on int64 arrays holding int32 values."""
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    x = np.clip(acc * (np.int64(1) << left), -(2**31), 2**31 - 1)
    ab = x * multiplier
    nudge = np.where(ab >= 0, np.int64(1) << 30, 1 - (np.int64(1) << 30))
    high = trunc_div(ab + nudge, np.int64(1) << 31)
    mask = (np.int64(1) << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + (remainder > threshold)


def weighted(d, layer, patches):
    """patches: (..., fan_in) int64 codes -> (..., out) int64 output codes."""
    w = load(d, f"{layer}.weight").astype(np.int64)
    w = w.reshape(w.shape[0], -1)  # OHWI / (out, in) -> (out, fan_in)
    acc = patches @ w.T + load(d, f"{layer}.bias").astype(np.int64)
    assert np.all(np.abs(acc) < 2**31), "int32 accumulator overflow"
    _, zp, _, _ = params(d, f"{layer}.output")
    out = requantize(acc, load(d, f"{layer}.multiplier").astype(np.int64),
                     load(d, f"{layer}.shift").astype(np.int64)) + zp
    lo, hi = load(d, f"{layer}.clamp")
    return np.clip(out, lo, hi)


def conv(d, layer, x, k, pad):
    """x: (N, H, W, C) codes, NHWC; weights OHWI; padding with the input's zero point."""
    _, zp_in, _, _ = params(d, f"{layer}.input")
    n, h, w, c = x.shape
    xp = np.full((n, h + 2 * pad, w + 2 * pad, c), zp_in, dtype=np.int64)
    xp[:, pad:pad + h, pad:pad + w, :] = x
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    patches = np.stack([xp[:, ky:ky + oh, kx:kx + ow, :] for ky in range(k) for kx in range(k)],
                       axis=3)  # (N, oh, ow, k*k, C): (ky, kx, c) order
    return weighted(d, layer, patches.reshape(n, oh, ow, k * k * c))


def max_pool(x):
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def relu(d, layer, x, zp):
    return x if int(load(d, f"{layer}.fused")) else np.maximum(x, zp)


def recompute(d, net, x):
    q = quantize_input(x, d)
    if net == "mlp":
        h = weighted(d, 0, q)
        h = relu(d, 1, h, params(d, "0.output")[1])
        h = weighted(d, 2, h)
        h = relu(d, 3, h, params(d, "2.output")[1])
        return weighted(d, 4, h)
    h = q.reshape(-1, 28, 28, 1)  # one channel: CHW == HWC
    h = relu(d, 1, conv(d, 0, h, 5, 2), params(d, "0.output")[1])
    h = max_pool(h)
    h = relu(d, 4, conv(d, 3, h, 5, 0), params(d, "3.output")[1])
    h = max_pool(h)
    h = h.transpose(0, 3, 1, 2).reshape(h.shape[0], -1)  # Flatten: NHWC -> PyTorch's CHW order
    h = relu(d, 8, weighted(d, 7, h), params(d, "7.output")[1])
    h = relu(d, 10, weighted(d, 9, h), params(d, "9.output")[1])
    return weighted(d, 11, h)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--infer", required=True)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    with open(os.path.join(a.model, "model.txt")) as f:
        lines = f.read().split("\n")
    net = lines[1].split()[1]
    work = a.work or tempfile.mkdtemp(prefix="edgescale-quant-")
    x = load_test_images(a.samples)
    xp, yp = os.path.join(work, "X.npy"), os.path.join(work, "Y.npy")
    np.save(xp, x)
    subprocess.run([a.infer, "--load", a.model, "--inputs", xp, "--out", yp], check=True)
    codes = np.load(os.path.join(work, "Y.codes.npy")).astype(np.int64)
    ours = recompute(a.model, net, x)
    differ = int(np.sum(codes != ours))
    print(f"quant_numpy.py: {net}, {a.samples} samples, {codes.size} output codes, "
          f"{differ} differ between infer and numpy")
    logits = np.load(yp)
    scale, zp, _, _ = params(a.model, f"{4 if net == 'mlp' else 11}.output")
    assert np.allclose(logits, np.float32(scale) * (codes - zp)), "Y.npy is not the dequantized codes"
    return 0 if differ == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
