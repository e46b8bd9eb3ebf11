// The plain gradient-based strategies on LeNet-5 (examples/federated/experiment.hpp); FedAdam and
// FedYogi are in gradient_lenet5_adaptive.cpp.
#include "gradient_impl.hpp"

namespace edgescale::examples::federated {

bool is_gradient_strategy(const std::string& name) {
  return name == "fedavg" || name == "fedavgm" || name == "fedprox" || name == "scaffold" ||
         name == "fedadam" || name == "fedyogi";
}

Outcome run_lenet5(const GradientSettings& s, const data::Dataset<float>& pool,
                   const data::Dataset<float>& test, const fed::Partition& clients,
                   const LeNet5<float>& initial) {
  if (detail::is_adaptive(s.strategy)) {
    return detail::run_lenet5_adaptive(s, pool, test, clients, initial);
  }
  return detail::run_gradient<LeNet5<float>, nn::SoftmaxCrossEntropy, detail::Servers::plain>(
      s, initial, pool, test, clients);
}

}  // namespace edgescale::examples::federated
