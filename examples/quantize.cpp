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
// build/examples/infer runs it.
#include <edgescale/data/dataset.hpp>
#include <edgescale/data/fashion_mnist.hpp>
#include <edgescale/data/parameter_file.hpp>
#include <edgescale/nn.hpp>
#include <edgescale/quant/calibrate.hpp>
#include <edgescale/quant/observer.hpp>
#include <edgescale/quant/qnetwork.hpp>

#include "common/cli.hpp"
#include "common/instances.hpp"
#include "common/json.hpp"
#include "common/paths.hpp"
#include "networks.hpp"
#include "quantize/model_files.hpp"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

struct Options {
  std::string net = "lenet5";
  std::string mode = "ptq";
  int bits = 8;
  std::string observer = "minmax";
  bool uniform = false;
  std::uint64_t seed = 1;
  std::string out;
  std::string load;
  std::string save;
  std::string data;
  int epochs = 10;
  int qat_epochs = 3;
  double qat_lr = 0.01;
  int calibration_batches = 32;
  Index test_samples = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  examples::cli::Parser cli("quantize",
                            "Quantizes a Fashion-MNIST network to integers (post-training or "
                            "quantization-aware) and reports accuracy, size and per-layer error.");
  cli.option("--net", o.net, "NET", "LeNet-300-100 (mlp) or LeNet-5 (lenet5)")
      .choices("mlp|lenet5");
  cli.option("--mode", o.mode, "MODE", "post-training quantization (ptq)").choices("ptq");
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

template <class Net>
double float_accuracy(Net& net, const data::Dataset<float>& test) {
  nn::Trainer trainer{net};
  data::BatchSampler batches(test, std::min<Index>(500, test.size()));
  return trainer.evaluate(batches).accuracy;
}

template <class QNet>
double integer_accuracy(QNet& qnet, const data::Dataset<float>& test) {
  Index correct = 0;
  for (Index start = 0; start < test.size(); start += 500) {
    const Index n = std::min<Index>(500, test.size() - start);
    const auto classes = qnet.predict(ConstBatchView<float>(
        test.features.data() + start * test.sample_size(), test.sample_size(), n));
    for (Index j = 0; j < n; ++j) {
      correct +=
          classes[static_cast<std::size_t>(j)] == test.labels[static_cast<std::size_t>(start + j)];
    }
  }
  return static_cast<double>(correct) / static_cast<double>(test.size());
}

template <class Net, class MakeObserver>
auto post_training(Net& net, const data::Dataset<float>& train, const Options& o,
                   MakeObserver make) {
  quant::Calibrator cal(net, make);
  Rng pick = make_stream(o.seed, "calibration");
  std::vector<Index> order(static_cast<std::size_t>(train.size()));
  for (Index i = 0; i < train.size(); ++i) {
    order[static_cast<std::size_t>(i)] = i;
  }
  shuffle(order, pick);
  Matrix<float> batch(train.sample_size(), 128);
  for (int b = 0; b < o.calibration_batches; ++b) {
    for (Index j = 0; j < 128; ++j) {
      batch.col(j) =
          train.features.col(order[static_cast<std::size_t>((b * 128 + j) % train.size())]);
    }
    cal.observe(batch);
  }
  std::cerr << "calibrated on " << o.calibration_batches << " batches of 128 (" << o.observer
            << ")\n";
  return quant::convert(
      net, cal,
      {.weight_bits = o.bits,
       .activation_bits = o.bits,
       .eight_bit_ends = !o.uniform && o.bits < 8,
       .weight_range = o.observer == "mse" ? quant::WeightRange::mse : quant::WeightRange::minmax});
}

template <class Net>
int run(const Options& o, const std::string& net_name) {
  const auto dir = std::filesystem::path(o.data);
  std::cerr << "loading Fashion-MNIST from " << dir.string() << "\n";
  const auto train =
      data::load_fashion_mnist<float>(data::Split::train, dir, data::fashion_mnist_standardize);
  auto test =
      data::load_fashion_mnist<float>(data::Split::test, dir, data::fashion_mnist_standardize);
  data::require_sample_size(train, Net::input_shape::size, net_name);
  if (o.test_samples > 0 && o.test_samples < test.size()) {
    test.features.conservativeResize(Eigen::NoChange, o.test_samples);
    test.labels.resize(static_cast<std::size_t>(o.test_samples));
  }

  Rng init = make_stream(o.seed, "init");
  Net net{nn::init::kaiming_normal, init};
  if (!o.load.empty()) {
    data::load_parameters(net, o.load);
    std::cerr << "loaded the float " << net_name << " from " << o.load << "\n";
  } else {
    nn::Trainer trainer{net};
    nn::SGD opt{{.learning_rate = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 5e-4}};
    data::BatchSampler train_batches(train, 64);
    data::BatchSampler test_batches(test, std::min<Index>(500, test.size()));
    Rng shuffle_rng = make_stream(o.seed, "shuffle");
    std::cerr << "training the float " << net_name << " for " << o.epochs << " epochs\n";
    (void)nn::fit(trainer, opt, train_batches, test_batches, {.epochs = o.epochs},
                  nn::CosineSchedule{.base = 0.05, .epochs = std::max(o.epochs, 1)}, shuffle_rng,
                  nn::ProgressDisplay{std::cerr});
  }
  net.set_training(false);
  const double fp32 = float_accuracy(net, test);
  std::cerr << net_name << " fp32 test accuracy " << 100 * fp32 << " %\n";

  const auto start = std::chrono::steady_clock::now();
  auto report = [&](auto& qnet) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double accuracy = integer_accuracy(qnet, test);
    const auto errors =
        quant::layer_errors(net, qnet,
                            ConstBatchView<float>(test.features.data(), test.sample_size(),
                                                  std::min<Index>(1000, test.size())));
    const auto size = examples::quantize::model_bytes(qnet);
    std::cout.setf(std::ios::fixed);
    std::cout.precision(2);
    std::cout << net_name << " " << o.mode << " " << o.bits << "-bit"
              << (o.uniform ? " uniform" : "") << ": fp32 " << 100 * fp32 << " %, integer "
              << 100 * accuracy << " % (" << 100 * (accuracy - fp32) << " points); " << size.fp32
              << " -> " << size.quantized << " bytes\n";
    for (const auto& e : errors) {
      std::cout << "  layer " << e.path << ": SQNR " << e.sqnr_db << " dB\n";
    }
    if (!o.out.empty()) {
      std::ofstream json(o.out);
      examples::json::Writer j(json);
      j.begin_object();
      j.field("net", o.net).field("mode", o.mode).field("bits", o.bits);
      j.field("uniform", o.uniform).field("observer", o.observer).field("seed", o.seed);
      j.field("fp32_accuracy", fp32).field("quant_accuracy", accuracy);
      j.field("model_bytes_fp32", size.fp32).field("model_bytes_quant", size.quantized);
      j.field("seconds", seconds);
      j.key("per_layer_sqnr_db").begin_array();
      for (const auto& e : errors) {
        j.value(e.sqnr_db);
      }
      j.end_array();
      j.key("per_layer").begin_array();
      for (const auto& e : errors) {
        j.begin_object().field("layer", e.path).field("sqnr_db", e.sqnr_db).field("mse", e.mse);
        j.end_object();
      }
      j.end_array();
      j.end_object();
      if (!json) {
        throw error("cannot write " + o.out);
      }
      std::cerr << "wrote " << o.out << "\n";
    }
    if (!o.save.empty()) {
      examples::quantize::save_model(qnet, o.net, o.save);
      std::cerr << "saved the integer model to " << o.save << "/\n";
    }
  };
  {
    if (o.observer == "percentile") {
      auto qnet = post_training(net, train, o, [] { return quant::Percentile{}; });
      report(qnet);
    } else if (o.observer == "mse") {
      auto qnet = post_training(net, train, o, [] { return quant::MseClipping<8>{}; });
      report(qnet);
    } else {
      auto qnet = post_training(net, train, o, [] { return quant::MinMax{}; });
      report(qnet);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    examples::check_output_file(o.out, "--out");
    examples::check_output_dir(o.save, "--save");
    examples::check_input_dir(o.load, "--load");
    if (o.net == "mlp") {
      return run<examples::LeNet300100<>>(o, "LeNet-300-100");
    }
    return run<examples::LeNet5<>>(o, "LeNet-5");
  } catch (const std::exception& e) {
    std::cerr << "quantize: " << e.what() << "\n";
    return 1;
  }
}
