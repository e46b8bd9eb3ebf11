// edgescale/prune/detail/hessian_vector.hpp — the loss gradient g and the exact Hessian-vector
// product Hg of a piecewise-linear network under the mean softmax cross-entropy (GraSP).
//
// Method: forward-over-reverse (Pearlmutter's R-operator) written with the layers' own forward
// and backward, exact to rounding. With the ReLU gates and max-pool choices fixed (constant
// around θ unless a pre-activation is exactly at a kink), every layer is linear in its input, and
// Dense and Conv2D are bilinear in (W, x) plus a bias, so d/dε of the forward and of the
// backward along θ + εv is, for y = W x + b with v = (V, 0) on the weights only:
//   tangent forward    ẏ = W ẋ + V x             ẋ through ReLU, pooling, Flatten: J ẋ
//   output             ṙ = ∂²L/∂z² ż              the cross-entropy Hessian, per sample
//   tangent backward   δ̇_in = Wᵀ δ̇ + Vᵀ δ       through ReLU, pooling: Jᵀ δ̇ (the layer's backward)
//   product            (Hv)_W = δ̇ xᵀ + δ ẋᵀ      the cross-layer (bilinear) terms included
// where δ is the real backward's gradient at the layer's output. Each product is one forward or
// backward of a copy of the layer: W ẋ and δ ẋᵀ by a copy with its bias zeroed, V x and Vᵀ δ by
// a copy holding V, Wᵀ δ̇ and δ̇ xᵀ by the layer itself. A ReLU's J is diagonal, so J ẋ is its own
// backward; max pooling gathers ẋ at the maxima the real forward picked (the first maximum in
// row-major window order, as nn::MaxPool2D).
//
// Why not the alternatives: central differences of gradients lose half the digits; a dual-number
// scalar would run the whole network in Dual<T>, but networks take floating-point scalars only
// (nn::BasicSequential, the Loss concept) and it would instantiate every layer a second time;
// this costs one extra copy of each weight layer and compiles only the layers' usual code.
// Supported layers: Dense, Conv2D, ReLU, LeakyReLU, MaxPool2D, AvgPool2D, Flatten, in a
// top-level Sequential; other layers (BatchNorm, Residual, Tanh, Sigmoid) stop compilation.
#pragma once

