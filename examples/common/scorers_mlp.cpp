// examples/common/scorers_mlp.cpp — the scorers of common/scorers.hpp for LeNet-300-100, float and
// double (one translation unit per network, so a parallel build compiles them side by side).
#include "scorers_impl.hpp"

namespace edgescale::examples {
EDGESCALE_EXAMPLES_SCORERS(, LeNet300100<float>)
EDGESCALE_EXAMPLES_SCORERS(, LeNet300100<double>)
}  // namespace edgescale::examples
