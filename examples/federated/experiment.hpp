// examples/federated/experiment.hpp — the gradient-based strategies of the federated example,
// compiled once per network in their own translation units (gradient_*.cpp): each strategy is a
// class template over the network, and instantiating all of them for every network in one file
// would make the example slow to compile.
#pragma once

#include <edgescale/data/dataset.hpp>
#include <edgescale/fed/client.hpp>
#include <edgescale/fed/detail/global_model.hpp>
#include <edgescale/fed/simulate.hpp>

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
};

struct Outcome {
  std::vector<fed::RoundReport> history;
  std::size_t model_bytes = 0;  ///< bytes of the values a round moves one way per client
};

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
