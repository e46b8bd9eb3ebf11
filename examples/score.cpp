// score — one scorer's scores of a saved network on given inputs, one .npy per prunable tensor.
//
//   build/examples/score --net mlp|lenet5 --load DIR --inputs X.npy --labels y.npy
//                        --scorer px|px-consistent|snip|itersnip|grasp|synflow|magnitude|random
//                        [--double] [--seed S] --out OUT
//
// DIR is what `train --save` (or `prune_at_init --save`) writes: DIR/<index>.<name>.npy per tensor,
// masks beside them. X holds n samples, n x 784 or n x 1 x 28 x 28, float32 or float64, used
// exactly as given (no scaling); y holds n integer class labels (int32, int64 or uint8), read by
// the scorers that use labels (SNIP, IterSNIP, GraSP). The scores of each prunable tensor go to
// OUT/<tensor name>.npy (float64, the tensor's shape: OUT/0.weight.npy for LeNet-300-100's first
// layer), so they can be compared with any other implementation in numpy. --double scores a
// double-precision copy of the network (float32 inputs are widened exactly; without it, float64
// inputs are rounded to float32).
#include <edgescale/data/npy.hpp>
#include <edgescale/data/parameter_file.hpp>
#include <edgescale/nn.hpp>
#include <edgescale/prune/collapse.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/pruning_batch.hpp>
#include <edgescale/prune/schedule.hpp>

#include "common/cli.hpp"
#include "common/instances.hpp"
#include "common/paths.hpp"
#include "common/scorers.hpp"
#include "networks.hpp"

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

struct Options {
  std::string net = "mlp";
  std::string scorer = "px";
  std::string load;
  std::string inputs;
  std::string labels;
  std::string out;
  std::uint64_t seed = 1;
  bool use_double = false;
};

Options parse(int argc, char** argv) {
  Options o;
  examples::cli::Parser cli("score",
                            "Writes one scorer's scores of a saved network as OUT/<tensor>.npy.");
  cli.option("--net", o.net, "NET", "LeNet-300-100 (mlp) or LeNet-5 (lenet5)")
      .choices("mlp|lenet5");
  cli.option("--load", o.load, "DIR", "the network's parameters, as train --save writes them");
  cli.option("--inputs", o.inputs, "X.npy", "n x 784 or n x 1 x 28 x 28 inputs, float32/float64");
  cli.option("--labels", o.labels, "y.npy", "n class labels (for snip, itersnip, grasp)");
  cli.option("--scorer", o.scorer, "NAME", examples::scorer_help).choices(examples::scorer_choices);
  cli.flag("--double", o.use_double, "score in double precision");
  cli.option("--seed", o.seed, "S", "seed of the random scorer");
  cli.option("--out", o.out, "OUT", "directory for OUT/<tensor name>.npy");
  cli.parse(argc, argv);
  cli.require(!o.load.empty(), "--load DIR is required");
  cli.require(!o.out.empty(), "--out OUT is required");
  return o;
}

/// The inputs as features x n (each sample one column, in the file's C order), in double.
Matrix<double> read_inputs(const std::string& path, Index sample_size) {
  const data::NpyArray<double> x = data::load_npy<double>(path);
  if (x.shape.empty()) {
    throw shape_error("--inputs '" + path + "': a single value, not n samples");
  }
  const Index n = x.shape[0];
  Index per_sample = 1;
  for (std::size_t i = 1; i < x.shape.size(); ++i) {
    per_sample *= x.shape[i];
  }
  if (x.shape.size() < 2 || per_sample != sample_size) {
    throw shape_error("--inputs '" + path + "' has shape " + data::detail::npy_shape_repr(x.shape) +
                      ": expected (n, " + std::to_string(sample_size) + ") or (n, 1, 28, 28)");
  }
  Matrix<double> m(sample_size, n);
  std::copy(x.data.begin(), x.data.end(), m.data());  // row-major n x size = column-major size x n
  return m;
}

std::vector<std::int32_t> read_labels(const std::string& path, Index n) {
  if (path.empty()) {
    return {};
  }
  const data::NpyArray<std::int64_t> y = data::load_npy<std::int64_t>(path);
  if (y.shape.size() != 1 || y.shape[0] != n) {
    throw shape_error("--labels '" + path + "' has shape " + data::detail::npy_shape_repr(y.shape) +
                      ": expected (" + std::to_string(n) + ",), one label per input");
  }
  std::vector<std::int32_t> labels;
  labels.reserve(y.data.size());
  for (const std::int64_t v : y.data) {
    if (v < 0 || v >= 10) {
      throw argument_error("--labels '" + path + "': label " + std::to_string(v) +
                           " is not a Fashion-MNIST class in [0, 10)");
    }
    labels.push_back(static_cast<std::int32_t>(v));
  }
  return labels;
}

template <class Net>
void score(const Options& o, Net& net) {
  using T = typename Net::scalar_type;
  const Matrix<double> x = read_inputs(o.inputs, Net::input_shape::size);
  const std::vector<std::int32_t> labels = read_labels(o.labels, x.cols());
  const Matrix<T> xt = x.template cast<T>();
  const prune::PruningData<T> data{ConstBatchView<T>(xt.data(), xt.rows(), xt.cols()), labels};
  Rng rng = make_stream(o.seed, "scorer");
  const ParameterSet<double> scores = examples::score_by_name(o.scorer, net, data, rng);
  for (const TensorSlot& t : scores.layout().tensors()) {
    const auto values = scores.tensor(t.name);
    data::save_npy(std::filesystem::path(o.out) / (t.name + ".npy"), values.data(),
                   std::span<const Index>(t.shape));
  }
  std::cerr << "wrote the " << o.scorer << " scores of " << scores.layout().tensors().size()
            << " tensors to " << o.out << "/\n";
}

template <class Net>
int run(const Options& o) {
  Net net;
  data::load_parameters(net, o.load);
  if (o.use_double) {
    nn::rebind_scalar_t<Net, double> wide;
    copy_tensors(net, wide);
    score(o, wide);
  } else {
    score(o, net);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    examples::check_input_dir(o.load, "--load");
    examples::check_output_dir(o.out, "--out");
    if (o.net == "mlp") {
      return run<examples::LeNet300100<>>(o);
    }
    return run<examples::LeNet5<>>(o);
  } catch (const std::exception& e) {
    std::cerr << "score: " << e.what() << "\n";
    return 1;
  }
}
