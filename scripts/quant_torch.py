#!/usr/bin/python3
"""PyTorch's own quantization of LeNet-5 on Fashion-MNIST: the peer of edgescale's `quantize`.

    /usr/bin/python3 scripts/quant_torch.py --seed 1 --out /work/runs/torch_quant.json
        [--load-fp32 lenet5.pt | --save-fp32 lenet5.pt] [--epochs 10] [--qat-epochs 5]
        [--backend auto|fbgemm|onednn|qnnpack] [--data DIR]

Needs torch (1.13 tested; Debian's /usr/bin/python3 has it) and numpy; runs on one CPU thread.
Reads Fashion-MNIST from the IDX files itself ($EDGESCALE_FASHION_MNIST_DIR or
/usr/share/datasets/fashion-mnist, gzipped or not), pixels / 255 standardised with edgescale's
mean 0.2860 and std 0.3530, and then:

  1. trains LeNet-5 as edgescale's `train --net lenet5` does (Kaiming-normal fan-in weights, zero
     biases; SGD lr 0.05, Nesterov momentum 0.9, weight decay 5e-4, batch 64, cosine per epoch
     lr_e = 0.5 * lr * (1 + cos(pi * e / E)), 10 epochs), or loads it (--load-fp32);
  2. PTQ int8: eager-mode post-training quantization with the backend's default qconfig
     (per-channel symmetric int8 weights, histogram-observed activations), calibrated on 32
     batches of 128 training images, converted to real int8 kernels;
  3. QAT 4-bit with 8-bit ends (input, first layer's weights, last layer's weights and output at
     8 bits), all-4-bit QAT, and PTQ 4-bit, all with FakeQuantize: PyTorch has no 4-bit integer
     kernels, so these accuracies are those of the fake-quantized float model;
  4. times batch-1 inference of the fp32 and the int8 model (median of --timing-runs runs).

Writes one JSON object (--out, default stdout); progress goes to stderr. Accuracies are
fractions of the 10 000 test images. Weights at b bits use the narrow symmetric codes
[-(2^(b-1) - 1), 2^(b-1) - 1] in the QAT and 4-bit PTQ runs, as edgescale's do; activations use
affine codes [0, 2^b - 1]. The "notes" field lists every qconfig as instantiated.
"""
import argparse
import copy
import gzip
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.ao.quantization as tq
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = 0.2860, 0.3530  # edgescale's data::fashion_mnist_standardize
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
FUSIONS = [["conv1", "relu1"], ["conv2", "relu2"], ["fc1", "relu3"], ["fc2", "relu4"]]
WEIGHTED = ["conv1", "conv2", "fc1", "fc2", "fc3"]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Data


def read_idx(path):
    """An IDX file (gzipped when the name ends in .gz) as a uint8 numpy array of its shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(shape):
        raise ValueError(f"{path}: {data.size} bytes of data for shape {shape}")
    return data.reshape(shape)


def find_file(root, name):
    for candidate in (name + ".gz", name):
        path = os.path.join(root, candidate)
        if os.path.exists(path):
            return path
    sys.exit(f"quant_torch.py: no {name}[.gz] under {root}")


def load_split(root, prefix):
    """(images N x 1 x 28 x 28 float32 standardised, labels N int64) of 'train' or 't10k'."""
    images = read_idx(find_file(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find_file(root, f"{prefix}-labels-idx1-ubyte"))
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255))
    x = ((x - MEAN) / STD).unsqueeze(1).contiguous()
    return x, torch.from_numpy(labels.astype(np.int64))


# ---------------------------------------------------------------------------------------------
# The network


class LeNet5(nn.Module):
    """edgescale's examples::LeNet5, with the stubs eager-mode quantization needs at its ends."""

    def __init__(self):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(400, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, 10)
        self.dequant = tq.DeQuantStub()
        for name in WEIGHTED:
            layer = getattr(self, name)
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(self.quant(x))))
        x = self.flatten(self.pool2(self.relu2(self.conv2(x))))
        x = self.relu4(self.fc2(self.relu3(self.fc1(x))))
        return self.dequant(self.fc3(x))


def evaluate(model, data, batch=1000):
    x, y = data
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(y), batch):
            correct += (model(x[start : start + batch]).argmax(1) == y[start : start + batch]).sum()
    return int(correct) / len(y)


def cosine(base, epoch, epochs):
    return 0.5 * base * (1 + math.cos(math.pi * epoch / epochs))


