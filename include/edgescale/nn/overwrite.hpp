// edgescale/nn/overwrite.hpp — backward that *writes* the parameter gradients instead of adding
// to them, for a training step whose gradients would have been zeroed first.
//
//   net.zero_grad(); net.backward_parameters(dy);             // accumulate (the layer contract)
//   net.backward_parameters(dy, nn::overwrite_gradients);     // the same gradients, one pass less
//
// Both leave the same values in every Parameter::grad (bit for bit: the first contribution is
// written where it would have been added to zero). The second skips the pass that zeroes every
// gradient before forward, and a layer that supports it writes its gradient without reading the
// old one: at batch 1 a Dense layer's weight gradient is a rank-1 product that would otherwise
// read and write the whole matrix. PyTorch made the same choice its default in 2.0
// (`zero_grad(set_to_none=True)`: the next backward assigns instead of accumulating).
//
// A layer opts in with the overloads `backward(dy, OverwriteGradients)` and
// `backward_parameters(dy, OverwriteGradients)` (OverwritesGradients); for any other layer the
// free functions below zero its gradients just before its accumulating backward, so every layer
// works in a network that is stepped this way. nn::Trainer steps so when the network offers it.
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/parameter.hpp>
#include <edgescale/core/tensor.hpp>

#include <concepts>
#include <string_view>

namespace edgescale::nn {

/// Tag: backward writes the parameter gradients (as if they had been zero) instead of adding.
struct OverwriteGradients {
  explicit OverwriteGradients() = default;
};
inline constexpr OverwriteGradients overwrite_gradients{};

/// A layer (or network) with the overwriting overloads of backward and backward_parameters.
template <class L>
concept OverwritesGradients = HasScalarType<L> &&
    requires(L& layer, const ConstBatchView<typename L::scalar_type>& dy, OverwriteGradients tag) {
  { layer.backward(dy, tag) } -> std::convertible_to<ConstBatchView<typename L::scalar_type>>;
  layer.backward_parameters(dy, tag);
};

/// Zeroes every gradient of `layer` or network (none when it has no tensors; buffers have no
/// gradient). Sequential::zero_grad is this.
template <class L>
void zero_gradients(L& layer) {
  if constexpr (NamedTensors<L>) {
    for_each_parameter(layer, [](std::string_view, auto& p) { p.zero_grad(); });
  }
}

/// layer.backward(dy) with the gradients written: the layer's own overload, or zero then add.
template <class L>
ConstBatchView<typename L::scalar_type> backward_overwriting(
    L& layer, const ConstBatchView<typename L::scalar_type>& dy) {
  if constexpr (OverwritesGradients<L>) {
    return layer.backward(dy, overwrite_gradients);
  } else {
    zero_gradients(layer);
    return layer.backward(dy);
  }
}

/// layer.backward_parameters(dy) with the gradients written (or backward, when the layer has no
/// parameter-only form).
template <class L>
void backward_parameters_overwriting(L& layer, const ConstBatchView<typename L::scalar_type>& dy) {
  if constexpr (OverwritesGradients<L>) {
    layer.backward_parameters(dy, overwrite_gradients);
  } else {
    zero_gradients(layer);
    if constexpr (requires { layer.backward_parameters(dy); }) {
      layer.backward_parameters(dy);
    } else {
      layer.backward(dy);
    }
  }
}

}  // namespace edgescale::nn
