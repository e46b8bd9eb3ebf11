// edgescale/nn/detail/window.hpp — the geometry that Conv2D and the pools share: whether a
// sliding K x K window fits an input shape, and the output extent.
#pragma once

#include <edgescale/core/tensor.hpp>

namespace edgescale::nn::detail {

/// Output extent of a window of size k, stride s, zero padding p over `in` values (PyTorch's
/// floor((in + 2p - k) / s) + 1).
constexpr int window_extent(int in, int k, int s, int p) {
  return (in + 2 * p - k) / s + 1;
}

/// Whether S is an image shape (C, H, W) with `channels` channels (any when channels < 0) over
/// which a k x k window with padding p fits. A false answer, never a hard error, for other
/// shapes: specs use it for `accepts`.
template <class S, int channels, int k, int p>
constexpr bool window_fits() {
  if constexpr (ImageShape<S>) {
    return (channels < 0 || S::dims[0] == channels) && S::dims[1] + 2 * p >= k &&
           S::dims[2] + 2 * p >= k;
  } else {
    return false;
  }
}

}  // namespace edgescale::nn::detail
