// prune_at_init — prunes LeNet-300-100 or LeNet-5 at initialization with one scorer, trains the
// sparse network on Fashion-MNIST and reports its test accuracy.
//
//   build/examples/prune_at_init --net mlp|lenet5
//       --scorer px|px-consistent|snip|itersnip|grasp|synflow|magnitude|random
//       --sparsity 0.98 --rounds R --scope global|layer --epochs E --seed S --out r.json
//
// The default recipe is that of the pruning-at-initialization literature (the PX paper and its
// baselines): pixels scaled to [0, 1], Kaiming-normal initialization, a class-balanced pruning
// batch of 10 examples per class from the training set, R = 100 rounds of the exponential schedule,
// global threshold; then SGD with momentum 0.9, lr 0.1 decayed by a cosine every step, weight decay
// 5e-4, batch 128, 10 epochs. Every flag overrides its part (--help lists them with defaults).
// Writes {"net", "scorer", "sparsity_target", "sparsity_achieved", "per_layer_density": [...],
// "test_accuracy", "score_seconds", ...} to --out; --save DIR writes the trained network with its
// masks (DIR/<index>.<name>_mask.npy beside each pruned tensor, as torch.nn.utils.prune names
// them).
#include <edgescale/data/dataset.hpp>
#include <edgescale/data/fashion_mnist.hpp>
#include <edgescale/data/parameter_file.hpp>
#include <edgescale/nn.hpp>
#include <edgescale/prune/collapse.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/pruning_batch.hpp>
#include <edgescale/prune/schedule.hpp>

#include "common/cli.hpp"
#include "common/instances.hpp"
#include "common/json.hpp"
#include "common/paths.hpp"
#include "common/scorers.hpp"
#include "networks.hpp"

#include <chrono>
#include <fstream>
#include <iostream>
#include <string>

using namespace edgescale;

namespace {

struct Options {
  std::string net = "mlp";
  std::string scorer = "px";
  double sparsity = 0.98;
  int rounds = 100;
  std::string scope = "global";
  std::int32_t per_class = 10;
  int epochs = 10;
  std::uint64_t seed = 1;
  Index batch = 128;
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  std::string out;
  std::string save;
  std::string data;
  bool quiet = false;
};

Options parse(int argc, char** argv) {
  Options o;
  examples::cli::Parser cli("prune_at_init",
                            "Prunes a network at initialization, trains it on Fashion-MNIST and "
                            "reports its sparsity and test accuracy.");
  cli.option("--net", o.net, "NET", "LeNet-300-100 (mlp) or LeNet-5 (lenet5)")
      .choices("mlp|lenet5");
  cli.option("--scorer", o.scorer, "NAME", examples::scorer_help).choices(examples::scorer_choices);
  cli.option("--sparsity", o.sparsity, "S", "fraction of the weights pruned, in (0, 1)");
  cli.option("--rounds", o.rounds, "R", "rounds of the exponential schedule (1: one-shot)");
  cli.option("--scope", o.scope, "SCOPE", "one threshold for all layers, or one per layer")
      .choices("global|layer");
  cli.option("--per-class", o.per_class, "K", "pruning-batch examples per class");
  cli.option("--epochs", o.epochs, "N", "training epochs after pruning; 0 only evaluates");
  cli.option("--seed", o.seed, "S", "seed of every random stream (init, pruning batch, shuffling)");
  cli.option("--batch", o.batch, "B", "mini-batch size");
  cli.option("--lr", o.lr, "LR", "base learning rate, cosine-decayed every step");
  cli.option("--momentum", o.momentum, "M", "SGD momentum (heavy ball)");
  cli.option("--weight-decay", o.weight_decay, "WD", "L2 weight decay");
  cli.option("--out", o.out, "r.json", "results as JSON");
  cli.option("--save", o.save, "DIR", "save the trained pruned network and its masks");
  o.data = data::default_fashion_mnist_dir().string();
  cli.option("--data", o.data, "DIR", "Fashion-MNIST directory");
  cli.flag("--quiet", o.quiet, "no progress display");
  cli.parse(argc, argv);
  cli.require(o.sparsity > 0 && o.sparsity < 1, "--sparsity must be in (0, 1)");
  cli.require(o.rounds >= 1, "--rounds must be >= 1");
  cli.require(o.per_class >= 1, "--per-class must be >= 1");
  cli.require(o.epochs >= 0, "--epochs must be >= 0");
  cli.require(o.batch > 0, "--batch must be positive");
  cli.require(o.lr > 0, "--lr must be positive");
  cli.require(o.momentum >= 0 && o.momentum < 1, "--momentum must be in [0, 1)");
  cli.require(o.weight_decay >= 0, "--weight-decay must be >= 0");
  return o;
}

template <class Net>
int run(const Options& o, const std::string& net_name) {
  const auto dir = std::filesystem::path(o.data);
  if (!o.quiet) {
    std::cerr << "loading Fashion-MNIST from " << dir.string() << "\n";
  }
  const auto train = data::load_fashion_mnist<float>(data::Split::train, dir);  // pixels in [0, 1]
  const auto test = data::load_fashion_mnist<float>(data::Split::test, dir);
  data::require_sample_size(train, Net::input_shape::size, net_name);

  Rng init = make_stream(o.seed, "init");
  Net net{nn::init::kaiming_normal, init};
  Rng draw = make_stream(o.seed, "pruning-batch");
  data::Dataset<float> drawn = data::class_balanced_subset(train, Index{o.per_class}, draw);
  const prune::PruningBatch<float> batch{std::move(drawn.features), std::move(drawn.labels)};
  const prune::Options options{
      .sparsity = o.sparsity,
      .rounds = o.rounds,
      .scope = o.scope == "layer" ? prune::Scope::layer : prune::Scope::global};
  Rng scoring = make_stream(o.seed, "scorer");
  const auto start = std::chrono::steady_clock::now();
  const prune::DensityReport report =
      examples::prune_by_name(o.scorer, net, batch.view(), options, scoring);
  const double score_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const prune::ConnectivityReport paths = prune::connectivity(net);
  if (!o.quiet) {
    std::cerr << net_name << " pruned by " << o.scorer << " to sparsity " << report.sparsity()
              << " in " << o.rounds << " rounds (" << score_seconds << " s)";
    for (const auto& t : report.tensors) {
      std::cerr << ", " << t.name << " " << t.density();
    }
    std::cerr << (paths.collapsed() ? "; LAYER COLLAPSE: no path from input to output\n" : "\n");
  }

  nn::Trainer trainer{net};
  nn::SGD opt{{.learning_rate = o.lr, .momentum = o.momentum, .weight_decay = o.weight_decay}};
  data::BatchSampler train_batches(train, o.batch);
  data::BatchSampler test_batches(test, 500);
  Rng shuffle = make_stream(o.seed, "shuffle");
  const auto train_start = std::chrono::steady_clock::now();
  const nn::CosineSchedule schedule{
      .base = o.lr, .epochs = std::max(o.epochs, 1), .per_step = true};
  std::vector<nn::EpochReport> history;
  if (o.quiet) {
    history =
        nn::fit(trainer, opt, train_batches, test_batches, {.epochs = o.epochs}, schedule, shuffle);
  } else {
    history = nn::fit(trainer, opt, train_batches, test_batches, {.epochs = o.epochs}, schedule,
                      shuffle, nn::ProgressDisplay{std::cerr});
  }
  const double train_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - train_start).count();
  const double accuracy =
      history.empty() ? trainer.evaluate(test_batches).accuracy : history.back().test.accuracy;
  const prune::DensityReport after = prune::density(net);

