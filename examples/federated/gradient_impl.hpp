// examples/federated/gradient_impl.hpp — runs one gradient-based strategy on one network type;
// included by the gradient_*.cpp parts only. A part may compile a subset of the servers
// (Servers), so LeNet-5's FedAvg/SCAFFOLD and its FedAdam/FedYogi are two translation units,
// each under the 15 s an example part may take.
#pragma once

#include <edgescale/fed/fedavg.hpp>
#include <edgescale/fed/fedopt.hpp>
#include <edgescale/fed/scaffold.hpp>
#include <edgescale/fed/simulate.hpp>
#include <edgescale/nn/loss.hpp>

#include "experiment.hpp"

#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <type_traits>

namespace edgescale::examples::federated::detail {

inline void print_round(const fed::RoundReport& r, int rounds) {
  std::fprintf(stderr, "\rround %4d/%d  accuracy %6.2f%%  up %8.2f MB  down %8.2f MB  %5.2f s ",
               r.round + 1, rounds, 100.0 * r.accuracy, static_cast<double>(r.total_bytes_up) / 1e6,
               static_cast<double>(r.total_bytes_down) / 1e6, r.seconds);
  if (!r.rejected.empty()) {
    std::fprintf(stderr, "\n  %zu update(s) rejected, first: client %lld: %s\n", r.rejected.size(),
                 static_cast<long long>(r.rejected[0].client), r.rejected[0].reason.c_str());
  }
  if (r.round + 1 == rounds) {
    std::fputc('\n', stderr);
  }
}

template <class Strategy>
Outcome simulate(Strategy& strategy, const GradientSettings& s, const data::Dataset<float>& pool,
                 const data::Dataset<float>& test, const fed::Partition& clients) {
  fed::Simulation sim(strategy, pool, clients, s.simulation, s.transport);
  Outcome out;
  if (s.quiet) {
    out.history = sim.run(s.rounds, test);
  } else {
    out.history =
        sim.run(s.rounds, test, [&](const fed::RoundReport& r) { print_round(r, s.rounds); });
  }
  return out;
}

/// LeNet-5 with FedAdam or FedYogi (gradient_lenet5_adaptive.cpp).
Outcome run_lenet5_adaptive(const GradientSettings& s, const data::Dataset<float>& pool,
                            const data::Dataset<float>& test, const fed::Partition& clients,
                            const LeNet5<float>& initial);

/// Which servers a part compiles: all, the plain ones (FedAvg, FedAvgM, FedProx, SCAFFOLD), or
/// the adaptive ones (FedAdam, FedYogi).
enum class Servers { all, plain, adaptive };

inline bool is_adaptive(const std::string& strategy) {
  return strategy == "fedadam" || strategy == "fedyogi";
}

template <class Net, class Loss = nn::SoftmaxCrossEntropy, Servers Compiled = Servers::all>
Outcome run_gradient(const GradientSettings& s, const Net& initial,
                     const data::Dataset<float>& pool, const data::Dataset<float>& test,
                     const fed::Partition& clients, const Loss& loss = {}) {
  if constexpr (Compiled != Servers::adaptive) {
    if (s.strategy == "fedavg" || s.strategy == "fedavgm" || s.strategy == "fedprox") {
      fed::FedAvg<Net, fed::WeightedMean, Loss> strategy(
          initial, {.local = s.local,
                    .server_learning_rate = s.server_learning_rate,
                    .server_momentum = s.strategy == "fedavgm" ? s.server_momentum : 0.0,
                    .proximal_mu = s.strategy == "fedprox" ? s.proximal_mu : 0.0,
                    .frozen = s.frozen,
                    .loss = loss});
      return simulate(strategy, s, pool, test, clients);
    }
    if (s.strategy == "scaffold") {
      fed::Scaffold<Net, Loss> strategy(initial, {.local = s.local,
                                                  .server_learning_rate = s.server_learning_rate,
                                                  .frozen = s.frozen,
                                                  .loss = loss});
      return simulate(strategy, s, pool, test, clients);
    }
  }
  // FED3R+FT fine-tunes with FedAvg, FedAvgM or SCAFFOLD only: the adaptive servers are
  // compiled for the plain loss.
  if constexpr (std::is_same_v<Loss, nn::SoftmaxCrossEntropy> && Compiled != Servers::plain) {
    if (s.strategy == "fedadam") {
      fed::FedAdam<Net, fed::WeightedMean, Loss> strategy(
          initial, {.local = s.local,
                    .server_learning_rate = s.server_learning_rate,
                    .frozen = s.frozen,
                    .loss = loss});
      return simulate(strategy, s, pool, test, clients);
    }
    if (s.strategy == "fedyogi") {
      fed::FedYogi<Net, fed::WeightedMean, Loss> strategy(
          initial, {.local = s.local,
                    .server_learning_rate = s.server_learning_rate,
                    .frozen = s.frozen,
                    .loss = loss});
      return simulate(strategy, s, pool, test, clients);
    }
  }
  throw std::invalid_argument("unknown gradient strategy '" + s.strategy + "'");
}

}  // namespace edgescale::examples::federated::detail
