// edgescale/nn/flatten.hpp — Flatten: (C, H, W) samples become feature vectors of C·H·W values.
//
// Samples are already stored flat in (C, H, W) order, so Flatten moves no data: forward and
// backward return their argument. It exists to make the shape change explicit in a network.
#pragma once

#include <edgescale/core/tensor.hpp>

namespace edgescale::nn {

template <class T, class S>
class FlattenLayer {
 public:
  using scalar_type = T;
  using input_shape = S;
  using output_shape = Shape<S::size>;

  ConstBatchView<T> forward(const ConstBatchView<T>& x) { return x; }
  ConstBatchView<T> backward(const ConstBatchView<T>& dy) { return dy; }
};

struct Flatten {
  template <StaticShape S>
  static constexpr bool accepts = true;
  template <class T, StaticShape S>
  using layer = FlattenLayer<T, S>;
};

}  // namespace edgescale::nn
