// The gradient-based strategies on linear heads Dense<D, 10> over features
// (examples/federated/experiment.hpp).
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/sequential.hpp>

#include "gradient_impl.hpp"

#include <string>

namespace edgescale::examples::federated {

namespace {
template <int D>
Outcome run_width(const GradientSettings& s, const data::Dataset<float>& pool,
                  const data::Dataset<float>& test, const fed::Partition& clients,
                  std::uint64_t seed) {
  using Head = nn::BasicSequential<float, nn::Dense<D, 10>>;
  Rng init = make_stream(seed, "init");
  const Head head{nn::init::kaiming_normal, init};
  return detail::run_gradient(s, head, pool, test, clients);
}
}  // namespace

Outcome run_head(const GradientSettings& s, const data::Dataset<float>& pool,
                 const data::Dataset<float>& test, const fed::Partition& clients,
                 std::uint64_t seed) {
  switch (pool.sample_size()) {
    case 84:
      return run_width<84>(s, pool, test, clients, seed);
    case 784:
      return run_width<784>(s, pool, test, clients, seed);
    case 1024:
      return run_width<1024>(s, pool, test, clients, seed);
    default:
      throw argument_error(
          "a gradient-trained head needs features of width 84, 784 or 1024 (a "
          "static shape), got " +
          std::to_string(pool.sample_size()) + "; FED3R and FedNCM take any width");
  }
}

}  // namespace edgescale::examples::federated
