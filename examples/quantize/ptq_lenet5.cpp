// The quantize example's post-training quantization and the report for LeNet-5
// (examples/quantize/run.hpp).
#include "run.hpp"

namespace edgescale::examples::quantize {

EDGESCALE_QUANTIZE_PTQ(, LeNet5<>)

}  // namespace edgescale::examples::quantize
