// The federated examples' driver — a federation of simulated clients on Fashion-MNIST: FED3R and
// its peers; examples/federated.cpp runs it in one process, examples/federated_mpi.cpp over MPI.
//
//   build/examples/federated --strategy fed3r|fed3r-rf|fedncm|fedavg|fedavgm|fedprox|scaffold|
//                                       fedadam|fedyogi
//       --features pixels|random|public|file:DIR --model head|lenet5
//       --partition dirichlet-prior|dirichlet-class|iid|shards --alpha A
//       --clients K --per-round M --rounds R --lambda L --seed S --out r.json
//
// Features ψ(x), computed once (clients would compute the same from their own images):
//   pixels   the 784 pixels in [0, 1]
//   random   random ReLU features of the pixels (--width, from the broadcast seed)
//   public   the 84 penultimate activations of a LeNet-5 trained centrally on a held-out "public"
//            10% of the training set (--public-epochs); the federation gets the other 90%
//   file:DIR DIR/features.npy [n, D], DIR/labels.npy [n], DIR/test_features.npy,
//            DIR/test_labels.npy, optionally DIR/clients.npy [K, n_k] (replaces --partition)
// FED3R, FED3R-RF and FedNCM learn a classifier on ψ (one pass over the clients, cyclic
// sampling); the gradient strategies train either a linear head on ψ (--model head) or the
// whole LeNet-5 on the images (--model lenet5; from the public network with --features public).
// Writes {"strategy", "alpha", "clients", "per_round", "accuracy": [per round], "bytes_up":
// [cumulative per round], "bytes_down": [...], "final_accuracy", ...} to --out.
#include "driver.hpp"

#include <edgescale/data/dataset.hpp>
#include <edgescale/data/fashion_mnist.hpp>
#include <edgescale/data/npy.hpp>
#include <edgescale/fed/fed3r.hpp>
#include <edgescale/fed/partition.hpp>
#include <edgescale/nn/init.hpp>

#include "../common/cli.hpp"
#include "../common/instances.hpp"
#include "../common/json.hpp"
#include "../common/paths.hpp"
#include "../networks.hpp"
#include "experiment.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

using namespace edgescale;
namespace fx = edgescale::examples::federated;

