// FED3R+FT's fine-tuning of LeNet-5 under a softmax temperature
// (examples/federated/experiment.hpp).
#include <edgescale/nn/loss.hpp>

#include "gradient_impl.hpp"

namespace edgescale::examples::federated {

Outcome run_finetune(const GradientSettings& s, const data::Dataset<float>& pool,
                     const data::Dataset<float>& test, const fed::Partition& clients,
                     const LeNet5<float>& initial, double temperature) {
  return detail::run_gradient(s, initial, pool, test, clients,
                              nn::TemperedSoftmaxCrossEntropy{.temperature = temperature});
}

}  // namespace edgescale::examples::federated
