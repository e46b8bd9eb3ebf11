// edgescale/nn/dense.hpp — fully connected layer, y = W x + b.
//
//   using Net = nn::Sequential<nn::Dense<784, 300>, nn::ReLU, nn::Dense<300, 10>>;
//   nn::Dense<300, 10, nn::NoBias>                     // y = W x
//
// W is stored as PyTorch stores nn.Linear.weight, (out, in) row-major, i.e. the column-major
// in x out matrix Wt; so y = Wtᵀ x + b, dWt += x dyᵀ, db += Σ_batch dy, dx = Wt dy (one GEMM each).
#pragma once

#include <edgescale/core/parameter.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/detail/gemm.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/options.hpp>
#include <edgescale/nn/overwrite.hpp>

#include <array>
#include <span>

namespace edgescale::nn {

template <class T, int In, int Out, bool Bias = true>
class DenseLayer {
 public:
  using scalar_type = T;
  using input_shape = Shape<In>;
  using output_shape = Shape<Out>;
  static constexpr bool has_bias = Bias;

  DenseLayer() : params_{make_parameters()} { out_.reserve(Out, 1); }

  template <class S>
  void initialize(const S& scheme, Rng& rng) {
    scheme(params_[0], In, Out, rng);
    if constexpr (Bias) {
      params_[1].value.setZero();
    }
  }

  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    x_ = x.data();
    batch_ = x.cols();
    auto y = out_.resize(Out, batch_);
    if constexpr (Bias) {
      y.colwise() = params_[1].value;
    } else {
      y.setZero();
    }
    detail::gemm_tn<T>(weight_t(), x, y);
    return out_.cview();
  }

  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    backward_parameters(dy);
    return input_gradient(dy);
  }

  void backward_parameters(const ConstBatchView<T>& dy) { parameter_gradients<false>(dy); }

  /// backward writing the gradients instead of adding to them (nn/overwrite.hpp).
  ConstBatchView<T> backward(const ConstBatchView<T>& dy, OverwriteGradients /*tag*/) {
    parameter_gradients<true>(dy);
    return input_gradient(dy);
  }
  void backward_parameters(const ConstBatchView<T>& dy, OverwriteGradients /*tag*/) {
    parameter_gradients<true>(dy);
  }

  std::span<Parameter<T>> parameters() { return params_; }
  std::span<const Parameter<T>> parameters() const { return params_; }

  /// W as the column-major in x out matrix (the memory of PyTorch's (out, in) weight).
  ConstBatchView<T> weight_t() const { return {params_[0].value.data(), In, Out}; }

  /// The output and input-gradient buffers (see Workspace; nn::release_workspaces).
  template <class F>
  void for_each_workspace(F&& f) {
    f(out_);
    f(grad_in_);
  }

 private:
  ConstBatchView<T> input_gradient(const ConstBatchView<T>& dy) {
    auto dx = grad_in_.resize(In, batch_);
    dx.setZero();
    detail::gemm_nn<T>(weight_t(), dy, dx);
    return grad_in_.cview();
  }

  /// dWᵀ += x dyᵀ and db += dy 1, or = when Overwrite: at batch 1 the rank-1 product is then
  /// written without reading the old gradient.
  template <bool Overwrite>
  void parameter_gradients(const ConstBatchView<T>& dy) {
    BatchView<T> dwt(params_[0].grad.data(), In, Out);
    const Eigen::Map<const Vector<T>> x1(x_, In);
    const Eigen::Map<const Vector<T>> dy1(dy.data(), Out);
    if (batch_ == 1) {
      if constexpr (Overwrite) {
        detail::outer<T>(x1, dy1, dwt);
      } else {
        detail::ger<T>(x1, dy1, dwt);
      }
    } else {
      if constexpr (Overwrite) {
        dwt.setZero();  // what Eigen's C = A Bᵀ would do before its C += A Bᵀ
      }
      detail::gemm_nt<T>(ConstBatchView<T>(x_, In, batch_), dy, dwt);
    }
    if constexpr (Bias) {
      if constexpr (Overwrite) {
        params_[1].grad.noalias() = dy.rowwise().sum();
      } else {
        params_[1].grad.noalias() += dy.rowwise().sum();
      }
    }
  }

  static auto make_parameters() {
    if constexpr (Bias) {
      return std::array<Parameter<T>, 2>{Parameter<T>("weight", {Out, In}, ParameterRole::weight),
                                         Parameter<T>("bias", {Out}, ParameterRole::bias)};
    } else {
      return std::array<Parameter<T>, 1>{Parameter<T>("weight", {Out, In}, ParameterRole::weight)};
    }
  }

  std::array<Parameter<T>, Bias ? 2 : 1> params_;
  Workspace<T> out_;
  Workspace<T> grad_in_;
  const T* x_ = nullptr;
  Index batch_ = 0;
};

/// Whether L is a fully connected layer (a DenseLayer of any size), for layer visitors.
template <class L>
inline constexpr bool is_dense_layer_v = false;
template <class T, int In, int Out, bool Bias>
inline constexpr bool is_dense_layer_v<DenseLayer<T, In, Out, Bias>> = true;

/// Layer spec: a fully connected layer from In to Out features (any input shape of In values),
/// with the option NoBias. Tensors: "weight" {Out, In} and, with a bias, "bias" {Out}.
template <int In, int Out, class... Options>
struct Dense {
  static_assert(In > 0 && Out > 0, "Dense<In, Out>: sizes must be positive");
  using options = detail::layer_options<Options...>;
  static_assert(options::no_bias_count == int{sizeof...(Options)} && options::each_once,
                "Dense<In, Out, Options...>: the only option is NoBias, given at most once");
  static constexpr bool has_bias = options::bias;
  using input_shape = Shape<In>;
  template <StaticShape S>
  static constexpr bool accepts = S::size == In;
  template <class T, StaticShape S>
  using layer = DenseLayer<T, In, Out, has_bias>;
};

}  // namespace edgescale::nn
