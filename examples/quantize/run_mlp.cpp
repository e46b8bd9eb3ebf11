// The quantize example for LeNet-300-100 (examples/quantize/run.hpp).
#include "run.hpp"

namespace edgescale::examples::quantize {

int run_mlp(const Options& o) {
  return detail::run<LeNet300100<>>(o, "LeNet-300-100");
}

}  // namespace edgescale::examples::quantize
