// EXPECT-ERROR: LayerAcceptsPreviousOutput
// A Dense<200, 10> after a layer that produces 300 features must not compile, and the message
// must name the offending layer and the shape it was offered.
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/sequential.hpp>

using namespace edgescale;

#ifdef EDGESCALE_FAILTEST_CONTROL
using Net = nn::Sequential<nn::Dense<784, 300>, nn::ReLU, nn::Dense<300, 10>>;
#else
using Net = nn::Sequential<nn::Dense<784, 300>, nn::ReLU, nn::Dense<200, 10>>;
#endif

int main() {
  Net net;
  return static_cast<int>(net.parameter_count() == 0);
}
