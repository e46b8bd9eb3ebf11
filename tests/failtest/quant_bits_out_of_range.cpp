// EXPECT-ERROR: bit widths are 2 to 8
// A 9-bit quantizer is refused at compile time, with the reason.
#include <edgescale/quant/quantizer.hpp>

#ifdef EDGESCALE_FAILTEST_CONTROL
constexpr int bits = 8;
#else
constexpr int bits = 9;
#endif

int main() {
  const auto q = edgescale::quant::Affine<bits>::from_range(-1.0F, 1.0F);
  return q.quantize(0.5F) > 0 ? 0 : 1;
}
