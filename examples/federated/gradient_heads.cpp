// The gradient-based strategies on linear heads Dense<D, 10> over features
// (examples/federated/experiment.hpp): one translation unit per width (gradient_head.hpp).
#include <edgescale/core/error.hpp>

#include "gradient_head.hpp"

#include <string>

namespace edgescale::examples::federated {

Outcome run_head(const GradientSettings& s, const data::Dataset<float>& pool,
                 const data::Dataset<float>& test, const fed::Partition& clients,
                 std::uint64_t seed) {
  switch (pool.sample_size()) {
    case 84:
      return detail::run_head_84(s, pool, test, clients, seed);
    case 784:
      return detail::run_head_784(s, pool, test, clients, seed);
    case 1024:
      return detail::run_head_1024(s, pool, test, clients, seed);
    default:
      throw argument_error(
          "a gradient-trained head needs features of width 84, 784 or 1024 (a "
          "static shape), got " +
          std::to_string(pool.sample_size()) + "; FED3R and FedNCM take any width");
  }
}

}  // namespace edgescale::examples::federated