namespace {

struct Options {
  std::string strategy = "fed3r";
  std::string features = "pixels";
  std::string model = "head";
  std::string partition = "dirichlet-prior";
  double alpha = 0.05;
  Index clients = 100;
  Index per_round = 10;
  int rounds = 0;  // 0: one pass (K/m) for FED3R and FedNCM, 100 for the gradient strategies
  double lambda = 0.01;
  std::uint64_t seed = 1;
  Index width = 1024;
  Index rf_width = 2048;
  double rf_sigma = 0;  // 0: the median distance heuristic is not used; σ = √d
  int public_epochs = 5;
  int local_epochs = 1;
  Index batch = 32;
  double lr = 0.05;
  double server_lr = 0;  // 0: the strategy's default (1; FedAdam/FedYogi 0.01)
  double momentum = 0.9;
  double mu = 0.01;
  std::string ft_strategy = "fedavg";
  std::string ft_part = "whole";
  double temperature = 0.1;
  double ft_lr = 0.01;
  int threads = 1;
  int evaluate_every = 1;
  std::string reduction = "deterministic";
  std::string out;
  std::string data;
  bool quiet = false;
  // Set by run_federated, not by flags:
  std::string program = "federated";
  fed::AnyTransport transport{};
};

Options parse(int argc, char** argv, const std::string& program) {
  Options o;
  o.program = program;
  examples::cli::Parser cli(program,
                            "Simulates a federation of clients on Fashion-MNIST with FED3R or a "
                            "gradient-based strategy and reports accuracy and bytes per round.");
  cli.option("--strategy", o.strategy, "NAME", "the federated strategy")
      .choices("fed3r|fed3r-rf|fed3r+ft|fedncm|fedavg|fedavgm|fedprox|scaffold|fedadam|fedyogi");
  cli.option("--features", o.features, "PSI",
             "the feature extractor: pixels|random|public|file:DIR");
  cli.option("--model", o.model, "MODEL",
             "what gradient strategies train: a linear head on the features, or all of LeNet-5")
      .choices("head|lenet5");
  cli.option("--partition", o.partition, "SPLIT", "how the data are split among clients")
      .choices("dirichlet-prior|dirichlet-class|iid|shards");
  cli.option("--alpha", o.alpha, "A", "Dirichlet concentration (small: skewed labels)");
  cli.option("--clients", o.clients, "K", "clients in the federation");
  cli.option("--per-round", o.per_round, "M", "clients per round");
  cli.option("--rounds", o.rounds, "R", "rounds (0: one pass K/M for FED3R/FedNCM, else 100)");
  cli.option("--lambda", o.lambda, "L", "ridge regularisation of FED3R");
  cli.option("--seed", o.seed, "S", "seed of every random stream");
  cli.option("--width", o.width, "D", "width of the random features (--features random)");
  cli.option("--rf-width", o.rf_width, "D", "random Fourier features of FED3R-RF");
  cli.option("--rf-sigma", o.rf_sigma, "SIGMA", "kernel width of FED3R-RF (0: sqrt of ψ's width)");
  cli.option("--public-epochs", o.public_epochs, "N", "epochs of the public extractor");
  cli.option("--local-epochs", o.local_epochs, "E", "local epochs of the gradient strategies");
  cli.option("--batch", o.batch, "B", "local mini-batch size");
  cli.option("--lr", o.lr, "LR", "client learning rate");
  cli.option("--server-lr", o.server_lr, "LR", "server learning rate (0: the strategy's default)");
  cli.option("--momentum", o.momentum, "B", "FedAvgM's server momentum");
  cli.option("--mu", o.mu, "MU", "FedProx's proximal weight");
  cli.option("--ft-strategy", o.ft_strategy, "NAME", "FED3R+FT: the fine-tuning strategy")
      .choices("fedavg|fedavgm|scaffold");
  cli.option("--ft-part", o.ft_part, "PART", "FED3R+FT: what is fine-tuned")
      .choices("whole|head|extractor");
  cli.option("--temperature", o.temperature, "T", "FED3R+FT: softmax temperature");
  cli.option("--ft-lr", o.ft_lr, "LR", "FED3R+FT: client learning rate of the fine-tuning");
  cli.option("--threads", o.threads, "N", "clients trained at once (results do not depend on it)");
  cli.option("--evaluate-every", o.evaluate_every, "N", "evaluate every N rounds");
  cli.option("--reduction", o.reduction, "MODE",
             "how updates are summed across MPI ranks: the fixed tree (bit-identical for any "
             "rank count) or MPI_Allreduce (federated_mpi only)")
      .choices("deterministic|fast");
  cli.option("--out", o.out, "r.json", "results as JSON");
  o.data = data::default_fashion_mnist_dir().string();
  cli.option("--data", o.data, "DIR", "Fashion-MNIST directory");
  cli.flag("--quiet", o.quiet, "no progress display");
  cli.parse(argc, argv);
  cli.require(o.features == "pixels" || o.features == "random" || o.features == "public" ||
                  o.features.starts_with("file:"),
              "--features must be pixels, random, public or file:DIR");
  cli.require(o.alpha > 0, "--alpha must be > 0");
  cli.require(o.clients >= 1, "--clients must be >= 1");
  cli.require(o.per_round >= 1 && o.per_round <= o.clients, "--per-round must be in [1, K]");
  cli.require(o.rounds >= 0, "--rounds must be >= 0");
  cli.require(o.lambda > 0, "--lambda must be > 0");
  cli.require(o.width >= 1 && o.rf_width >= 1, "--width and --rf-width must be >= 1");
  cli.require(o.rf_sigma >= 0, "--rf-sigma must be >= 0");
  cli.require(o.public_epochs >= 1 && o.local_epochs >= 1, "epochs must be >= 1");
  cli.require(o.batch >= 1 && o.lr > 0 && o.server_lr >= 0, "--batch, --lr must be positive");
  cli.require(o.threads >= 1 && o.evaluate_every >= 1, "--threads, --evaluate-every must be >= 1");
  cli.require(o.strategy != "fed3r+ft" || o.features == "public",
              "fed3r+ft fine-tunes the public LeNet-5: use --features public");
  cli.require(o.temperature > 0 && o.ft_lr > 0, "--temperature and --ft-lr must be > 0");
  cli.require(!(o.model == "lenet5" && (o.features == "random" || o.features.starts_with("file:"))),
              "--model lenet5 trains on the images: use --features pixels or public");
  return o;
}

/// The federation's data: pool and test set as the clients' model sees them (features ψ, or
/// images for --model lenet5), the clients' index sets, and the public network if any.
struct Federation {
  data::Dataset<float> pool;
  data::Dataset<float> test;
  fed::Partition clients;
  std::string partition;  ///< --partition, or "file" when DIR/clients.npy gave the clients
  std::optional<examples::LeNet5<float>> public_net;
  data::Dataset<float> train_images;  ///< kept for FED3R+FT, which fine-tunes on the images
  data::Dataset<float> test_images;
  double public_accuracy = std::nan("");
};

data::Dataset<float> dataset_from_npy(const std::filesystem::path& features,
                                      const std::filesystem::path& labels, std::string name) {
  const data::NpyArray<float> x = data::load_npy<float>(features);
  const data::NpyArray<std::int64_t> y = data::load_npy<std::int64_t>(labels);
  if (x.shape.size() != 2 || y.shape.size() != 1 || x.shape[0] != y.shape[0]) {
    throw shape_error(features.string() + " must be [n, D] and " + labels.string() +
                      " [n] with the same n");
  }
  data::Dataset<float> d;
  d.name = std::move(name);
  d.features =
      Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
          x.data.data(), x.shape[0], x.shape[1])
          .transpose();
  d.sample_shape = {1, 1, x.shape[1]};
  std::int64_t classes = 0;
  for (const std::int64_t v : y.data) {
    if (v < 0 || v > 1'000'000) {
      throw format_error(labels.string() + ": label " + std::to_string(v) + " is not a class");
    }
    d.labels.push_back(static_cast<std::int32_t>(v));
    classes = std::max(classes, v + 1);
  }
  d.classes = classes;
  if (!d.features.allFinite()) {
    throw format_error(features.string() + " holds NaN or Inf");
  }
  return d;
}

