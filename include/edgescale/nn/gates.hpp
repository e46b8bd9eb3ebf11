// edgescale/nn/gates.hpp — capture one network's ReLU gates and impose them on a twin.
//
//   nn::GateRecorder<double> gates;
//   net.forward(x, gates);                       // a forward hook: gates a = [pre-activation > 0]
//   nn::gated_twin_t<Net> twin;                  // Net with every ReLU replaced by a GatedReLU
//   copy_tensors(net, twin);  /* ... set the twin's weights as needed ... */
//   nn::impose_gates(twin, gates);               // each GatedReLU multiplies by the recorded gate
//   auto z = twin.forward(x2);                   // routed through net's activation pattern
//
// Why: a ReLU network is a sum over paths of (product of weights) × (input) × (0/1 gates along the
// path). PX (Iurada et al., CVPR 2024) evaluates path sums of an auxiliary network — weights set to
// 1, input squared — under the gates of the real network on the pruning batch; that auxiliary
// network is this twin. A GatedReLU with a gate computes y = a ⊙ x and dy/dx = a, a linear map;
// with no gate it is an ordinary ReLU. Gates are per value and per sample (features x batch), so
// the twin must run on a batch of the same size as the recorded one.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/nn/transform.hpp>

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>

namespace edgescale::nn {

/// A forward hook that records the 0/1 gates [output > 0] of every ReLU layer, by layer path (for
/// a ReLU, output > 0 exactly when its input > 0). Recording again replaces the gates.
template <class T>
class GateRecorder {
 public:
  template <class L>
  void operator()(std::string_view path, const L& /*layer*/, const ConstBatchView<T>& output) {
    if constexpr (is_relu_layer_v<L>) {
      auto it = gates_.find(path);
      if (it == gates_.end()) {
        it = gates_.emplace(std::string(path), Matrix<T>()).first;
      }
      it->second = (output.array() > T(0)).template cast<T>();
    }
  }

  /// The gates of the ReLU at `path` (features x batch); throws argument_error if none recorded.
  [[nodiscard]] const Matrix<T>& gate(std::string_view path) const {
    const auto it = gates_.find(path);
    if (it == gates_.end()) {
      throw argument_error("GateRecorder: no gates recorded for a ReLU at path '" +
                           std::string(path) + "'");
    }
    return it->second;
  }
  [[nodiscard]] const std::map<std::string, Matrix<T>, std::less<>>& gates() const {
    return gates_;
  }
  void clear() { gates_.clear(); }

 private:
  std::map<std::string, Matrix<T>, std::less<>> gates_;
};

/// A ReLU whose gates can be imposed: with a gate a (set_gate), y = a ⊙ x and dx = a ⊙ dy; without,
/// y = max(x, 0) as ReLU.
template <class T, class S>
class GatedReluLayer {
 public:
  using scalar_type = T;
  using input_shape = S;
  using output_shape = S;

  GatedReluLayer() { out_.reserve(S::size, 1); }

  /// Imposes gates (S::size x batch, entries 0 or 1); the next forward must have that batch size.
  void set_gate(const Matrix<T>& gate) {
    if (gate.rows() != S::size) {
      throw shape_error("GatedReLU: a gate of " + std::to_string(gate.rows()) +
                        " values per sample for a layer of " + std::to_string(S::size));
    }
    gate_ = gate;
  }
  /// Back to an ordinary ReLU.
  void clear_gate() { gate_.resize(0, 0); }
  [[nodiscard]] bool gated() const { return gate_.size() != 0; }
  [[nodiscard]] const Matrix<T>& gate() const { return gate_; }

  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    auto y = out_.resize(S::size, x.cols());
    if (gated()) {
      check_batch(x.cols());
      y.array() = x.array() * gate_.array();
    } else {
      y.array() = detail::ReluFn::value(x.array());
    }
    return out_.cview();
  }

  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    auto dx = grad_in_.resize(S::size, dy.cols());
    if (gated()) {
      check_batch(dy.cols());
      dx.array() = dy.array() * gate_.array();
    } else {
      dx.array() = detail::ReluFn::gradient(out_.cview().array(), dy.array());
    }
    return grad_in_.cview();
  }

  template <class F>
  void for_each_workspace(F&& f) {
    f(out_);
    f(grad_in_);
  }

 private:
  void check_batch(Index cols) const {
    if (cols != gate_.cols()) {
      throw shape_error("GatedReLU: gates were recorded for a batch of " +
                        std::to_string(gate_.cols()) + " samples, this batch has " +
                        std::to_string(cols));
    }
  }

  Matrix<T> gate_;
  Workspace<T> out_;
  Workspace<T> grad_in_;
};

/// Layer spec: a ReLU whose gates can be imposed (see GatedReluLayer).
struct GatedReLU {
  template <StaticShape S>
  static constexpr bool accepts = true;
  template <class T, StaticShape S>
  using layer = GatedReluLayer<T, S>;
};

template <class L>
inline constexpr bool is_gated_relu_layer_v = false;
template <class T, class S>
inline constexpr bool is_gated_relu_layer_v<GatedReluLayer<T, S>> = true;

namespace detail {
template <class Spec>
struct relu_to_gated {
  using type = Spec;
};
template <>
struct relu_to_gated<ReLU> {
  using type = GatedReLU;
};
}  // namespace detail

/// Net with every ReLU a GatedReLU: same layers, paths and tensor names otherwise.
template <class Net, class U = typename Net::scalar_type>
using gated_twin_t = transform_specs_t<Net, detail::relu_to_gated, U>;

/// Imposes the recorded gates on every GatedReLU of `twin`, matched by path. Throws
/// argument_error when a GatedReLU has no recorded gate, shape_error when sizes differ; the twin
/// is unchanged on error.
template <class Net, class T>
void impose_gates(Net& twin, const GateRecorder<T>& recorder) {
  using U = typename Net::scalar_type;
  for_each_layer(std::as_const(twin), [&](std::string_view path, const auto& layer) {
    using L = std::remove_cvref_t<decltype(layer)>;
    if constexpr (is_gated_relu_layer_v<L>) {
      if (recorder.gate(path).rows() != L::input_shape::size) {
        throw shape_error("impose_gates: the gates recorded at '" + std::string(path) + "' have " +
                          std::to_string(recorder.gate(path).rows()) +
                          " values per sample, the twin's layer " +
                          std::to_string(L::input_shape::size));
      }
    }
  });
  for_each_layer(twin, [&](std::string_view path, auto& layer) {
    if constexpr (is_gated_relu_layer_v<std::remove_cvref_t<decltype(layer)>>) {
      layer.set_gate(recorder.gate(path).template cast<U>());
    }
  });
}

}  // namespace edgescale::nn
