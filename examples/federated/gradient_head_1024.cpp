// The gradient-based strategies on a linear head Dense<1024, 10> (gradient_head.hpp).
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/sequential.hpp>

#include "gradient_head.hpp"
#include "gradient_impl.hpp"

namespace edgescale::examples::federated::detail {

EDGESCALE_FEDERATED_HEAD(1024) {
  using Head = nn::BasicSequential<float, nn::Dense<1024, 10>>;
  Rng init = make_stream(seed, "init");
  const Head head{nn::init::kaiming_normal, init};
  return run_gradient(s, head, pool, test, clients);
}

}  // namespace edgescale::examples::federated::detail
