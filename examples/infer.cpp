// infer — runs a saved float or integer model on a batch of inputs.
//
//   build/examples/infer --load DIR --inputs X.npy --out Y.npy [--net mlp|lenet5]
//
// DIR is either an integer model written by `quantize --save DIR` (it has DIR/model.txt, which
// names the network) or float parameters written by `train --save DIR` (then --net names the
// network). X.npy holds float32 inputs, (N, 784) or (N, 1, 28, 28), standardised as the examples
// standardise Fashion-MNIST. Writes Y.npy, the float32 logits (N, 10) — dequantized for an integer
// model, whose int8 output codes also go to Y.codes.npy (N, 10) — and prints the predicted classes'
// histogram.
#include <edgescale/data/npy.hpp>
#include <edgescale/data/parameter_file.hpp>
#include <edgescale/nn.hpp>
#include <edgescale/quant/qnetwork.hpp>

#include "common/cli.hpp"
#include "common/instances.hpp"
#include "common/paths.hpp"
#include "networks.hpp"
#include "quantize/model_files.hpp"

#include <array>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

struct Options {
  std::string load;
  std::string inputs;
  std::string out;
  std::string net;
};

Options parse(int argc, char** argv) {
  Options o;
  examples::cli::Parser cli("infer", "Runs a saved float or integer model on a batch of inputs.");
  cli.option("--load", o.load, "DIR", "quantize --save DIR (integer) or train --save DIR (float)");
  cli.option("--inputs", o.inputs, "X.npy", "float32 inputs, (N, 784) or (N, 1, 28, 28)");
  cli.option("--out", o.out, "Y.npy", "float32 logits (N, 10); int8 codes beside as Y.codes.npy");
  cli.option("--net", o.net, "NET", "the network of a float model (mlp or lenet5)")
      .choices("|mlp|lenet5");
  cli.parse(argc, argv);
  cli.require(!o.load.empty() && !o.inputs.empty() && !o.out.empty(),
              "--load, --inputs and --out are required");
  return o;
}

/// The network an integer model names in DIR/model.txt ("" when DIR holds no integer model).
std::string integer_model_net(const std::filesystem::path& dir) {
  std::ifstream meta(dir / "model.txt");
  if (!meta) {
    return "";
  }
  std::string first;
  std::getline(meta, first);
  std::string key;
  std::string net;
  meta >> key >> net;
  if (first != "edgescale integer model" || key != "net" || (net != "mlp" && net != "lenet5")) {
    throw format_error((dir / "model.txt").string() + ": not an edgescale integer model");
  }
  return net;
}

void write_histogram(const Matrix<float>& logits) {
  std::array<Index, 10> count{};
  for (Index j = 0; j < logits.cols(); ++j) {
    Index c = 0;
    logits.col(j).maxCoeff(&c);
    ++count[static_cast<std::size_t>(c)];
  }
  std::cout << "predicted classes:";
  for (const Index c : count) {
    std::cout << " " << c;
  }
  std::cout << "\n";
}

template <class Net>
int run(const Options& o, bool integer, const data::NpyArray<float>& x) {
  const Index n = x.shape.empty() ? 0 : x.shape[0];
  if (n * Net::input_shape::size != x.size() || n == 0) {
    throw argument_error(o.inputs + ": " + std::to_string(x.size()) +
                         " values are not N samples of " + std::to_string(Net::input_shape::size));
  }
  // Row-major (N, 784) is the column-major 784 x N batch.
  const ConstBatchView<float> batch(x.data.data(), Net::input_shape::size, n);
  Matrix<float> logits;
  const std::vector<Index> shape{n, 10};
  if (integer) {
    auto qnet = examples::quantize::load_model<quant::qnetwork_t<Net>>(o.load);
    const quant::QBatchView codes = qnet.forward(batch);
    logits = quant::dequantize(codes);
    const std::string codes_path =
        std::filesystem::path(o.out).replace_extension(".codes.npy").string();
    data::save_npy(codes_path, codes.data, std::span<const Index>(shape));
    std::cerr << "wrote " << codes_path << "\n";
  } else {
    Net net;
    data::load_parameters(net, o.load);
    net.set_training(false);
    logits = net.forward(batch);
  }
  data::save_npy(o.out, logits.data(), std::span<const Index>(shape));
  std::cerr << "wrote " << o.out << " (" << (integer ? "integer" : "float") << " model, " << n
            << " samples)\n";
  write_histogram(logits);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    examples::check_input_dir(o.load, "--load");
    examples::check_output_file(o.out, "--out");
    const std::string saved = integer_model_net(o.load);
    const std::string net = saved.empty() ? o.net : saved;
    if (net.empty()) {
      throw argument_error(
          "--load " + o.load +
          " holds no integer model (model.txt): name the float network with --net");
    }
    if (!saved.empty() && !o.net.empty() && o.net != saved) {
      throw argument_error("--net " + o.net + ", but " + o.load + " holds a " + saved + " model");
    }
    const auto x = data::load_npy<float>(o.inputs);
    if (net == "mlp") {
      return run<examples::LeNet300100<>>(o, !saved.empty(), x);
    }
    return run<examples::LeNet5<>>(o, !saved.empty(), x);
  } catch (const std::exception& e) {
    std::cerr << "infer: " << e.what() << "\n";
    return 1;
  }
}