#include <edgescale/core/parameter.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/prune/detail/loss_gradient.hpp>

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace edgescale::prune::detail {

template <class L>
inline constexpr bool is_weight_layer_v = nn::is_dense_layer_v<L> || nn::is_conv2d_layer_v<L>;

/// Layers whose Jacobian is diagonal and locally constant: J ẋ = Jᵀ ẋ is their backward.
template <class L>
inline constexpr bool is_diagonal_linear_v = false;
template <class T, class S>
inline constexpr bool is_diagonal_linear_v<nn::ElementwiseLayer<T, S, nn::detail::ReluFn>> = true;
template <class T, class S, int Num, int Den>
inline constexpr bool
    is_diagonal_linear_v<nn::ElementwiseLayer<T, S, nn::detail::LeakyReluFn<Num, Den>>> = true;
template <class T, class S>
inline constexpr bool is_diagonal_linear_v<nn::FlattenLayer<T, S>> = true;

template <class L>
struct max_pool_geometry {
  static constexpr bool value = false;
};
template <class T, ImageShape In, int K, int S>
struct max_pool_geometry<nn::MaxPool2DLayer<T, In, K, S>> {
  static constexpr bool value = true;
  static constexpr int kernel = K;
  using type = nn::detail::pool_geometry<In, K, S>;
};

template <class L>
inline constexpr bool is_avg_pool_v = false;
template <class T, ImageShape In, int K, int S>
inline constexpr bool is_avg_pool_v<nn::AvgPool2DLayer<T, In, K, S>> = true;

template <class L>
inline constexpr bool has_hessian_vector_rule_v = is_weight_layer_v<L> || is_diagonal_linear_v<L> ||
                                                  max_pool_geometry<L>::value || is_avg_pool_v<L>;

/// The copies a layer needs for the tangent passes: for a weight layer, itself with its bias
/// zeroed (`plain`: W ẋ, δ ẋᵀ) and itself holding the direction V and no bias (`direction`:
/// V x, Vᵀ δ); for average pooling one copy for J ẋ; nothing for the others.
template <class L, bool Weights = is_weight_layer_v<L>, bool Average = is_avg_pool_v<L>>
struct TangentCopies {};
template <class L>
struct TangentCopies<L, true, false> {
  L plain;
  L direction;
};
template <class L>
struct TangentCopies<L, false, true> {
  L linear;
};

template <class T>
ConstBatchView<T> view(const Matrix<T>& m) {
  return ConstBatchView<T>(m.data(), m.rows(), m.cols());
}

/// J ẋ of max pooling: each output takes ẋ at the first maximum of x in its window.
template <class Geometry, int K, class T>
void gather_at_maxima(const ConstBatchView<T>& x, const Matrix<T>& dx, Matrix<T>& dy) {
  dy.resize(Geometry::output_shape::size, x.cols());
  for (Index n = 0; n < x.cols(); ++n) {
    const T* xn = x.col(n).data();
    const T* dxn = dx.col(n).data();
    Geometry::for_each_window([&](Index window, Index o) {
      Index at = window;
      T best = xn[window];
      for (int ky = 0; ky < K; ++ky) {
        for (int kx = 0; kx < K; ++kx) {
          const Index i = window + Index{ky} * Geometry::in_width + kx;
          if (xn[i] > best || std::isnan(xn[i])) {
            best = xn[i];
            at = i;
          }
        }
      }
      dy(o, n) = dxn[at];
    });
  }
}

/// Forward-over-reverse through a Sequential `net` on one batch. See the file comment.
template <class Net>
class HessianVectorProduct {
  using T = typename Net::scalar_type;
  static constexpr std::size_t layers = Net::size;
  template <std::size_t... I>
  static auto copies_of(std::index_sequence<I...>)
      -> std::tuple<TangentCopies<typename Net::template layer_type<I>>...>;
  using Copies = decltype(copies_of(std::make_index_sequence<layers>{}));

 public:
  /// Runs the real forward and backward of mean CE(net(x) / temperature, y): afterwards
  /// `gradient()` holds ∂L/∂θ for the prunable weights. `net` must be in the mode wanted; its
  /// gradients are overwritten.
  HessianVectorProduct(Net& net, const ConstBatchView<T>& x, nn::Labels y, T temperature)
      : net_(net), temperature_(temperature), grads_(layers + 1) {
    check_layers(std::make_index_sequence<layers>{});
    inputs_.reserve(layers + 1);
    inputs_.push_back(x);
    forward_real<0>();
    logits_ = inputs_[layers];
    grads_[layers] = cross_entropy_gradient(view(logits_), y, temperature_);
    net_.zero_grad();
    backward_real<layers - 1>();
  }

  /// ∂L/∂θ for the prunable weights (what the constructor's backward left in the network).
  [[nodiscard]] ParameterSet<double> gradient() const {
    ParameterSet<double> g = zero_scores(net_);
    g.read_gradients(net_);
    return g;
  }

  /// H v for the prunable weights, v given on them (zero on every other tensor); the network's
  /// gradients are left zero.
  ParameterSet<double> operator()(const ParameterSet<double>& v) {
    net_.zero_grad();
    Copies copies;
    set_copies<0>(copies, v);
    std::vector<Matrix<T>> tangents(layers + 1);
    tangents[0] = Matrix<T>::Zero(inputs_[0].rows(), inputs_[0].cols());
    forward_tangent<0>(copies, tangents);
    Matrix<T> dz = output_hessian(tangents[layers]);
    backward_tangent<layers - 1>(copies, tangents, dz);
    ParameterSet<double> hv = zero_scores(net_);
    hv.read_gradients(net_);
    net_.zero_grad();
    return hv;
  }

 private:
  template <std::size_t... I>
  static void check_layers(std::index_sequence<I...>) {
    static_assert((has_hessian_vector_rule_v<typename Net::template layer_type<I>> && ...),
                  "prune::Grasp: a layer of this network has no Hessian-vector rule; GraSP "
                  "supports Dense, Conv2D, ReLU, LeakyReLU, MaxPool2D, AvgPool2D and Flatten "
                  "(prune/detail/hessian_vector.hpp)");
  }

  template <std::size_t I>
  void forward_real() {
    if constexpr (I < layers) {
      inputs_.push_back(net_.template layer<I>().forward(inputs_[I]));
      forward_real<I + 1>();
    }
  }

  /// δ at every layer's output (copies: each layer's backward reuses its buffer).
  template <std::size_t I>
  void backward_real() {
    grads_[I] = net_.template layer<I>().backward(view(grads_[I + 1]));
    if constexpr (I > 0) {
      backward_real<I - 1>();
    }
  }

  template <std::size_t I>
  void set_copies(Copies& copies, const ParameterSet<double>& v) {
    if constexpr (I < layers) {
      using L = typename Net::template layer_type<I>;
      const L& layer = net_.template layer<I>();
      if constexpr (is_weight_layer_v<L>) {
        auto& c = std::get<I>(copies);
        c.plain = layer;
        c.direction = layer;
        const std::string name = std::to_string(I) + "." + layer.parameters()[0].name;
        c.direction.parameters()[0].value = v.tensor(name).template cast<T>();
        if constexpr (L::has_bias) {
          c.plain.parameters()[1].value.setZero();
          c.direction.parameters()[1].value.setZero();
        }
      } else if constexpr (is_avg_pool_v<L>) {
        std::get<I>(copies).linear = layer;
      }
      set_copies<I + 1>(copies, v);
    }
  }

  template <std::size_t I>
  void forward_tangent(Copies& copies, std::vector<Matrix<T>>& t) {
    if constexpr (I < layers) {
      using L = typename Net::template layer_type<I>;
      const Matrix<T>& dx = t[I];
      if constexpr (is_weight_layer_v<L>) {
        auto& c = std::get<I>(copies);
        t[I + 1] = c.direction.forward(inputs_[I]);  // V x
        if constexpr (I > 0) {                       // ẋ = 0 at the input
          t[I + 1] += c.plain.forward(view(dx));     // + W ẋ
        }
      } else if constexpr (is_diagonal_linear_v<L>) {
        t[I + 1] = net_.template layer<I>().backward(view(dx));
      } else if constexpr (max_pool_geometry<L>::value) {
        gather_at_maxima<typename max_pool_geometry<L>::type, max_pool_geometry<L>::kernel>(
            inputs_[I], dx, t[I + 1]);
      } else {
        t[I + 1] = std::get<I>(copies).linear.forward(view(dx));
      }
      forward_tangent<I + 1>(copies, t);
    }
  }

  /// ṙ = ∂²L/∂z² ż: per sample (diag(p) − p pᵀ) (ż / t) / (B t), p = softmax(z / t).
  Matrix<T> output_hessian(const Matrix<T>& dz) const {
    Matrix<T> out(dz.rows(), dz.cols());
    const T scale = T(1) / (static_cast<T>(dz.cols()) * temperature_);
    for (Index n = 0; n < dz.cols(); ++n) {
      const Vector<T> s = logits_.col(n) / temperature_;
      Vector<T> p = (s.array() - s.maxCoeff()).exp();
      p /= p.sum();
      const Vector<T> u = dz.col(n) / temperature_;
      out.col(n) = (p.array() * (u.array() - p.dot(u))).matrix() * scale;
    }
    return out;
  }

  template <std::size_t I>
  void backward_tangent(Copies& copies, const std::vector<Matrix<T>>& t, const Matrix<T>& dd) {
    using L = typename Net::template layer_type<I>;
    L& layer = net_.template layer<I>();
    Matrix<T> below = layer.backward(view(dd));  // Wᵀ δ̇ (J ᵀ δ̇), and δ̇ xᵀ into the gradients
    if constexpr (is_weight_layer_v<L>) {
      auto& c = std::get<I>(copies);
      const ConstBatchView<T> delta = view(grads_[I + 1]);
      if constexpr (I > 0) {
        c.plain.backward_parameters(delta);  // δ ẋᵀ
        layer.parameters()[0].grad += c.plain.parameters()[0].grad;
        below += c.direction.backward(delta);  // + Vᵀ δ
      }
    }
    if constexpr (I > 0) {
      backward_tangent<I - 1>(copies, t, below);
    }
  }

  Net& net_;
  T temperature_;
  std::vector<ConstBatchView<T>> inputs_;  // each layer's input, the network's output last
  std::vector<Matrix<T>> grads_;           // δ at each layer's output (grads_[I + 1] for layer I)
  Matrix<T> logits_;
};

}  // namespace edgescale::prune::detail
