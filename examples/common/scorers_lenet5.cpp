// examples/common/scorers_lenet5.cpp — the scorers of common/scorers.hpp for LeNet-5, float and
// double (one translation unit per network, so a parallel build compiles them side by side).
#include "scorers_impl.hpp"

namespace edgescale::examples {
EDGESCALE_EXAMPLES_SCORERS(, LeNet5<float>)
EDGESCALE_EXAMPLES_SCORERS(, LeNet5<double>)
}  // namespace edgescale::examples