fed::Partition split(const Options& o, const data::Dataset<float>& pool) {
  Rng rng = make_stream(o.seed, "partition");
  const std::span<const std::int32_t> labels(pool.labels);
  if (o.partition == "iid") {
    return fed::Iid{}.partition(labels, pool.classes, o.clients, rng);
  }
  if (o.partition == "shards") {
    return fed::Shards{}.partition(labels, pool.classes, o.clients, rng);
  }
  if (o.partition == "dirichlet-class") {
    return fed::DirichletPerClass{.alpha = o.alpha}.partition(labels, pool.classes, o.clients, rng);
  }
  return fed::DirichletPrior{.alpha = o.alpha}.partition(labels, pool.classes, o.clients, rng);
}

Federation build(const Options& o) {
  Federation f;
  if (o.features.starts_with("file:")) {
    const std::filesystem::path dir = o.features.substr(5);
    f.pool = dataset_from_npy(dir / "features.npy", dir / "labels.npy", "file features");
    f.test = dataset_from_npy(dir / "test_features.npy", dir / "test_labels.npy", "file test");
    if (f.test.sample_size() != f.pool.sample_size()) {
      throw shape_error("test_features.npy has another width than features.npy");
    }
    f.test.classes = f.pool.classes = std::max(f.pool.classes, f.test.classes);
    if (std::filesystem::exists(dir / "clients.npy")) {
      const auto c = data::load_npy<std::int64_t>(dir / "clients.npy");
      if (c.shape.size() != 2) {
        throw shape_error("clients.npy must be [K, n_k]");
      }
      f.clients.resize(static_cast<std::size_t>(c.shape[0]));
      for (Index k = 0; k < c.shape[0]; ++k) {
        for (Index j = 0; j < c.shape[1]; ++j) {
          f.clients[static_cast<std::size_t>(k)].push_back(
              c.data[static_cast<std::size_t>(k * c.shape[1] + j)]);
        }
      }
      f.partition = "file";
    } else {
      f.clients = split(o, f.pool);
      f.partition = o.partition;
    }
    return f;
  }
  const auto dir = std::filesystem::path(o.data);
  data::Dataset<float> train = data::load_fashion_mnist<float>(data::Split::train, dir);
  data::Dataset<float> test = data::load_fashion_mnist<float>(data::Split::test, dir);
  if (o.features == "public") {
    // A random 10% of the training set is public; the federation holds the rest.
    std::vector<Index> order(static_cast<std::size_t>(train.size()));
    std::iota(order.begin(), order.end(), Index{0});
    Rng draw = make_stream(o.seed, "public");
    shuffle(order, draw);
    const Index n_public = train.size() / 10;
    const data::Dataset<float> public_set = data::subset(
        train, std::span<const Index>(order).first(static_cast<std::size_t>(n_public)));
    train = data::subset(train,
                         std::span<const Index>(order).subspan(static_cast<std::size_t>(n_public)));
    fx::PublicExtractor p =
        fx::train_public_extractor(public_set, test, o.public_epochs, o.seed, o.quiet);
    f.public_net.emplace(std::move(p.net));
    f.public_accuracy = p.accuracy;
  }
  f.clients = split(o, train);
  f.partition = o.partition;
  if (o.model == "lenet5" && fx::is_gradient_strategy(o.strategy)) {
    f.pool = std::move(train);
    f.test = std::move(test);
  } else if (o.features == "public") {
    f.pool = fx::lenet5_features(*f.public_net, train);
    f.test = fx::lenet5_features(*f.public_net, test);
    if (o.strategy == "fed3r+ft") {
      f.train_images = std::move(train);
      f.test_images = std::move(test);
    }
  } else if (o.features == "random") {
    const std::uint64_t seed = make_stream(o.seed, "random-features")();
    f.pool = fx::random_relu_features(train, o.width, seed);
    f.test = fx::random_relu_features(test, o.width, seed);
  } else {
    f.pool = std::move(train);
    f.test = std::move(test);
  }
  return f;
}

