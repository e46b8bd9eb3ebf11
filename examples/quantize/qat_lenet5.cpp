// The quantize example's quantization-aware training for LeNet-5 (examples/quantize/run.hpp).
#include "run.hpp"

namespace edgescale::examples::quantize {

EDGESCALE_QUANTIZE_QAT(, LeNet5<>)

}  // namespace edgescale::examples::quantize
