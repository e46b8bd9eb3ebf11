// The quantize example's quantization-aware training for LeNet-300-100 (examples/quantize/run.hpp).
#include "run.hpp"

namespace edgescale::examples::quantize {

EDGESCALE_QUANTIZE_QAT(, LeNet300100<>)

}  // namespace edgescale::examples::quantize
