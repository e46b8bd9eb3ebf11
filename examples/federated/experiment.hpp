// examples/federated/experiment.hpp — the gradient-based strategies of the federated example,
// compiled once per network in their own translation units (gradient_*.cpp): each strategy is a
// class template over the network, and instantiating all of them for every network in one file
// would make the example slow to compile.
#pragma once

#include <edgescale/core/tensor.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/fed/client.hpp>
#include <edgescale/fed/detail/global_model.hpp>
#include <edgescale/fed/simulate.hpp>
#include <edgescale/fed/transport.hpp>

#include "../networks.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace edgescale::examples::federated {

/// How a gradient-based strategy runs.
struct GradientSettings {
  std::string strategy = "fedavg";  ///< fedavg|fedavgm|fedprox|scaffold|fedadam|fedyogi
  fed::LocalTraining local{};
  double server_learning_rate = 1.0;  ///< η_g (FedAdam/FedYogi: their η)
  double server_momentum = 0.9;       ///< FedAvgM's β
  double proximal_mu = 0.01;          ///< FedProx's μ
  std::vector<std::string> frozen{};  ///< tensors that stay as broadcast
  fed::SimulationOptions simulation{};
  int rounds = 100;
  bool quiet = false;
  fed::AnyTransport transport{};  ///< in-process, or MPI ranks (federated_mpi)
};

struct Outcome {
  std::vector<fed::RoundReport> history;
};

/// How FED3R, FED3R-RF or FedNCM runs: one pass over the clients (cyclic sampling) unless
/// `rounds` says otherwise.
struct StatisticsSettings {
  std::string strategy = "fed3r";  ///< fed3r|fed3r-rf|fedncm
  double lambda = 0.01;
  Index rf_width = 2048;
  double rf_sigma = 0;  ///< 0: √d
  std::uint64_t rf_seed = 0;
  fed::SimulationOptions simulation{};
  int rounds = 0;  ///< 0: one pass
  bool quiet = false;
  fed::AnyTransport transport{};  ///< in-process, or MPI ranks (federated_mpi)
};

/// Runs FED3R, FED3R-RF or FedNCM on features; with `ridge_weights`, FED3R's W is written there.
Outcome run_statistics(const StatisticsSettings& s, const data::Dataset<float>& pool,
                       const data::Dataset<float>& test, const fed::Partition& clients,
                       Matrix<double>* ridge_weights = nullptr);

/// Random ReLU features of a dataset (fed::RandomFeatures, from `seed`).
data::Dataset<float> random_relu_features(const data::Dataset<float>& data, Index width,
                                          std::uint64_t seed);

/// LeNet-5 trained centrally on `public_set` (SGD momentum 0.9, lr 0.05 with a per-step cosine,
/// weight decay 5e-4, batch 64) and its test accuracy.
struct PublicExtractor {
  LeNet5<float> net;
  double accuracy = 0;
};
PublicExtractor train_public_extractor(const data::Dataset<float>& public_set,
                                       const data::Dataset<float>& test, int epochs,
                                       std::uint64_t seed, bool quiet);
/// ψ(x): LeNet-5's 84 penultimate activations of every sample.
data::Dataset<float> lenet5_features(LeNet5<float>& net, const data::Dataset<float>& images);

/// The strategies the example knows, by name.
bool is_gradient_strategy(const std::string& name);

/// LeNet-5 on the images, from `initial`.
Outcome run_lenet5(const GradientSettings& s, const data::Dataset<float>& pool,
                   const data::Dataset<float>& test, const fed::Partition& clients,
                   const LeNet5<float>& initial);

/// FED3R+FT: LeNet-5 from `initial` (the public extractor and the unit-norm ridge head) fine-tuned
/// by s.strategy with the clients' logits divided by `temperature`.
Outcome run_finetune(const GradientSettings& s, const data::Dataset<float>& pool,
                     const data::Dataset<float>& test, const fed::Partition& clients,
                     const LeNet5<float>& initial, double temperature);

/// A linear softmax head (Dense<D, 10>) on features ψ(x), from Kaiming-normal weights drawn from
/// `seed`. D must be one of head_widths (the head is a static shape).
Outcome run_head(const GradientSettings& s, const data::Dataset<float>& pool,
                 const data::Dataset<float>& test, const fed::Partition& clients,
                 std::uint64_t seed);
inline constexpr Index head_widths[] = {84, 784, 1024};

}  // namespace edgescale::examples::federated
