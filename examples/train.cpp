// train — trains LeNet-300-100 or LeNet-5 on Fashion-MNIST and reports the test accuracy.
//
//   build/examples/train --net mlp|lenet5 --epochs N --seed S --out r.json [--save DIR]
//                        [--load DIR] [--batch B] [--lr LR] [--data DIR]
//
// Writes {"net", "epochs", "seed", "test_accuracy", "train_seconds", "history": [...]} to --out
// and the per-epoch history as CSV beside it (r.csv); scripts/plot_training.sh draws it. Output
// paths are checked (and missing directories created) before anything is loaded; --help lists
// every flag with its default.
// --save DIR writes every tensor as DIR/<index>.<name>.npy (the keys of PyTorch's nn.Sequential
// state_dict, PyTorch layouts; see docs/getting-started.md); --load DIR starts from such a
// directory instead of a random initialisation (with --epochs 0 it only evaluates).
#include <edgescale/data/dataset.hpp>
#include <edgescale/data/fashion_mnist.hpp>
#include <edgescale/data/parameter_file.hpp>
#include <edgescale/nn.hpp>

#include "common/cli.hpp"
#include "common/instances.hpp"
#include "common/json.hpp"
#include "common/paths.hpp"
#include "networks.hpp"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

struct Options {
  std::string net = "mlp";
  int epochs = 10;
  std::uint64_t seed = 1;
  std::string out;
  std::string save;
  std::string load;
  std::string data;
  Index batch = 64;
  double lr = 0.05;
};

Options parse(int argc, char** argv) {
  Options o;
  examples::cli::Parser cli(
      "train", "Trains LeNet-300-100 or LeNet-5 on Fashion-MNIST and reports the test accuracy.");
  cli.option("--net", o.net, "NET", "the network: LeNet-300-100 (mlp) or LeNet-5 (lenet5)")
      .choices("mlp|lenet5");
  cli.option("--epochs", o.epochs, "N", "training epochs; 0 only evaluates");
  cli.option("--seed", o.seed, "S", "seed of every random stream (initialisation, shuffling)");
  cli.option("--out", o.out, "r.json", "results as JSON, and the history as CSV beside it (r.csv)");
  cli.option("--save", o.save, "DIR", "save the trained parameters as DIR/<name>.npy");
  cli.option("--load", o.load, "DIR", "start from parameters saved with --save");
  cli.option("--batch", o.batch, "B", "mini-batch size");
  cli.option("--lr", o.lr, "LR", "base learning rate (cosine schedule, SGD with Nesterov 0.9)");
  o.data = data::default_fashion_mnist_dir().string();  // $EDGESCALE_FASHION_MNIST_DIR or Debian's
  cli.option("--data", o.data, "DIR", "Fashion-MNIST directory");
  cli.parse(argc, argv);
  cli.require(o.epochs >= 0, "--epochs must be >= 0");
  cli.require(o.batch > 0, "--batch must be positive");
  cli.require(o.lr > 0, "--lr must be positive");
  return o;
}

/// Fails now, not after training, when an output cannot be written or --load is missing.
void check_paths(const Options& o) {
  if (std::filesystem::path(o.out).extension() == ".csv") {
    throw error("--out '" + o.out + "': the CSV history is written beside it as .csv; name the " +
                "JSON file otherwise (r.json)");
  }
  examples::check_output_file(o.out, "--out");
  if (!o.out.empty()) {
    examples::check_output_file(std::filesystem::path(o.out).replace_extension(".csv"), "--out");
  }
  examples::check_output_dir(o.save, "--save");
  examples::check_input_dir(o.load, "--load");
}

template <class Net>
int run(const Options& o, const std::string& net_name) {
  const auto dir =
      o.data.empty() ? data::default_fashion_mnist_dir() : std::filesystem::path(o.data);
  std::cerr << "loading Fashion-MNIST from " << dir.string() << "\n";
  const auto train =
      data::load_fashion_mnist<float>(data::Split::train, dir, data::fashion_mnist_standardize);
  const auto test =
      data::load_fashion_mnist<float>(data::Split::test, dir, data::fashion_mnist_standardize);
  data::require_sample_size(train, Net::input_shape::size, net_name);

  Rng init = make_stream(o.seed, "init");
  Net net{nn::init::kaiming_normal, init};
  if (!o.load.empty()) {
    data::load_parameters(net, o.load);
    std::cerr << "loaded parameters from " << o.load << "\n";
  }
  nn::Trainer trainer{net};
  nn::SGD opt{{.learning_rate = o.lr, .momentum = 0.9, .nesterov = true, .weight_decay = 5e-4}};
  data::BatchSampler train_batches(train, o.batch);
  data::BatchSampler test_batches(test, 500);
  Rng shuffle = make_stream(o.seed, "shuffle");
  std::cerr << net_name << ": " << net.parameter_count() << " parameters, " << o.epochs
            << " epochs of batches of " << o.batch << ", SGD (Nesterov 0.9, lr " << o.lr
            << " cosine)\n";

  const auto start = std::chrono::steady_clock::now();
  const auto history = nn::fit(trainer, opt, train_batches, test_batches, {.epochs = o.epochs},
                               nn::CosineSchedule{.base = o.lr, .epochs = std::max(o.epochs, 1)},
                               shuffle, nn::ProgressDisplay{std::cerr});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double accuracy =
      history.empty() ? trainer.evaluate(test_batches).accuracy : history.back().test.accuracy;

  std::cout.setf(std::ios::fixed);
  std::cout.precision(4);
  std::cout << net_name << " test accuracy " << 100 * accuracy << "% after " << o.epochs
            << " epochs (" << seconds << " s)\n";

  if (!o.out.empty()) {
    std::ofstream json(o.out);
    examples::json::Writer j(json);
    j.begin_object();
    j.field("net", o.net).field("epochs", o.epochs).field("seed", o.seed);
    j.field("test_accuracy", accuracy).field("train_seconds", seconds);
    j.key("history").begin_array();
    for (const auto& h : history) {
      j.begin_object();
      j.field("epoch", h.epoch + 1).field("learning_rate", h.learning_rate);
      j.field("train_loss", h.train_loss).field("train_accuracy", h.train_accuracy);
      j.field("test_loss", h.test.loss).field("test_accuracy", h.test.accuracy);
      j.field("seconds", h.seconds);
      j.end_object();
    }
    j.end_array();
    j.end_object();
    if (!json)
      throw error("cannot write " + o.out);
    // The same history as CSV beside it, for plotting (scripts/plot_training.sh).
    const std::string csv_path = std::filesystem::path(o.out).replace_extension(".csv").string();
    std::ofstream csv(csv_path);
    csv.precision(6);
    csv << "epoch,learning_rate,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n";
    for (const auto& h : history) {
      csv << h.epoch + 1 << ',' << h.learning_rate << ',' << h.train_loss << ',' << h.train_accuracy
          << ',' << h.test.loss << ',' << h.test.accuracy << ',' << h.seconds << '\n';
    }
    if (!csv)
      throw error("cannot write " + csv_path);
    std::cerr << "wrote " << o.out << " and " << csv_path << "\n";
  }
  if (!o.save.empty()) {
    data::save_parameters(net, o.save);
    std::cerr << "saved parameters to " << o.save << "/\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    check_paths(o);
    if (o.net == "mlp")
      return run<examples::LeNet300100<>>(o, "LeNet-300-100");
    return run<examples::LeNet5<>>(o, "LeNet-5");
  } catch (const std::exception& e) {
    std::cerr << "train: " << e.what() << "\n";
    return 1;
  }
}