def fit(model, optimizer, base_lr, epochs, train, test, seed, label, batch=64, on_epoch=None,
        test_accuracy=evaluate):
    """Mini-batch training with a per-epoch cosine learning rate; returns the history."""
    x, y = train
    shuffle = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        if on_epoch is not None:
            on_epoch(epoch)
        lr = cosine(base_lr, epoch, epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        start = time.perf_counter()
        model.train()
        loss_sum, correct = 0.0, 0
        order = torch.randperm(len(y), generator=shuffle)
        for first in range(0, len(y), batch):
            idx = order[first : first + batch]
            logits = model(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss) * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
        accuracy = test_accuracy(model, test)
        row = {
            "epoch": epoch + 1,
            "learning_rate": lr,
            "train_loss": loss_sum / len(y),
            "train_accuracy": correct / len(y),
            "test_accuracy": accuracy,
            "seconds": time.perf_counter() - start,
        }
        history.append(row)
        log(f"{label} epoch {epoch + 1}/{epochs}: lr {lr:.5f}, train loss {row['train_loss']:.4f}, "
            f"train {100 * row['train_accuracy']:.2f} %, test {100 * accuracy:.2f} % "
            f"({row['seconds']:.1f} s)")
    return history


# ---------------------------------------------------------------------------------------------
# Quantization configurations


def activation_fake_quant(bits, observer):
    """Affine per-tensor activation codes [0, 2^bits - 1] (quint8 container)."""
    return tq.FakeQuantize.with_args(observer=observer, quant_min=0, quant_max=2**bits - 1,
                                     dtype=torch.quint8, qscheme=torch.per_tensor_affine)


def weight_fake_quant(bits, observer):
    """Symmetric per-output-channel weight codes [-(2^(bits-1) - 1), 2^(bits-1) - 1] (narrow)."""
    q = 2 ** (bits - 1) - 1
    return tq.FakeQuantize.with_args(observer=observer, quant_min=-q, quant_max=q,
                                     dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                     ch_axis=0)


def fake_qconfig(weight_bits, activation_bits, moving_average):
    """QAT uses PyTorch's default moving-average min-max observers; PTQ plain min-max ones."""
    if moving_average:
        act_obs, w_obs = tq.MovingAverageMinMaxObserver, tq.MovingAveragePerChannelMinMaxObserver
    else:
        act_obs, w_obs = tq.MinMaxObserver, tq.PerChannelMinMaxObserver
    return tq.QConfig(activation=activation_fake_quant(activation_bits, act_obs),
                      weight=weight_fake_quant(weight_bits, w_obs))


def bit_plan(bits, eight_bit_ends):
    """{module: (weight bits, output activation bits)}; 'quant' is the input (its activation).

    With eight_bit_ends, edgescale's rule: the input, the first weighted layer's weights and the
    last weighted layer's weights and output at 8 bits, `bits` everywhere else."""
    end = 8 if eight_bit_ends else bits
    plan = {"quant": (None, end), "conv1": (end, bits)}
    plan.update({name: (bits, bits) for name in ("conv2", "fc1", "fc2")})
    plan["fc3"] = (end, end)
    return plan


def describe_observer(obs):
    parts = [type(obs).__name__, str(obs.dtype).replace("torch.", ""),
             str(obs.qscheme).replace("torch.", ""), f"[{obs.quant_min}, {obs.quant_max}]"]
    if getattr(obs, "reduce_range", False):
        parts.append("reduce_range")
    if hasattr(obs, "averaging_constant"):
        parts.append(f"averaging_constant={obs.averaging_constant}")
    return " ".join(parts)


def describe(factory):
    """The observer or FakeQuantize a qconfig factory builds, in words."""
    made = factory()
    if isinstance(made, tq.FakeQuantize):
        return "FakeQuantize(" + describe_observer(made.activation_post_process) + ")"
    return describe_observer(made)


def describe_qconfig(qconfig, input_only=False):
    if input_only:
        return "activation " + describe(qconfig.activation)
    return f"weight {describe(qconfig.weight)}; output activation {describe(qconfig.activation)}"


def fake_quantized(fp32_state, bits, eight_bit_ends, moving_average):
    """A fused, QAT-prepared (FakeQuantize everywhere the integer network quantizes) LeNet-5 and
    the notes describing its qconfigs."""
    model = LeNet5()
    model.load_state_dict(fp32_state)
    model.train()
    tq.fuse_modules_qat(model, FUSIONS, inplace=True)
    notes = []
    for name, (wbits, abits) in bit_plan(bits, eight_bit_ends).items():
        qconfig = fake_qconfig(wbits or 8, abits, moving_average)
        getattr(model, name).qconfig = qconfig
        notes.append(f"{name}: " + describe_qconfig(qconfig, input_only=wbits is None))
    model.dequant.qconfig = model.fc3.qconfig  # observes nothing; lets tq.convert dequantize
    tq.prepare_qat(model, inplace=True)
    return model, notes


def fake_quant_accuracy(model, data):
    """Test accuracy with fake quantization on and the observers frozen, restoring them."""
    states = [(m, bool(m.observer_enabled)) for m in model.modules()
              if isinstance(m, tq.FakeQuantizeBase)]
    model.apply(tq.disable_observer)
    accuracy = evaluate(model, data)
    for m, observing in states:
        m.enable_observer(observing)
    return accuracy


def calibration_batches(train, count, seed, batch=128):
    order = torch.randperm(len(train[1]), generator=torch.Generator().manual_seed(seed))
    return [train[0][order[i * batch : (i + 1) * batch]] for i in range(count)]


# ---------------------------------------------------------------------------------------------
# The experiments


def ptq_int8(fp32_state, backend, calibration, test):
    model = LeNet5()
    model.load_state_dict(fp32_state)
    model.eval()
    tq.fuse_modules(model, FUSIONS, inplace=True)
    qconfig = tq.get_default_qconfig(backend)
    model.qconfig = qconfig
    tq.prepare(model, inplace=True)
    with torch.no_grad():
        for batch in calibration:
            model(batch)
    tq.convert(model, inplace=True)
    note = (f"ptq_int8: eager mode, engine '{backend}', every layer "
            f"tq.get_default_qconfig('{backend}') = "
            + describe_qconfig(qconfig) + "; conv+relu and linear+relu fused; converted to int8 kernels")
    return model, evaluate(model, test), note


def ptq_fake(fp32_state, bits, eight_bit_ends, calibration, test):
    """PTQ emulated with FakeQuantize: observers see float activations during calibration, then
    quantization is switched on with the observed ranges frozen."""
    model, notes = fake_quantized(fp32_state, bits, eight_bit_ends, moving_average=False)
    model.eval()
    model.apply(tq.disable_fake_quant)
    with torch.no_grad():
        for batch in calibration:
            model(batch)
    model.apply(tq.disable_observer)
    model.apply(tq.enable_fake_quant)
    return evaluate(model, test), notes


def qat(fp32_state, bits, eight_bit_ends, args, train, test, label):
    """QAT from the float weights: SGD (momentum 0.9) with a cosine lr over --qat-epochs; the
    observers track ranges (moving average) until the last epoch, which trains with them frozen.
    Returns the fake-quantized model (observers frozen), its history and notes."""
    model, notes = fake_quantized(fp32_state, bits, eight_bit_ends, moving_average=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.qat_lr, momentum=0.9)
    freeze_at = args.qat_epochs - 1 if args.qat_epochs > 1 else None

    def on_epoch(epoch):
        if epoch == freeze_at:
            model.apply(tq.disable_observer)
            log(f"{label}: observers frozen for the last epoch")

    history = fit(model, optimizer, args.qat_lr, args.qat_epochs, train, test, args.seed + 1000,
                  label, on_epoch=on_epoch, test_accuracy=fake_quant_accuracy)
    model.apply(tq.disable_observer)
    return model, history, notes


def median_us(model, x, runs, warmup=200):
    model.eval()
    times = []
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        for _ in range(runs):
            start = time.perf_counter_ns()
            model(x)
            times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def pick_backend(requested):
    engines = torch.backends.quantized.supported_engines
    if requested == "auto":
        requested = "fbgemm" if "fbgemm" in engines else "onednn"
    if requested not in engines:
        sys.exit(f"quant_torch.py: quantized engine '{requested}' is not in this torch build "
                 f"(supported: {engines})")
    return requested


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=1, help="seed of initialisation and shuffling")
    p.add_argument("--out", help="write the JSON here (default: stdout)")
    p.add_argument("--data", default=os.environ.get("EDGESCALE_FASHION_MNIST_DIR") or DEFAULT_DATA,
                   help="Fashion-MNIST directory (IDX files, gzipped or not)")
    p.add_argument("--load-fp32", metavar="PATH", help="start from this state_dict, no training")
    p.add_argument("--save-fp32", metavar="PATH", help="save the trained float state_dict here")
    p.add_argument("--epochs", type=int, default=10, help="float training epochs")
    p.add_argument("--lr", type=float, default=0.05, help="float base learning rate (cosine)")
    p.add_argument("--qat-epochs", type=int, default=5, help="QAT fine-tuning epochs")
    p.add_argument("--qat-lr", type=float, default=0.01, help="QAT base learning rate (cosine)")
    p.add_argument("--calibration-batches", type=int, default=32, help="PTQ batches of 128")
    p.add_argument("--timing-runs", type=int, default=2000, help="batch-1 runs timed per model")
    p.add_argument("--backend", default="auto", choices=["auto", "fbgemm", "onednn", "qnnpack"],
                   help="int8 engine; auto: fbgemm if this torch has it, else onednn (both x86)")
    args = p.parse_args()
    if args.epochs < 1 or args.qat_epochs < 1 or args.calibration_batches < 1:
        p.error("--epochs, --qat-epochs and --calibration-batches must be positive")
    return args