fx::StatisticsSettings statistics_settings(const Options& o, const std::string& strategy) {
  return {.strategy = strategy,
          .lambda = o.lambda,
          .rf_width = o.rf_width,
          .rf_sigma = o.rf_sigma,
          .rf_seed = make_stream(o.seed, "fourier-features")(),
          .simulation = {.per_round = o.per_round,
                         .threads = o.threads,
                         .evaluate_every = o.evaluate_every,
                         .seed = o.seed},
          .rounds = o.rounds,
          .quiet = o.quiet,
          .transport = o.transport};
}

fx::GradientSettings gradient_settings(const Options& o, const std::string& strategy, double lr) {
  fx::GradientSettings s;
  s.strategy = strategy;
  s.local = {.epochs = o.local_epochs, .batch_size = o.batch, .learning_rate = lr};
  s.server_learning_rate =
      o.server_lr > 0 ? o.server_lr : (strategy == "fedadam" || strategy == "fedyogi" ? 0.01 : 1.0);
  s.server_momentum = o.momentum;
  s.proximal_mu = o.mu;
  s.simulation = {.per_round = o.per_round,
                  .threads = o.threads,
                  .evaluate_every = o.evaluate_every,
                  .seed = o.seed};
  s.rounds = o.rounds > 0 ? o.rounds : 100;
  s.quiet = o.quiet;
  s.transport = o.transport;
  return s;
}

/// The prefix of the last layer's tensors ("12.") of a network.
template <class Net>
std::string head_prefix(const Net& net) {
  const ParameterSet<float> p(net);
  const std::string last = p.layout().tensors().back().name;
  return last.substr(0, last.find('.') + 1);
}

