// FedAdam and FedYogi on LeNet-5 (examples/federated/experiment.hpp), apart from the plain
// strategies of gradient_lenet5.cpp so each part compiles in under 15 s.
#include "gradient_impl.hpp"

namespace edgescale::examples::federated::detail {

Outcome run_lenet5_adaptive(const GradientSettings& s, const data::Dataset<float>& pool,
                            const data::Dataset<float>& test, const fed::Partition& clients,
                            const LeNet5<float>& initial) {
  return run_gradient<LeNet5<float>, nn::SoftmaxCrossEntropy, Servers::adaptive>(s, initial, pool,
                                                                                 test, clients);
}

}  // namespace edgescale::examples::federated::detail
