// The quantize example for LeNet-5 (examples/quantize/run.hpp).
#include "run.hpp"

namespace edgescale::examples::quantize {

int run_lenet5(const Options& o) {
  return detail::run<LeNet5<>>(o, "LeNet-5");
}

}  // namespace edgescale::examples::quantize