/// FED3R+FT (Fanì et al. 2024): one FED3R pass on the public extractor's features, then the
/// public LeNet-5 with the unit-norm ridge head fine-tuned on the images by --ft-strategy, with
/// logits divided by --temperature, for the remaining rounds.
fx::Outcome fed3r_then_finetune(const Options& o, const Federation& f) {
  fx::StatisticsSettings pass = statistics_settings(o, "fed3r");
  pass.rounds = 0;  // one pass
  Matrix<double> W;
  fx::Outcome first = fx::run_statistics(pass, f.pool, f.test, f.clients, &W);
  const fed::RidgeHead<float> ridge = fed::classifier_from_ridge<float>(W, o.temperature);
  examples::LeNet5<float> net = *f.public_net;
  const std::string head = head_prefix(net);
  for_each_tensor(net, [&](std::string_view name, auto& p) {
    if (name == head + "weight") {
      p.value = Eigen::Map<const Vector<float>>(ridge.weight.data(), p.value.size());
    } else if (name == head + "bias") {
      p.value = Eigen::Map<const Vector<float>>(ridge.bias.data(), p.value.size());
    }
  });
  fx::GradientSettings s = gradient_settings(o, o.ft_strategy, o.ft_lr);
  const int total = o.rounds > 0 ? o.rounds : 100;
  s.rounds = std::max(0, total - static_cast<int>(first.history.size()));
  if (o.ft_part == "head") {
    for (const TensorSlot& t : ParameterSet<float>(net).layout().tensors()) {
      if (!t.name.starts_with(head)) {
        s.frozen.push_back(t.name);
      }
    }
  } else if (o.ft_part == "extractor") {
    s.frozen = {head};
  }
  if (!o.quiet) {
    std::cerr << "fine-tuning (" << o.ft_part << ") with " << o.ft_strategy << " at temperature "
              << o.temperature << " for " << s.rounds << " rounds\n";
  }
  fx::Outcome second =
      fx::run_finetune(s, f.train_images, f.test_images, f.clients, net, o.temperature);
  // Copies, not a reference into first.history, which grows below.
  const int rounds_before = static_cast<int>(first.history.size());
  const std::size_t up_before = first.history.back().total_bytes_up;
  const std::size_t down_before = first.history.back().total_bytes_down;
  for (fed::RoundReport r : second.history) {
    r.round += rounds_before;
    r.total_bytes_up += up_before;
    r.total_bytes_down += down_before;
    first.history.push_back(std::move(r));
  }
  return first;
}

