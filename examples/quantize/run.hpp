// examples/quantize/run.hpp — the quantize example's work for one network (examples/quantize.cpp
// has the flags; quantize/run_mlp.cpp and run_lenet5.cpp compile this once per network, so that
// each translation unit stays small).
#pragma once

#include <edgescale/data/dataset.hpp>
#include <edgescale/data/fashion_mnist.hpp>
#include <edgescale/data/parameter_file.hpp>
#include <edgescale/nn.hpp>
#include <edgescale/quant/calibrate.hpp>
#include <edgescale/quant/export.hpp>
#include <edgescale/quant/observer.hpp>
#include <edgescale/quant/qat.hpp>
#include <edgescale/quant/qnetwork.hpp>

#include "../common/instances.hpp"
#include "../common/json.hpp"
#include "../networks.hpp"
#include "model_files.hpp"
#include "options.hpp"

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace edgescale::examples::quantize {

namespace detail {

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

/// Quantization-aware training: a fake-quantized twin of `net` prepared on 1024 training images
/// (LSQ's initial steps), fine-tuned for --qat-epochs epochs (SGD with Nesterov momentum 0.9, no
/// weight decay: it would shrink the learned steps, cosine schedule from --qat-lr), converted.
/// `tuned` receives the fine-tuned float weights (the reference of the per-layer errors).
template <class Net>
quant::qnetwork_t<Net> quantization_aware(Net& net, Net& tuned, const data::Dataset<float>& train,
                                          const data::Dataset<float>& test, const Options& o,
                                          double& fake_accuracy) {
  quant::qat_network_t<Net> qat;
  Rng pick = make_stream(o.seed, "calibration");
  Matrix<float> calibration(train.sample_size(), 1024);
  for (Index j = 0; j < calibration.cols(); ++j) {
    calibration.col(j) = train.features.col(
        static_cast<Index>(uniform_index(pick, static_cast<std::uint64_t>(train.size()))));
  }
  quant::Precision precision{
      .input_bits = o.bits, .weight_bits = o.bits, .activation_bits = o.bits};
  if (!o.uniform && o.bits < 8) {
    precision = quant::eight_bit_ends(net, o.bits);
  }
  quant::prepare_qat(qat, net, calibration, precision);
  nn::Trainer trainer{qat};
  nn::SGD opt{{.learning_rate = o.qat_lr, .momentum = 0.9, .nesterov = true}};
  data::BatchSampler train_batches(train, 64);
  data::BatchSampler test_batches(test, std::min<Index>(500, test.size()));
  Rng shuffle_rng = make_stream(o.seed, "qat-shuffle");
  std::cerr << "quantization-aware training: " << o.qat_epochs
            << " epochs from the float weights\n";
  const auto history =
      nn::fit(trainer, opt, train_batches, test_batches, {.epochs = o.qat_epochs},
              nn::CosineSchedule{.base = o.qat_lr, .epochs = std::max(o.qat_epochs, 1)},
              shuffle_rng, nn::ProgressDisplay{std::cerr});
  qat.set_training(false);
  fake_accuracy =
      history.empty() ? trainer.evaluate(test_batches).accuracy : history.back().test.accuracy;
  copy_tensors(qat, tuned, TensorMatch::source_extra);
  tuned.set_training(false);
  return quant::convert(qat);
}

/// What the report says besides the integer network's own figures.
struct Report {
  const Options& o;
  std::string net_name;
  double fp32 = 0;
  double fake_accuracy = -1;  ///< QAT: the fake-quantized network's accuracy
  double seconds = 0;         ///< calibration or fine-tuning, and conversion
};

/// Accuracy, per-layer errors against `reference` (the float weights the integer network was
/// made from), sizes: printed, written as JSON (--out), and the model saved (--save).
template <class Net>
void report(const Report& r, Net& reference, quant::qnetwork_t<Net>& qnet,
            const data::Dataset<float>& test) {
  const Options& o = r.o;
  const double accuracy = integer_accuracy(qnet, test);
  const auto errors =
      quant::layer_errors(reference, qnet,
                          ConstBatchView<float>(test.features.data(), test.sample_size(),
                                                std::min<Index>(1000, test.size())));
  const quant::ModelSize size = quant::model_size(qnet);
  std::cout.setf(std::ios::fixed);
  std::cout.precision(2);
  std::cout << r.net_name << " " << o.mode << " " << o.bits << "-bit"
            << (o.uniform ? " uniform" : "") << ": fp32 " << 100 * r.fp32 << " %, integer "
            << 100 * accuracy << " % (" << 100 * (accuracy - r.fp32) << " points); "
            << size.fp32_bytes << " -> " << size.quantized_bytes << " bytes\n";
  for (const auto& e : errors) {
    std::cout << "  layer " << e.path << ": SQNR " << e.sqnr_db << " dB\n";
  }
  if (!o.out.empty()) {
    std::ofstream json(o.out);
    json::Writer j(json);
    j.begin_object();
    j.field("net", o.net).field("mode", o.mode).field("bits", o.bits);
    j.field("uniform", o.uniform).field("observer", o.observer).field("seed", o.seed);
    j.field("fp32_accuracy", r.fp32).field("quant_accuracy", accuracy);
    j.field("model_bytes_fp32", size.fp32_bytes).field("model_bytes_quant", size.quantized_bytes);
    j.field("model_bytes_quant_sparse", size.sparse_bytes);
    j.field("seconds", r.seconds);
    if (r.fake_accuracy >= 0) {
      j.field("qat_fake_quant_accuracy", r.fake_accuracy).field("qat_epochs", o.qat_epochs);
    }
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
  if (!o.export_path.empty()) {
    std::ofstream header(o.export_path);
    quant::export_header(qnet, header,
                         {.name = "edgescale_" + o.net,
                          .comment = "examples/quantize --net " + o.net + " --mode " + o.mode +
                                     " --bits " + std::to_string(o.bits)});
    if (!header) {
      throw error("cannot write " + o.export_path);
    }
    std::cerr << "exported the integer model to " << o.export_path << "\n";
  }
  if (!o.save.empty()) {
    save_model(qnet, o.net, o.save);
    std::cerr << "saved the integer model to " << o.save << "/\n";
  }
}

/// Post-training quantization with the observer --observer names.
template <class Net>
quant::qnetwork_t<Net> post_training_any(Net& net, const data::Dataset<float>& train,
                                         const Options& o) {
  if (o.observer == "percentile") {
    return post_training(net, train, o, [] { return quant::Percentile{}; });
  }
  if (o.observer == "mse") {
    return post_training(net, train, o, [] { return quant::MseClipping<8>{}; });
  }
  return post_training(net, train, o, [] { return quant::MinMax{}; });
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
  Net tuned = net;            // the float weights the integer network was made from
  double fake_accuracy = -1;  // QAT: the fake-quantized network's accuracy
  auto qnet = o.mode == "qat" ? quantization_aware(net, tuned, train, test, o, fake_accuracy)
                              : post_training_any(net, train, o);
  const Report r{o, net_name, fp32, fake_accuracy,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
  report(r, tuned, qnet, test);
  return 0;
}

}  // namespace detail

// Each network's pieces are compiled in their own files, so that no translation unit holds them
// all: run (quantize/run_<net>.cpp), post-training and the report (ptq_<net>.cpp),
// quantization-aware training (qat_<net>.cpp).
#define EDGESCALE_QUANTIZE_PTQ(prefix, Net)                                                      \
  prefix template quant::qnetwork_t<Net> detail::post_training_any<Net>(                         \
      Net&, const data::Dataset<float>&, const Options&);                                        \
  prefix template void detail::report<Net>(const detail::Report&, Net&, quant::qnetwork_t<Net>&, \
                                           const data::Dataset<float>&);
#define EDGESCALE_QUANTIZE_QAT(prefix, Net)                                                 \
  prefix template quant::qnetwork_t<Net> detail::quantization_aware<Net>(                   \
      Net&, Net&, const data::Dataset<float>&, const data::Dataset<float>&, const Options&, \
      double&);

EDGESCALE_QUANTIZE_PTQ(extern, LeNet300100<>)
EDGESCALE_QUANTIZE_QAT(extern, LeNet300100<>)
EDGESCALE_QUANTIZE_PTQ(extern, LeNet5<>)
EDGESCALE_QUANTIZE_QAT(extern, LeNet5<>)

}  // namespace edgescale::examples::quantize
