// EXPECT-ERROR: Shape dimensions must be positive
// A static shape with a zero dimension is a compile error, not an empty tensor at run time.
#include <edgescale/core/tensor.hpp>

#ifdef EDGESCALE_FAILTEST_CONTROL
using Features = edgescale::Shape<1>;
#else
using Features = edgescale::Shape<0>;
#endif

int main() {
  return Features::rank == 1 ? 0 : 1;
}