int run(const Options& o) {
  const auto start = std::chrono::steady_clock::now();
  if (!o.quiet) {
    std::cerr << o.program << ": " << o.strategy << " on " << o.features << " features, "
              << o.clients << " clients (" << o.partition << ", alpha " << o.alpha << "), "
              << o.per_round << " per round\n";
  }
  const Federation f = build(o);
  const fed::PartitionSummary split_summary =
      fed::summarize(f.clients, std::span<const std::int32_t>(f.pool.labels), f.pool.classes);
  if (!o.quiet) {
    std::cerr << "partition: " << f.clients.size() << " clients of " << split_summary.min_size()
              << " to " << split_summary.max_size() << " samples, "
              << split_summary.mean_classes_per_client()
              << " classes per client on average, mean total-variation distance from the "
                 "global class mix "
              << split_summary.mean_tv_distance() << "\n";
  }
  fx::Outcome outcome;
  if (o.strategy == "fed3r+ft") {
    outcome = fed3r_then_finetune(o, f);
  } else if (o.strategy == "fed3r" || o.strategy == "fed3r-rf" || o.strategy == "fedncm") {
    outcome = fx::run_statistics(statistics_settings(o, o.strategy), f.pool, f.test, f.clients);
  } else {
    const fx::GradientSettings s = gradient_settings(o, o.strategy, o.lr);
    if (o.model == "lenet5") {
      Rng init = make_stream(o.seed, "init");
      examples::LeNet5<float> initial{nn::init::kaiming_normal, init};
      if (f.public_net) {
        // The public extractor with a fresh head, as the paper fine-tunes a pre-trained backbone:
        // every tensor but the last layer's comes from the public network.
        const ParameterSet<float> pre(*f.public_net);
        const std::string head = head_prefix(*f.public_net);
        for_each_tensor(initial, [&](std::string_view name, auto& p) {
          if (!name.starts_with(head)) {
            p.value = pre.tensor(name);
          }
        });
      }
      outcome = fx::run_lenet5(s, f.pool, f.test, f.clients, initial);
    } else {
      outcome = fx::run_head(s, f.pool, f.test, f.clients, o.seed);
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double final_accuracy = std::nan("");
  std::size_t rejected = 0;
  for (const auto& r : outcome.history) {
    if (!std::isnan(r.accuracy)) {
      final_accuracy = r.accuracy;
    }
    rejected += r.rejected.size();
  }
  if (o.transport.rank() == 0) {
    std::printf(
        "%s on %s: final accuracy %.2f%% after %zu rounds, %.2f MB up, %.2f MB down (%.1f s)\n",
        o.strategy.c_str(), o.features.c_str(), 100 * final_accuracy, outcome.history.size(),
        outcome.history.empty() ? 0.0
                                : static_cast<double>(outcome.history.back().total_bytes_up) / 1e6,
        outcome.history.empty()
            ? 0.0
            : static_cast<double>(outcome.history.back().total_bytes_down) / 1e6,
        seconds);
  }
  std::size_t transport_bytes = 0;
  for (const auto& r : outcome.history) {
    transport_bytes += r.transport_bytes;
  }
  if (!o.out.empty()) {
    std::ofstream json(o.out);
    examples::json::Writer j(json);
    j.begin_object();
    j.field("strategy", o.strategy).field("features", o.features).field("model", o.model);
    j.field("partition", f.partition).field("alpha", o.alpha);
    j.field("clients", static_cast<std::int64_t>(f.clients.size()));
    j.field("partition_tv_distance", split_summary.mean_tv_distance());
    j.field("mean_classes_per_client", split_summary.mean_classes_per_client());
    j.field("per_round", o.per_round).field("seed", o.seed).field("lambda", o.lambda);
    j.field("feature_width", f.pool.sample_size());
    j.field("rounds", static_cast<std::int64_t>(outcome.history.size()));
    j.key("accuracy").begin_array();
    for (const auto& r : outcome.history) {
      if (std::isnan(r.accuracy)) {
        j.value(nullptr);
      } else {
        j.value(r.accuracy);
      }
    }
    j.end_array();
    j.key("bytes_up").begin_array();
    for (const auto& r : outcome.history) {
      j.value(static_cast<std::uint64_t>(r.total_bytes_up));
    }
    j.end_array();
    j.key("bytes_down").begin_array();
    for (const auto& r : outcome.history) {
      j.value(static_cast<std::uint64_t>(r.total_bytes_down));
    }
    j.end_array();
    j.field("final_accuracy", final_accuracy)
        .field("rejected_updates", static_cast<std::uint64_t>(rejected));
    if (!std::isnan(f.public_accuracy)) {
      j.field("public_extractor_accuracy", f.public_accuracy);
    }
    j.field("ranks", static_cast<std::int64_t>(o.transport.ranks()))
        .field("reduction", o.reduction)
        .field("transport_bytes_rank0", static_cast<std::uint64_t>(transport_bytes));
    j.field("seconds", seconds);
    j.end_object();
    if (!json) {
      throw error("cannot write " + o.out);
    }
  }
  return 0;
}

}  // namespace

int edgescale::examples::federated::run_federated(
    int argc, char** argv, const std::string& program,
    const std::function<fed::AnyTransport(bool fast)>& make_transport) {
  Options o = parse(argc, argv, program);
  try {
    o.transport = make_transport(o.reduction == "fast");
    const bool root = o.transport.rank() == 0;
    if (!root) {
      o.quiet = true;  // one progress display and one report: rank 0's
      o.out.clear();
    }
    if (root) {
      examples::check_output_file(o.out, "--out");
    }
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
  }
}
