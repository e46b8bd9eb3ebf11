// The gradient-based strategies on LeNet-5 (examples/federated/experiment.hpp).
#include "gradient_impl.hpp"

namespace edgescale::examples::federated {

bool is_gradient_strategy(const std::string& name) {
  return name == "fedavg" || name == "fedavgm" || name == "fedprox" || name == "scaffold" ||
         name == "fedadam" || name == "fedyogi";
}

Outcome run_lenet5(const GradientSettings& s, const data::Dataset<float>& pool,
                   const data::Dataset<float>& test, const fed::Partition& clients,
                   const LeNet5<float>& initial) {
  return detail::run_gradient(s, initial, pool, test, clients);
}

}  // namespace edgescale::examples::federated