  std::cout.setf(std::ios::fixed);
  std::cout.precision(4);
  std::cout << net_name << " " << o.scorer << " sparsity " << after.sparsity() << " test accuracy "
            << 100 * accuracy << "% (scoring " << score_seconds << " s, training " << train_seconds
            << " s)\n";

  if (!o.out.empty()) {
    std::ofstream json(o.out);
    examples::json::Writer j(json);
    j.begin_object();
    j.field("net", o.net).field("scorer", o.scorer).field("seed", o.seed);
    j.field("sparsity_target", o.sparsity).field("sparsity_achieved", after.sparsity());
    j.field("rounds", o.rounds).field("scope", o.scope).field("per_class", o.per_class);
    j.key("per_layer_density").begin_array();
    for (const auto& t : after.tensors) {
      j.begin_object().field("tensor", t.name).field("density", t.density());
      j.field("kept", t.kept).field("size", t.size).end_object();
    }
    j.end_array();
    j.field("layer_collapse", paths.collapsed());
    j.field("test_accuracy", accuracy).field("score_seconds", score_seconds);
    j.field("epochs", o.epochs).field("train_seconds", train_seconds);
    j.key("history").begin_array();
    for (const auto& h : history) {
      j.begin_object().field("epoch", h.epoch + 1).field("train_loss", h.train_loss);
      j.field("test_accuracy", h.test.accuracy).end_object();
    }
    j.end_array();
    j.end_object();
    if (!json) {
      throw error("cannot write " + o.out);
    }
  }
  if (!o.save.empty()) {
    data::save_parameters(net, o.save);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    examples::check_output_file(o.out, "--out");
    examples::check_output_dir(o.save, "--save");
    if (o.net == "mlp") {
      return run<examples::LeNet300100<>>(o, "LeNet-300-100");
    }
    return run<examples::LeNet5<>>(o, "LeNet-5");
  } catch (const std::exception& e) {
    std::cerr << "prune_at_init: " << e.what() << "\n";
    return 1;
  }
}
