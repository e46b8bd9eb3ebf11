// edgescale/nn/activation.hpp — element-wise activations: ReLU, LeakyReLU, Tanh, Sigmoid.
//
// Each derivative is written in terms of the output y, so the layer keeps y (its own output
// workspace) and nothing else: ReLU'(y) = [y > 0], Tanh'(y) = 1 - y², Sigmoid'(y) = y (1 - y),
// LeakyReLU'(y) = 1 if y > 0 else slope (slope > 0 keeps the sign).
#pragma once

#include <edgescale/core/tensor.hpp>

namespace edgescale::nn {

namespace detail {
struct ReluFn {
  template <class A>
  static auto value(const A& x) {
    return x.cwiseMax(typename A::Scalar(0));
  }
  template <class A, class B>
  static auto gradient(const A& y, const B& dy) {
    using T = typename A::Scalar;
    return (y > T(0)).select(dy, T(0));
  }
};
template <int Num, int Den>
struct LeakyReluFn {
  static_assert(Num > 0 && Den > 0, "LeakyReLU<Num, Den>: the slope Num/Den must be positive");
  template <class T>
  static constexpr T slope = static_cast<T>(Num) / static_cast<T>(Den);
  template <class A>
  static auto value(const A& x) {
    using T = typename A::Scalar;
    return (x > T(0)).select(x, x * slope<T>);
  }
  template <class A, class B>
  static auto gradient(const A& y, const B& dy) {
    using T = typename A::Scalar;
    return (y > T(0)).select(dy, dy * slope<T>);
  }
};
struct TanhFn {
  template <class A>
  static auto value(const A& x) {
    return x.tanh();
  }
  template <class A, class B>
  static auto gradient(const A& y, const B& dy) {
    using T = typename A::Scalar;
    return dy * (T(1) - y.square());
  }
};
struct SigmoidFn {
  // 1 / (1 + e^-x), written with tanh to stay finite for large |x|: σ(x) = (1 + tanh(x/2)) / 2.
  template <class A>
  static auto value(const A& x) {
    using T = typename A::Scalar;
    return T(0.5) * ((x * T(0.5)).tanh() + T(1));
  }
  template <class A, class B>
  static auto gradient(const A& y, const B& dy) {
    using T = typename A::Scalar;
    return dy * y * (T(1) - y);
  }
};
}  // namespace detail

/// A shape-preserving element-wise layer whose derivative is a function of its output.
template <class T, class S, class Fn>
class ElementwiseLayer {
 public:
  using scalar_type = T;
  using function = Fn;  ///< detail::ReluFn, ...: lets visitors pick layers by activation
  using input_shape = S;
  using output_shape = S;

  ElementwiseLayer() { out_.reserve(S::size, 1); }

  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    out_.resize(S::size, x.cols()).array() = Fn::value(x.array());
    return out_.cview();
  }

  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    const auto y = out_.cview();
    grad_in_.resize(S::size, dy.cols()).array() = Fn::gradient(y.array(), dy.array());
    return grad_in_.cview();
  }

  /// The output and input-gradient buffers (see Workspace; nn::release_workspaces).
  template <class F>
  void for_each_workspace(F&& f) {
    f(out_);
    f(grad_in_);
  }

 private:
  Workspace<T> out_;
  Workspace<T> grad_in_;
};

/// Spec of an element-wise activation (any input shape).
template <class Fn>
struct Activation {
  template <StaticShape S>
  static constexpr bool accepts = true;
  template <class T, StaticShape S>
  using layer = ElementwiseLayer<T, S, Fn>;
};

using ReLU = Activation<detail::ReluFn>;
/// Whether L is a ReLU layer, for layer visitors (gate recording, PX).
template <class L>
inline constexpr bool is_relu_layer_v = false;
template <class T, class S>
inline constexpr bool is_relu_layer_v<ElementwiseLayer<T, S, detail::ReluFn>> = true;
/// Leaky ReLU with slope Num/Den for negative inputs (default 0.01, as PyTorch).
template <int Num = 1, int Den = 100>
using LeakyReLU = Activation<detail::LeakyReluFn<Num, Den>>;
using Tanh = Activation<detail::TanhFn>;
using Sigmoid = Activation<detail::SigmoidFn>;

}  // namespace edgescale::nn
