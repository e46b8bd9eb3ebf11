// quantize — quantizes LeNet-300-100 or LeNet-5 trained on Fashion-MNIST to an integer network
// and reports its accuracy, its size and the error of each layer.
//
//   build/examples/quantize --net mlp|lenet5 --mode ptq|qat --bits 8|4
//                           --observer minmax|mse|percentile [--uniform] --seed S --out r.json
//                           [--load DIR] [--epochs N] [--qat-epochs N] [--save DIR] [--data DIR]
//
// The float network comes from --load DIR (written by `train --save DIR`), or is trained here
// for --epochs epochs as `train` does. Post-training quantization (ptq) calibrates on
// --calibration-batches batches of 128 training images with the observer; quantization-aware
// training (qat) fine-tunes a fake-quantized copy with learned step sizes (LSQ) for --qat-epochs
// epochs first. With --bits 4 the input, the first layer's weights and the last layer stay 8-bit
// unless --uniform asks for 4 bits everywhere. Writes
//   {"net", "mode", "bits", "uniform", "observer", "seed", "fp32_accuracy", "quant_accuracy",
//    "model_bytes_fp32", "model_bytes_quant", "per_layer_sqnr_db": [...], "per_layer": [...]}
// --save DIR writes the integer model as .npy files (docs/quantization.md has the layout);
// build/examples/infer runs it. --export FILE.hpp writes it as one C++ header for a device
// (namespace edgescale_<net>).
#include <edgescale/data/fashion_mnist.hpp>

#include "common/cli.hpp"
#include "common/paths.hpp"
#include "quantize/options.hpp"

#include <exception>
#include <iostream>

using namespace edgescale;
using examples::quantize::Options;

namespace {

Options parse(int argc, char** argv) {
  Options o;
  examples::cli::Parser cli("quantize",
                            "Quantizes a Fashion-MNIST network to integers (post-training or "
                            "quantization-aware) and reports accuracy, size and per-layer error.");
  cli.option("--net", o.net, "NET", "LeNet-300-100 (mlp) or LeNet-5 (lenet5)")
      .choices("mlp|lenet5");
  cli.option("--mode", o.mode, "MODE", "post-training (ptq) or quantization-aware training (qat)")
      .choices("ptq|qat");
  cli.option("--bits", o.bits, "B", "bit width of weights and activations (8 or 4)");
  cli.option("--observer", o.observer, "OBS", "calibration observer of the activations")
      .choices("minmax|mse|percentile");
  cli.flag("--uniform", o.uniform,
           "the bit width everywhere (default: 8-bit input, first-layer "
           "weights and last layer)");
  cli.option("--seed", o.seed, "S", "seed of every random stream");
  cli.option("--out", o.out, "r.json", "results as JSON");
  cli.option("--load", o.load, "DIR", "the trained float network (train --save DIR)");
  cli.option("--epochs", o.epochs, "N", "float training epochs when there is no --load");
  cli.option("--qat-epochs", o.qat_epochs, "N", "quantization-aware fine-tuning epochs (qat)");
  cli.option("--qat-lr", o.qat_lr, "LR", "learning rate of the fine-tuning (cosine, SGD)");
  cli.option("--calibration-batches", o.calibration_batches, "N",
             "batches of 128 training images the observers see (ptq)");
  cli.option("--test-samples", o.test_samples, "N",
             "evaluate on the first N test images (0: all 10 000)");
  cli.option("--save", o.save, "DIR", "write the integer model as .npy files");
  cli.option("--export", o.export_path, "FILE.hpp",
             "write the integer model as a self-contained C++ header (quant/export.hpp)");
  o.data = data::default_fashion_mnist_dir().string();
  cli.option("--data", o.data, "DIR", "Fashion-MNIST directory");
  cli.parse(argc, argv);
  cli.require(o.bits == 8 || o.bits == 4, "--bits must be 8 or 4");
  cli.require(o.epochs >= 0 && o.qat_epochs >= 0, "--epochs and --qat-epochs must be >= 0");
  cli.require(o.calibration_batches > 0, "--calibration-batches must be positive");
  cli.require(o.qat_lr > 0, "--qat-lr must be positive");
  cli.require(o.test_samples >= 0, "--test-samples must be >= 0");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    examples::check_output_file(o.out, "--out");
    examples::check_output_dir(o.save, "--save");
    examples::check_output_file(o.export_path, "--export");
    examples::check_input_dir(o.load, "--load");
    if (o.net == "mlp") {
      return examples::quantize::run_mlp(o);
    }
    return examples::quantize::run_lenet5(o);
  } catch (const std::exception& e) {
    std::cerr << "quantize: " << e.what() << "\n";
    return 1;
  }
}