def main():
    started = time.perf_counter()
    args = parse_args()
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    backend = pick_backend(args.backend)
    torch.backends.quantized.engine = backend
    torch.manual_seed(args.seed)
    seconds = {}
    result = {"torch_version": torch.__version__, "backend": backend, "seed": args.seed,
              "threads": torch.get_num_threads()}
    notes = []

    t = time.perf_counter()
    log(f"loading Fashion-MNIST from {args.data}")
    train, test = load_split(args.data, "train"), load_split(args.data, "t10k")
    seconds["load_data"] = time.perf_counter() - t

    t = time.perf_counter()
    fp32 = LeNet5()
    if args.load_fp32:
        fp32.load_state_dict(torch.load(args.load_fp32))
        log(f"loaded the float LeNet-5 from {args.load_fp32}")
        result["fp32_source"] = args.load_fp32
    else:
        optimizer = torch.optim.SGD(fp32.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                                    weight_decay=5e-4)
        result["fp32_history"] = fit(fp32, optimizer, args.lr, args.epochs, train, test,
                                     args.seed, "fp32")
        result["fp32_epochs"] = args.epochs
        if args.save_fp32:
            torch.save(fp32.state_dict(), args.save_fp32)
            log(f"saved the float LeNet-5 to {args.save_fp32}")
    seconds["fp32_train"] = time.perf_counter() - t
    fp32_state = copy.deepcopy(fp32.state_dict())
    result["fp32_accuracy"] = evaluate(fp32, test)
    log(f"fp32 test accuracy {100 * result['fp32_accuracy']:.2f} %")

    calibration = calibration_batches(train, args.calibration_batches, args.seed)

    t = time.perf_counter()
    int8, result["ptq_int8_accuracy"], note = ptq_int8(fp32_state, backend, calibration, test)
    seconds["ptq_int8"] = time.perf_counter() - t
    notes.append(note)
    log(f"PTQ int8 ({backend}) test accuracy {100 * result['ptq_int8_accuracy']:.2f} %")

    t = time.perf_counter()
    accuracy, _ = ptq_fake(fp32_state, 8, False, calibration, test)
    result["checks"] = {"ptq8_fakequant_minmax_accuracy": accuracy}
    seconds["ptq8_fakequant_check"] = time.perf_counter() - t
    log(f"PTQ 8-bit fake-quant min-max (check of the fake-quant path) {100 * accuracy:.2f} %")

    for key, ends in (("ptq4_accuracy", False), ("ptq4_ends8_accuracy", True)):
        t = time.perf_counter()
        result[key], layer_notes = ptq_fake(fp32_state, 4, ends, calibration, test)
        seconds[key.replace("_accuracy", "")] = time.perf_counter() - t
        notes.append(f"{key.replace('_accuracy', '')}: fake-quantized PTQ, "
                     f"{args.calibration_batches} x 128 calibration images, "
                     + "; ".join(layer_notes))
        log(f"{key}: {100 * result[key]:.2f} % (fake-quantized)")

    result["histories"] = {}
    for name, ends in (("qat4_ends8", True), ("qat4_uniform", False)):
        t = time.perf_counter()
        model, history, layer_notes = qat(fp32_state, 4, ends, args, train, test, name)
        seconds[name] = time.perf_counter() - t
        result[f"{name}_accuracy"] = fake_quant_accuracy(model, test)
        result["histories"][name] = history
        notes.append(f"{name}: QAT from the fp32 model, {args.qat_epochs} epochs, SGD lr "
                     f"{args.qat_lr} cosine per epoch, momentum 0.9, no weight decay, batch 64, "
                     + ("observers frozen for the last epoch, " if args.qat_epochs > 1 else "")
                     + "evaluated fake-quantized; "
                     + "; ".join(layer_notes))
        log(f"{name}: {100 * result[f'{name}_accuracy']:.2f} % (fake-quantized)")
        if ends:
            # 4-bit codes fit the int8 kernels' containers: convert and run them for real. The
            # kernels clamp activations to [0, 255], not [0, 15], so this is not exact 4-bit.
            t = time.perf_counter()
            converted = tq.convert(copy.deepcopy(model).eval(), inplace=False)
            result["qat4_ends8_int8_kernels_accuracy"] = evaluate(converted, test)
            seconds["qat4_ends8_int8_kernels"] = time.perf_counter() - t
            log(f"qat4_ends8 run by the {backend} int8 kernels: "
                f"{100 * result['qat4_ends8_int8_kernels_accuracy']:.2f} %")

    t = time.perf_counter()
    x = test[0][:1]
    result["batch1_fp32_us"] = median_us(fp32, x, args.timing_runs)
    result["batch1_int8_us"] = median_us(int8, x, args.timing_runs)
    result["batch1_fp32_over_int8"] = result["batch1_fp32_us"] / result["batch1_int8_us"]
    result["timing_runs"] = args.timing_runs
    seconds["timing"] = time.perf_counter() - t
    log(f"batch 1: fp32 {result['batch1_fp32_us']:.1f} us, int8 {result['batch1_int8_us']:.1f} us")

    if backend != "qnnpack" and "qnnpack" in torch.backends.quantized.supported_engines:
        # The ARM/mobile engine, for context: its default qconfig has per-tensor weights.
        t = time.perf_counter()
        torch.backends.quantized.engine = "qnnpack"
        model, accuracy, note = ptq_int8(fp32_state, "qnnpack", calibration, test)
        result["qnnpack"] = {"ptq_int8_accuracy": accuracy,
                             "batch1_int8_us": median_us(model, x, args.timing_runs)}
        torch.backends.quantized.engine = backend
        seconds["qnnpack"] = time.perf_counter() - t
        notes.append(note.replace("ptq_int8:", "qnnpack.ptq_int8:"))
        log(f"qnnpack PTQ int8: {100 * accuracy:.2f} %, batch 1 "
            f"{result['qnnpack']['batch1_int8_us']:.1f} us")

    notes += [
        "4-bit results (qat4_*, ptq4*) are fake-quantized float models: PyTorch (eager or FX "
        "convert) has no 4-bit integer kernels; weights 4-bit narrow symmetric [-7, 7] per output "
        "channel, activations 4-bit affine [0, 15] per tensor",
        "qat4_ends8_int8_kernels: the QAT 4-bit/8-bit-ends model converted with tq.convert and run "
        f"by the {backend} int8 kernels; its weight codes stay in [-7, 7] but activations are "
        "clamped to [0, 255], not [0, 15], so it is 4-bit weights, not exactly 4-bit activations",
        "PTQ 4-bit uses MinMaxObserver for activations: HistogramObserver's range search assumes "
        "256 codes (2^bits of its dtype) whatever quant_min/quant_max say",
        "checks.ptq8_fakequant_minmax_accuracy: 8-bit PTQ through the same FakeQuantize path "
        "(narrow [-127, 127] weights, min-max activations), to compare with ptq_int8",
        f"batch-1 timing: one test image, {args.timing_runs} runs after 200 warm-up, median, "
        f"torch.set_num_threads(1), quantized engine '{backend}'",
    ]
    if backend != "fbgemm":
        notes.append(f"this torch build has no fbgemm engine (supported: "
                     f"{torch.backends.quantized.supported_engines}); '{backend}' used instead")
    seconds["total"] = time.perf_counter() - started
    result["seconds"] = seconds
    result["notes"] = notes

    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        log(f"wrote {args.out}")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
