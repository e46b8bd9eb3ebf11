// EXPECT-ERROR: HasBackward is false
// A user layer without backward() is not a Layer: putting it in a Sequential must not compile,
// and the message must say which requirement is missing.
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/sequential.hpp>

using namespace edgescale;

struct NoBackward {
  using scalar_type = float;
  using input_shape = Shape<10>;
  using output_shape = Shape<10>;
  ConstBatchView<float> forward(const ConstBatchView<float>& x) { return x; }
#ifdef EDGESCALE_FAILTEST_CONTROL
  ConstBatchView<float> backward(const ConstBatchView<float>& dy) {
    return dy;
  }
#endif
};

int main() {
  nn::Sequential<nn::Dense<4, 10>, NoBackward> net;
  return static_cast<int>(net.parameter_count() == 0);
}
