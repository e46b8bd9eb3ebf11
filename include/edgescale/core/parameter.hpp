// edgescale/core/parameter.hpp — one named tensor of a layer: values, gradient, optional mask.
//
//   Parameter<float> w("weight", {300, 784}, ParameterRole::weight);   // PyTorch (out, in) order
//   w.value.setRandom();  w.mask = ...;  w.apply_mask();
//
// A layer owns its parameters; networks, optimizers, scorers, quantizers and federated strategies
// reach them by name through the named-tensor contract (core/concepts.hpp) or as one flat
// ParameterSet (core/parameter_set.hpp).
#pragma once

#include <edgescale/core/tensor.hpp>

#include <string>
#include <utility>
#include <vector>

namespace edgescale {

/// What a parameter tensor is for. The role decides who touches it:
///   weight  a weight matrix or convolution kernel: trained, and what pruning scorers rank and
///           quantizers quantize per output channel;
///   bias    an additive term: trained, never pruned;
///   scale   a per-channel multiplier such as BatchNorm's γ: trained, never pruned;
///   buffer  state that is saved and loaded but not trained (BatchNorm's running statistics).
enum class ParameterRole { weight, bias, scale, buffer };

/// One parameter tensor of a layer: values, gradient and an optional mask, stored flat in the
/// PyTorch order of `shape` (row-major), so a tensor saves to .npy and loads into PyTorch as is.
///
/// The mask, when present (same size as the values, entries 0 or 1), is the pruning contract:
/// optimizers zero the masked gradient before and the masked values after every step, so masked
/// weights stay exactly zero through training.
template <class T>
struct Parameter {
  using scalar_type = T;

  std::string name;          ///< local name: "weight", "bias", "running_mean"
  std::vector<Index> shape;  ///< PyTorch order, e.g. {out, in} or {cout, cin, kh, kw}
  ParameterRole role = ParameterRole::weight;
  Vector<T> value;
  Vector<T> grad;
  Vector<T> mask;  ///< empty: dense

  Parameter() = default;
  Parameter(std::string name_, std::vector<Index> shape_, ParameterRole role_)
      : name(std::move(name_)), shape(std::move(shape_)), role(role_) {
    const Index n = shape_size(shape);
    value = Vector<T>::Zero(n);
    grad = role == ParameterRole::buffer ? Vector<T>() : Vector<T>::Zero(n);
  }

  [[nodiscard]] Index size() const { return value.size(); }
  /// Trained by optimizers (weights, biases, scales; not buffers).
  [[nodiscard]] bool trainable() const { return role != ParameterRole::buffer; }
  /// A weight matrix or kernel: what pruning ranks and masks.
  [[nodiscard]] bool prunable() const { return role == ParameterRole::weight; }
  [[nodiscard]] bool masked() const { return mask.size() != 0; }
  /// Multiplies the values by the mask (no-op when dense).
  void apply_mask() {
    if (masked()) {
      value.array() *= mask.array();
    }
  }
  /// Multiplies the gradient by the mask (no-op when dense).
  void mask_gradient() {
    if (masked() && grad.size() != 0) {
      grad.array() *= mask.array();
    }
  }
  void zero_grad() { grad.setZero(); }
};

}  // namespace edgescale
