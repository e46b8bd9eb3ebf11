// edgescale/quant/qat.hpp — quantization-aware training: a network whose Dense, Conv2D and ReLU
// layers fake-quantize what the integer network will quantize, trained by nn::Trainer as it is.
//
//   using Net = nn::Sequential<nn::Dense<784, 300>, nn::ReLU, nn::Dense<300, 10>>;
//   Net net = ...;                                          // trained in float
//   quant::qat_network_t<Net> qat;                          // same layers, paths, tensor names
//   quant::prepare_qat(qat, net, calibration, quant::eight_bit_ends(net, 4));
//   nn::Trainer trainer{qat};
//   nn::SGD opt{{.learning_rate = 0.01, .momentum = 0.9}};
//   trainer.step(opt, x, labels);                           // weights and LSQ steps learn
//   nn::for_each_layer(qat, [](std::string_view path, const auto& layer) {   // the converter
//     using L = std::remove_cvref_t<decltype(layer)>;
//     if constexpr (quant::is_qat_layer_v<L>) { layer.inner(); layer.weight_steps(); ... }
//   });
//
// qat_network_t<Net> is Net with every Dense and Conv2D spec wrapped in Qat<Spec> and every ReLU
// replaced by QatReLU (nn/transform.hpp). A QatLayer holds the float layer (inner(): the trained
// weights, tensors "weight" and "bias" under their own names, so float weights carry over by
// name) and adds "weight_step" {Out} (one LSQ step per output channel) and "output_step" {1}; a
// QatReLU adds "output_step" {1}. Steps have role `scale` (trained, never pruned).
//
// What each layer computes, with fake quantization q̂ (quant/fake_quant.hpp):
//   QatLayer  x → [input: x̂ = fixed affine q̂(x)] → y = layer(Ŵ, b; x̂) → [output: LSQ q̂(y), signed]
//             Ŵ[c] = s_c·clamp(round(W[c]/s_c), −Q_P, Q_P), Q_P = 2^(b−1) − 1 (narrow symmetric:
//             int8 weights in [−127, 127], 4-bit in [−7, 7]); the bias stays float (the integer
//             network stores it as int32 at scale S_in·S_w[c]).
//   QatReLU   y = max(x, 0) → [output: LSQ q̂(y), unsigned, Q_N = 0, Q_P = 2^b − 1]
// Gradients: straight through inside the range, zero outside; LSQ for the steps (scaled by
// 1/√(N·Q_P), N the weights of a channel or the features of one sample). Every quantizer is off
// until enabled; with all off a QatLayer computes, bit for bit, what its float layer computes.
//
// The quantization points are those of the integer network (DESIGN §3c), which fuses each ReLU
// into the requantization clamp of the layer before it: the network input (the first Dense or
// Conv2D's input quantizer, affine with a zero point, fixed from the calibration batch's min-max,
// not learned), the output of every Dense and Conv2D — after its ReLU when one follows (the
// QatReLU's quantizer, unsigned), else its own output quantizer (signed, e.g. the int8 logits of
// the last Dense) — and nothing else: max pooling and flatten pass codes through unchanged.
// prepare_qat enables the quantizers by that rule, sets bit widths from a Precision (run-time
// values, 2 to 8 per layer, so one network type serves 8-bit, 4-bit and mixed precision) and
// initialises the steps by LSQ's rule (2·mean|v|/√Q_P: weights per channel, over the kept weights
// of a pruned layer; activations from one forward of the calibration batch through the already
// quantized layers before them). Pruning masks carry over with the weights and stay enforced by
// the optimizers: a pruned weight is 0, whose code is 0.
//
// Out of scope, refused at compile time: BatchNorm (QAT with batch-norm folding is not
// implemented: fold BatchNorm into the layer before it, or train without it) and Residual blocks
// (the integer network has no quantized residual addition). Layers other than Dense, Conv2D,
// ReLU, MaxPool2D and Flatten are kept as they are and run in float between quantization points:
// such a network trains, but has no exact integer twin. Optimizers treat steps as any trained
// tensor: nn::SGD's weight decay, when set, decays them too.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/batchnorm.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/nn/overwrite.hpp>
#include <edgescale/nn/residual.hpp>
#include <edgescale/nn/transform.hpp>
#include <edgescale/quant/fake_quant.hpp>
#include <edgescale/quant/lowering.hpp>
#include <edgescale/quant/params.hpp>
#include <edgescale/quant/qnetwork.hpp>
#include <edgescale/quant/quantizer.hpp>

#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace edgescale::quant {

namespace detail {

template <class T>
std::span<T> values(Vector<T>& v) {
  return {v.data(), static_cast<std::size_t>(v.size())};
}
template <class T>
std::span<const T> values(const Vector<T>& v) {
  return {v.data(), static_cast<std::size_t>(v.size())};
}

/// to = from (Overwrite) or to += from.
template <bool Overwrite, class T>
void store_gradient(Vector<T>& to, const Vector<T>& from) {
  if constexpr (Overwrite) {
    to = from;
  } else {
    to += from;
  }
}

/// Throws edgescale::error unless the step is finite and positive (SGD can push it below zero).
template <class T>
void check_step(T step, const char* who) {
  if (!(step > T(0)) || !std::isfinite(step)) {
    throw error(std::string(who) + ": an LSQ step is " + std::to_string(step) +
                "; steps must stay positive and finite (lower the learning rate)");
  }
}

/// The per-tensor LSQ quantizer of a layer's output: off until enabled; b bits, signed or
/// unsigned; a trained step ("output_step" {1}); N = Features values per sample in the gradient
/// scale. While calibrating, each forward first sets the step by LSQ's rule from its input.
template <class T, Index Features>
class OutputFakeQuant {
 public:
  OutputFakeQuant(bool is_signed, const char* who) : signed_(is_signed), who_(who) {
    step_.value.setOnes();
  }

  void enable(int bits) {
    check_bits(bits, who_);
    bits_ = bits;
    enabled_ = true;
  }
  void disable() { enabled_ = false; }
  void set_calibrating(bool on) { calibrating_ = on; }
  [[nodiscard]] bool enabled() const { return enabled_; }
  [[nodiscard]] int bits() const { return bits_; }
  [[nodiscard]] T step() const { return step_.value[0]; }
  [[nodiscard]] CodeRange codes() const {
    return signed_ ? signed_codes(bits_) : unsigned_codes(bits_);
  }
  /// The integer container's parameters of this quantization (quant/params.hpp).
  [[nodiscard]] ActivationParams params() const {
    return lsq_params(static_cast<float>(step()), bits_, signed_);
  }
  Parameter<T>& tensor() { return step_; }
  const Parameter<T>& tensor() const { return step_; }

  /// q̂(v), or v itself when off. v must stay valid until backward.
  ConstBatchView<T> forward(const ConstBatchView<T>& v) {
    if (!enabled_) {
      return v;
    }
    v_ = v.data();
    batch_ = v.cols();
    if (calibrating_) {  // LSQ's initial step (a NaN stays, for prepare_qat to report)
      step_.value[0] = lsq_initial_step(static_cast<T>(v.cwiseAbs().mean()), codes());
    } else {
      check_step(step(), who_);
    }
    BatchView<T> y = out_.resize(v.rows(), v.cols());
    if constexpr (std::is_same_v<T, float>) {
      fake_quantize(v, params(), y);  // exactly the integer container's round trip
    } else {
      fake_quantize(v, step(), codes(), y);
    }
    return out_.cview();
  }

  /// dv = dy ⊙ STE mask; the step's gradient g·Σ dy ⊙ ∂q̂/∂s added (or written, Overwrite).
  template <bool Overwrite>
  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    if (!enabled_) {
      if constexpr (Overwrite) {
        step_.grad.setZero();
      }
      return dy;
    }
    const CodeRange c = codes();
    const T sum = fake_quantize_backward(ConstBatchView<T>(v_, Features, batch_), step(), c, dy,
                                         grad_.resize(dy.rows(), dy.cols()));
    const T g = lsq_gradient_scale<T>(Features, c) * sum;
    if constexpr (Overwrite) {
      step_.grad[0] = g;
    } else {
      step_.grad[0] += g;
    }
    return grad_.cview();
  }

  template <class F>
  void for_each_workspace(F&& f) {
    f(out_);
    f(grad_);
  }

 private:
  Parameter<T> step_{"output_step", {1}, ParameterRole::scale};
  bool signed_;
  const char* who_;
  bool enabled_ = false;
  bool calibrating_ = false;
  int bits_ = 8;
  Workspace<T> out_;
  Workspace<T> grad_;
  const T* v_ = nullptr;
  Index batch_ = 0;
};

}  // namespace detail

/// A Dense or Conv2D layer trained with fake quantization (see the top of this file). Tensors:
/// the inner layer's "weight" and "bias", then "weight_step" {Out} and "output_step" {1}.
template <class Inner>
class QatLayer {
  static_assert(nn::is_dense_layer_v<Inner> || nn::is_conv2d_layer_v<Inner>,
                "quant::QatLayer wraps an nn::DenseLayer or nn::Conv2DLayer");
  using T = typename Inner::scalar_type;

 public:
  using inner_type = Inner;
  using scalar_type = T;
  using input_shape = typename Inner::input_shape;
  using output_shape = typename Inner::output_shape;
  static constexpr bool has_bias = Inner::has_bias;
  /// Output channels (one weight step each) and the weights of one channel (N in LSQ's scale).
  static constexpr Index out_channels = output_shape::dims[0];
  static constexpr Index weights_per_channel = [] {
    if constexpr (nn::is_conv2d_layer_v<Inner>) {
      return Inner::patch_size;
    } else {
      return Index{input_shape::size};
    }
  }();

  QatLayer() { weight_step_.value.setOnes(); }

  /// Draws the float layer's weights (nn/init.hpp); quantizers are unchanged.
  template <class Scheme>
  void initialize(const Scheme& scheme, Rng& rng) {
    inner_.initialize(scheme, rng);
  }

  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    x_ = x.data();
    batch_ = x.cols();
    const ConstBatchView<T> in = quantize_input_ ? quantized_input(x) : x;
    return output_.forward(quantize_weights_ ? quantized_forward(in) : inner_.forward(in));
  }

  ConstBatchView<T> backward(const ConstBatchView<T>& dy) { return backward_with<false>(dy); }
  void backward_parameters(const ConstBatchView<T>& dy) { parameter_gradients<false>(dy); }
  /// backward writing the gradients instead of adding to them (nn/overwrite.hpp).
  ConstBatchView<T> backward(const ConstBatchView<T>& dy, nn::OverwriteGradients /*tag*/) {
    return backward_with<true>(dy);
  }
  void backward_parameters(const ConstBatchView<T>& dy, nn::OverwriteGradients /*tag*/) {
    parameter_gradients<true>(dy);
  }

  template <class F>
  void for_each_tensor(F&& f) {
    visit_tensors(*this, f);
  }
  template <class F>
  void for_each_tensor(F&& f) const {
    visit_tensors(*this, f);
  }

  template <class F>
  void for_each_workspace(F&& f) {
    inner_.for_each_workspace(f);
    quantized_.for_each_workspace(f);
    output_.for_each_workspace(f);
    f(input_);
    f(grad_in_);
  }

  // ---- configuration (prepare_qat does this) ----

  /// Fake-quantizes the weights per output channel with `bits`-bit narrow codes (2 to 8, else
  /// argument_error); the steps are kept (initialize_weight_steps sets them by LSQ's rule).
  void enable_weight_quantization(int bits) {
    check_bits(bits, "quant::QatLayer: weights");
    weight_bits_ = bits;
    quantize_weights_ = true;
  }
  void disable_weight_quantization() { quantize_weights_ = false; }
  /// s_c = 2·mean|W[c]| / √Q_P for every output channel, from the float weights as they are now.
  /// With a pruning mask the mean is over the kept weights of the channel (a pruned weight is 0
  /// and stays 0: it would only shrink the step).
  void initialize_weight_steps() {
    const CodeRange codes = narrow_codes(weight_bits_);
    const Parameter<T>& w = inner_.parameters()[0];
    for (Index c = 0; c < out_channels; ++c) {
      const auto channel = w.value.segment(c * weights_per_channel, weights_per_channel);
      T mean_abs = channel.cwiseAbs().mean();
      if (w.masked()) {
        const auto kept = w.mask.segment(c * weights_per_channel, weights_per_channel);
        const auto count = static_cast<T>((kept.array() != T(0)).count());
        mean_abs = count > T(0) ? channel.cwiseProduct(kept).cwiseAbs().sum() / count : T(0);
      }
      weight_step_.value[c] = lsq_initial_step(mean_abs, codes);
    }
  }
  /// Fake-quantizes the input with fixed parameters (checked by ActivationParams::check).
  void enable_input_quantization(const ActivationParams& params) {
    params.check("quant::QatLayer: input");
    input_params_ = params;
    quantize_input_ = true;
  }
  void disable_input_quantization() { quantize_input_ = false; }
  /// Fake-quantizes the output with `bits`-bit signed codes and a trained step.
  void enable_output_quantization(int bits) { output_.enable(bits); }
  void disable_output_quantization() { output_.disable(); }
  /// While on, each forward sets the output step by LSQ's rule from the output it quantizes.
  void set_calibrating(bool on) { output_.set_calibrating(on); }

  // ---- what the converter reads ----

  /// The float layer: its trained (unquantized) weights and bias.
  [[nodiscard]] const Inner& inner() const { return inner_; }
  Inner& inner() { return inner_; }
  [[nodiscard]] bool quantizes_weights() const { return quantize_weights_; }
  [[nodiscard]] int weight_bits() const { return weight_bits_; }
  /// One step per output channel: the weight of channel c is steps[c]·q, q = clamp(round(W/s_c)).
  [[nodiscard]] std::span<const T> weight_steps() const {
    return detail::values(weight_step_.value);
  }
  [[nodiscard]] bool quantizes_input() const { return quantize_input_; }
  [[nodiscard]] const ActivationParams& input_params() const { return input_params_; }
  [[nodiscard]] bool quantizes_output() const { return output_.enabled(); }
  [[nodiscard]] int output_bits() const { return output_.bits(); }
  [[nodiscard]] T output_step() const { return output_.step(); }
  /// The output's quantization in the int8 container (signed codes, zero point 0).
  [[nodiscard]] ActivationParams output_params() const { return output_.params(); }

 private:
  template <class Self, class F>
  static void visit_tensors(Self& self, F& f) {
    edgescale::for_each_tensor(self.inner_, f);
    f(std::string_view(self.weight_step_.name), self.weight_step_);
    f(std::string_view(self.output_.tensor().name), self.output_.tensor());
  }

  ConstBatchView<T> quantized_input(const ConstBatchView<T>& x) {
    fake_quantize(x, input_params_, input_.resize(x.rows(), x.cols()));
    return input_.cview();
  }

  /// The layer's forward with Ŵ, computed into the second layer's weights.
  ConstBatchView<T> quantized_forward(const ConstBatchView<T>& x) {
    for (Index c = 0; c < out_channels; ++c) {
      detail::check_step(weight_step_.value[c], "quant::QatLayer: weights");
    }
    auto computed = quantized_.parameters();
    fake_quantize_channels(detail::values(std::as_const(inner_.parameters()[0].value)),
                           detail::values(std::as_const(weight_step_.value)),
                           narrow_codes(weight_bits_), detail::values(computed[0].value));
    if constexpr (has_bias) {
      computed[1].value = inner_.parameters()[1].value;
    }
    return quantized_.forward(x);
  }

  template <bool Overwrite>
  ConstBatchView<T> backward_with(const ConstBatchView<T>& dy) {
    const ConstBatchView<T> dv = output_.template backward<Overwrite>(dy);
    const ConstBatchView<T> dx_hat = [&]() -> ConstBatchView<T> {
      if (!quantize_weights_) {
        if constexpr (Overwrite) {
          weight_step_.grad.setZero();
          return nn::backward_overwriting(inner_, dv);
        } else {
          return inner_.backward(dv);
        }
      }
      const ConstBatchView<T> d = nn::backward_overwriting(quantized_, dv);
      weight_gradients<Overwrite>();
      return d;
    }();
    if (!quantize_input_) {
      return dx_hat;
    }
    fake_quantize_backward(ConstBatchView<T>(x_, input_shape::size, batch_),
                           static_cast<T>(input_params_.scale), codes_of(input_params_), dx_hat,
                           grad_in_.resize(dx_hat.rows(), dx_hat.cols()));
    return grad_in_.cview();
  }

  template <bool Overwrite>
  void parameter_gradients(const ConstBatchView<T>& dy) {
    const ConstBatchView<T> dv = output_.template backward<Overwrite>(dy);
    if (!quantize_weights_) {
      if constexpr (Overwrite) {
        weight_step_.grad.setZero();
        nn::backward_parameters_overwriting(inner_, dv);
      } else {
        inner_.backward_parameters(dv);
      }
      return;
    }
    nn::backward_parameters_overwriting(quantized_, dv);
    weight_gradients<Overwrite>();
  }

  /// From dŴ (in the second layer's gradient): dW by the STE, the steps' by LSQ, and the bias's.
  template <bool Overwrite>
  void weight_gradients() {
    auto computed = quantized_.parameters();
    auto own = inner_.parameters();
    fake_quantize_channels_backward(detail::values(std::as_const(own[0].value)),
                                    detail::values(std::as_const(weight_step_.value)),
                                    narrow_codes(weight_bits_),
                                    detail::values(std::as_const(computed[0].grad)),
                                    detail::values(computed[0].grad), detail::values(step_grad_));
    detail::store_gradient<Overwrite>(own[0].grad, computed[0].grad);
    detail::store_gradient<Overwrite>(weight_step_.grad, step_grad_);
    if constexpr (has_bias) {
      detail::store_gradient<Overwrite>(own[1].grad, computed[1].grad);
    }
  }

  Inner inner_;      // the float weights (trained)
  Inner quantized_;  // computes with Ŵ (its weights are written by each forward)
  Parameter<T> weight_step_{"weight_step", {out_channels}, ParameterRole::scale};
  detail::OutputFakeQuant<T, output_shape::size> output_{true, "quant::QatLayer: output"};
  Vector<T> step_grad_ = Vector<T>::Zero(out_channels);
  ActivationParams input_params_;
  bool quantize_input_ = false;
  bool quantize_weights_ = false;
  int weight_bits_ = 8;
  Workspace<T> input_;    // x̂
  Workspace<T> grad_in_;  // dx through the input quantizer
  const T* x_ = nullptr;
  Index batch_ = 0;
};

/// A ReLU whose output is fake-quantized with unsigned codes when enabled (see the top of this
/// file). Tensor: "output_step" {1}.
template <class T, StaticShape S>
class QatReluLayer {
 public:
  using scalar_type = T;
  using input_shape = S;
  using output_shape = S;

  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    return output_.forward(relu_.forward(x));
  }
  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    return relu_.backward(output_.template backward<false>(dy));
  }
  ConstBatchView<T> backward(const ConstBatchView<T>& dy, nn::OverwriteGradients /*tag*/) {
    return relu_.backward(output_.template backward<true>(dy));
  }
  void backward_parameters(const ConstBatchView<T>& dy) { (void)backward(dy); }
  void backward_parameters(const ConstBatchView<T>& dy, nn::OverwriteGradients tag) {
    (void)backward(dy, tag);
  }

  template <class F>
  void for_each_tensor(F&& f) {
    f(std::string_view(output_.tensor().name), output_.tensor());
  }
  template <class F>
  void for_each_tensor(F&& f) const {
    f(std::string_view(output_.tensor().name), output_.tensor());
  }
  template <class F>
  void for_each_workspace(F&& f) {
    relu_.for_each_workspace(f);
    output_.for_each_workspace(f);
  }

  /// Fake-quantizes the output with `bits`-bit unsigned codes (2 to 8) and a trained step.
  void enable_output_quantization(int bits) { output_.enable(bits); }
  void disable_output_quantization() { output_.disable(); }
  void set_calibrating(bool on) { output_.set_calibrating(on); }

  [[nodiscard]] bool quantizes_output() const { return output_.enabled(); }
  [[nodiscard]] int output_bits() const { return output_.bits(); }
  [[nodiscard]] T output_step() const { return output_.step(); }
  /// The output's quantization in the int8 container (unsigned codes u stored as u − 128).
  [[nodiscard]] ActivationParams output_params() const { return output_.params(); }

 private:
  typename nn::ReLU::template layer<T, S> relu_;
  detail::OutputFakeQuant<T, S::size> output_{false, "quant::QatReLU: output"};
};

/// Whether L is a QAT Dense or Conv2D layer (QatLayer), for layer visitors.
template <class L>
inline constexpr bool is_qat_layer_v = false;
template <class Inner>
inline constexpr bool is_qat_layer_v<QatLayer<Inner>> = true;

/// Whether L is a QAT ReLU (QatReluLayer), for layer visitors.
template <class L>
inline constexpr bool is_qat_relu_layer_v = false;
template <class T, class S>
inline constexpr bool is_qat_relu_layer_v<QatReluLayer<T, S>> = true;

namespace detail {
template <class Spec>
struct qat_spec_input {};
template <class Spec>
  requires requires {
    typename Spec::input_shape;
  }
struct qat_spec_input<Spec> {
  using input_shape = typename Spec::input_shape;
};
}  // namespace detail

/// Layer spec: Spec (a Dense or Conv2D spec) trained with fake quantization (QatLayer); accepts
/// what Spec accepts.
template <class Spec>
struct Qat : detail::qat_spec_input<Spec> {
  template <StaticShape S>
  static constexpr bool accepts = Spec::template accepts<S>;
  template <class T, StaticShape S>
  using layer = QatLayer<typename Spec::template layer<T, S>>;
};

/// Layer spec: a ReLU with an optional unsigned fake quantization of its output (QatReluLayer).
struct QatReLU {
  template <StaticShape S>
  static constexpr bool accepts = true;
  template <class T, StaticShape S>
  using layer = QatReluLayer<T, S>;
};

namespace detail {

/// The spec rewrite of qat_network_t: Dense and Conv2D wrapped in Qat, ReLU a QatReLU, BatchNorm
/// and Residual refused, the rest unchanged.
template <class Spec>
struct qat_spec {
  static_assert(!std::is_same_v<Spec, nn::BatchNorm>,
                "quant::qat_network_t: a network with BatchNorm is not supported (QAT with "
                "batch-norm folding is out of scope): fold BatchNorm into the Dense or Conv2D "
                "before it, or train without it");
  using type = Spec;
};
template <int I, int O, class... Options>
struct qat_spec<nn::Dense<I, O, Options...>> {
  using type = Qat<nn::Dense<I, O, Options...>>;
};
template <int Cin, int Cout, int K, class... Options>
struct qat_spec<nn::Conv2D<Cin, Cout, K, Options...>> {
  using type = Qat<nn::Conv2D<Cin, Cout, K, Options...>>;
};
template <>
struct qat_spec<nn::ReLU> {
  using type = QatReLU;
};
template <class... Specs>
struct qat_spec<nn::Residual<Specs...>> {
  static_assert(sizeof...(Specs) == 0,
                "quant::qat_network_t: a network with Residual blocks is not supported (the "
                "integer network has no quantized residual addition)");
  using type = nn::Residual<Specs...>;
};

}  // namespace detail

/// Net with every Dense and Conv2D spec wrapped in Qat and every ReLU a QatReLU: the network
/// prepare_qat prepares. BatchNorm and Residual are compile errors.
template <class Net>
using qat_network_t = nn::transform_specs_t<Net, detail::qat_spec>;

// ---- preparation ----

/// The bit widths of one Dense or Conv2D layer, overriding Precision's defaults.
struct LayerPrecision {
  std::string layer{};               ///< its path in the network ("0", "4")
  std::optional<int> weight_bits{};  ///< its weights
  std::optional<int>
      activation_bits{};  ///< its output: after the ReLU that follows it, if one does
};

/// The bit widths of a QAT network (2 to 8 each): defaults and per-layer overrides.
struct Precision {
  int input_bits = 8;       ///< the network input (affine, fixed from the calibration batch)
  int weight_bits = 8;      ///< the weights of every Dense and Conv2D
  int activation_bits = 8;  ///< every quantized output
  std::vector<LayerPrecision> layers{};  ///< overrides (a member initialiser: may be omitted)
};

namespace detail {
/// Dense and Conv2D layers, float or QAT: the layers with weights to quantize.
template <class L>
inline constexpr bool is_weighted_layer_v =
    is_qat_layer_v<L> || nn::is_dense_layer_v<L> || nn::is_conv2d_layer_v<L>;

/// The paths of net's Dense and Conv2D layers (float or QAT), in order.
template <class Net>
std::vector<std::string> weighted_layers(const Net& net) {
  std::vector<std::string> paths;
  nn::for_each_layer(net, [&](std::string_view path, const auto& layer) {
    if constexpr (is_weighted_layer_v<std::remove_cvref_t<decltype(layer)>>) {
      paths.emplace_back(path);
    }
  });
  return paths;
}

inline std::string quote(std::string_view path) {
  return "'" + std::string(path) + "'";
}

/// What prepare_qat sets on one layer.
struct QatLayerPlan {
  std::string path;
  bool weighted = false;         // a QatLayer
  bool relu = false;             // a QatReluLayer
  int weight_bits = 8;           // weighted
  int activation_bits = 8;       // weighted: its output point's bits (its own or the next ReLU's)
  bool quantize_input = false;   // weighted: the first one
  bool quantize_output = false;  // weighted: not followed by a ReLU; relu: follows a weighted one
  int output_bits = 8;
};

}  // namespace detail

/// The common mixed-precision scheme: `bits` for weights and activations everywhere except the
/// network input, the first layer's weights and the last layer's weights and output, which stay
/// at 8 bits. `net` is the float network or its QAT twin (the same paths). Throws argument_error
/// for bits outside 2..8 or a network without Dense or Conv2D layers.
template <class Net>
Precision eight_bit_ends(const Net& net, int bits) {
  check_bits(bits, "quant::eight_bit_ends");
  const std::vector<std::string> paths = detail::weighted_layers(net);
  if (paths.empty()) {
    throw argument_error("quant::eight_bit_ends: the network has no Dense or Conv2D layer");
  }
  Precision p{.input_bits = 8, .weight_bits = bits, .activation_bits = bits, .layers = {}};
  if (paths.size() > 1) {
    p.layers.push_back({.layer = paths.front(), .weight_bits = 8, .activation_bits = {}});
  }
  p.layers.push_back({.layer = paths.back(), .weight_bits = 8, .activation_bits = 8});
  return p;
}

/// Prepares a QAT network (qat_network_t of the float network's type, in any scalar type) for
/// training from a float network:
///   1. copies the float tensors by name (copy_tensors, TensorMatch::target_extra);
///   2. visits the layers in order (nn::for_each_layer) and enables the quantizers of the integer
///      network's quantization points (see the top of this file): the first Dense/Conv2D's input
///      (affine, `precision.input_bits`, from the calibration batch's min-max with 0 in range),
///      every Dense/Conv2D's weights, and each Dense/Conv2D's output after the ReLU that follows
///      it (the QatReLU's, unsigned) or, with no ReLU following, its own (signed); every other
///      quantizer is disabled;
///   3. sets bit widths from `precision` (a layer override names a Dense/Conv2D by path; its
///      activation bits apply to that layer's output point) and the weight steps by LSQ's rule;
///   4. runs the calibration batch forward once, each activation step set by LSQ's rule from the
///      values it quantizes (after the quantized layers before it).
/// Throws argument_error for a bit width outside 2..8 (naming the layer), an override naming no
/// Dense/Conv2D layer or one named twice, a calibration batch that is empty or holds NaN or
/// infinite values, a network without Dense or Conv2D layers, or a non-finite step (naming the
/// layer; the weights or activations were not finite); shape_error when the batch's rows are not
/// the input size or the tensors do not match by name and size. `qat` is unchanged on every error
/// but the last.
template <nn::Network QatNet, nn::Network FloatNet>
void prepare_qat(QatNet& qat, const FloatNet& net,
                 const ConstBatchView<typename QatNet::scalar_type>& calibration,
                 const Precision& precision = {}) {
  using T = typename QatNet::scalar_type;
  check_bits(precision.input_bits, "quant::prepare_qat: the network input");
  check_bits(precision.weight_bits, "quant::prepare_qat: default weights");
  check_bits(precision.activation_bits, "quant::prepare_qat: default activations");

  // The plan, from the layers in order (nothing is changed until every check has passed).
  std::vector<detail::QatLayerPlan> plan;
  nn::for_each_layer(std::as_const(qat), [&](std::string_view path, const auto& layer) {
    using L = std::remove_cvref_t<decltype(layer)>;
    plan.push_back({.path = std::string(path),
                    .weighted = is_qat_layer_v<L>,
                    .relu = is_qat_relu_layer_v<L>,
                    .weight_bits = precision.weight_bits,
                    .activation_bits = precision.activation_bits});
  });
  std::vector<bool> overridden(plan.size(), false);
  for (const LayerPrecision& o : precision.layers) {
    std::size_t i = 0;
    while (i < plan.size() && plan[i].path != o.layer) {
      ++i;
    }
    if (i == plan.size()) {
      throw argument_error("quant::prepare_qat: Precision names layer " + detail::quote(o.layer) +
                           ", which the network does not have");
    }
    if (!plan[i].weighted) {
      throw argument_error("quant::prepare_qat: Precision names layer " + detail::quote(o.layer) +
                           ", which is not a Dense or Conv2D layer");
    }
    if (overridden[i]) {
      throw argument_error("quant::prepare_qat: Precision names layer " + detail::quote(o.layer) +
                           " twice");
    }
    overridden[i] = true;
    const std::string who = "quant::prepare_qat: layer " + detail::quote(o.layer);
    if (o.weight_bits) {
      check_bits(*o.weight_bits, who + " weights");
      plan[i].weight_bits = *o.weight_bits;
    }
    if (o.activation_bits) {
      check_bits(*o.activation_bits, who + " activations");
      plan[i].activation_bits = *o.activation_bits;
    }
  }
  bool first = true;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    if (plan[i].weighted) {
      const bool relu_follows = i + 1 < plan.size() && plan[i + 1].relu;
      plan[i].quantize_input = std::exchange(first, false);
      plan[i].quantize_output = !relu_follows;
      plan[i].output_bits = plan[i].activation_bits;
      if (relu_follows) {
        plan[i + 1].quantize_output = true;
        plan[i + 1].output_bits = plan[i].activation_bits;
      }
    }
  }
  if (first) {
    throw argument_error("quant::prepare_qat: the network has no Dense or Conv2D layer");
  }

  // The calibration batch, and the input quantizer from its range.
  if (calibration.rows() != QatNet::input_shape::size) {
    throw shape_error(
        "quant::prepare_qat: the calibration batch has " + std::to_string(calibration.rows()) +
        " rows per sample, the network expects " + std::to_string(QatNet::input_shape::size));
  }
  if (calibration.cols() == 0) {
    throw argument_error("quant::prepare_qat: an empty calibration batch");
  }
  if (!calibration.allFinite()) {
    const Index bad = calibration.size() - calibration.array().isFinite().count();
    throw argument_error("quant::prepare_qat: the calibration batch holds " + std::to_string(bad) +
                         " NaN or infinite values");
  }
  const ActivationParams input =
      ActivationParams::affine(static_cast<float>(calibration.minCoeff()),
                               static_cast<float>(calibration.maxCoeff()), precision.input_bits);

  copy_tensors(net, qat, TensorMatch::target_extra);

  std::size_t at = 0;
  nn::for_each_layer(qat, [&](std::string_view, auto& layer) {
    using L = std::remove_cvref_t<decltype(layer)>;
    const detail::QatLayerPlan& p = plan[at++];
    if constexpr (is_qat_layer_v<L>) {
      layer.enable_weight_quantization(p.weight_bits);
      layer.initialize_weight_steps();
      if (p.quantize_input) {
        layer.enable_input_quantization(input);
      } else {
        layer.disable_input_quantization();
      }
    }
    if constexpr (is_qat_layer_v<L> || is_qat_relu_layer_v<L>) {
      if (p.quantize_output) {
        layer.enable_output_quantization(p.output_bits);
      } else {
        layer.disable_output_quantization();
      }
    }
  });

  const auto require_finite = [&](std::string_view path, T step, const char* what) {
    if (!(std::isfinite(step) && step > T(0))) {
      throw argument_error("quant::prepare_qat: layer " + detail::quote(path) + ": the " + what +
                           " step is " + std::to_string(step) +
                           " (are the float weights and the calibration activations finite?)");
    }
  };
  nn::for_each_layer(std::as_const(qat), [&](std::string_view path, const auto& layer) {
    if constexpr (is_qat_layer_v<std::remove_cvref_t<decltype(layer)>>) {
      for (const T s : layer.weight_steps()) {
        require_finite(path, s, "weight");
      }
    }
  });

  // One forward of the calibration batch sets the activation steps, in layer order.
  const auto calibrating = [&](bool on) {
    nn::for_each_layer(qat, [&](std::string_view, auto& layer) {
      using L = std::remove_cvref_t<decltype(layer)>;
      if constexpr (is_qat_layer_v<L> || is_qat_relu_layer_v<L>) {
        layer.set_calibrating(on);
      }
    });
  };
  {
    const nn::ModeScope evaluation(qat, false);
    calibrating(true);
    try {
      (void)qat.forward(calibration);
    } catch (...) {
      calibrating(false);
      throw;
    }
    calibrating(false);
  }
  nn::for_each_layer(std::as_const(qat), [&](std::string_view path, const auto& layer) {
    using L = std::remove_cvref_t<decltype(layer)>;
    if constexpr (is_qat_layer_v<L> || is_qat_relu_layer_v<L>) {
      if (layer.quantizes_output()) {
        require_finite(path, layer.output_step(), "output");
      }
    }
  });
}

/// prepare_qat with the calibration batch as a column-major matrix (one sample per column).
template <nn::Network QatNet, nn::Network FloatNet, class Derived>
void prepare_qat(QatNet& qat, const FloatNet& net,
                 const Eigen::PlainObjectBase<Derived>& calibration,
                 const Precision& precision = {}) {
  prepare_qat(qat, net, batch_view(calibration), precision);
}

// ---- conversion of a trained QAT network to the integer network ----

/// A QatLayer lowers as its float layer, with the weights, steps and activation parameters QAT
/// learned (plan_quantization_aware).
template <class Inner>
struct lowering<QatLayer<Inner>> {
  static constexpr LoweringRole role = LoweringRole::weighted;
  using stage = typename lowering<Inner>::stage;
  static FloatWeights float_weights(const QatLayer<Inner>& l) {
    return lowering<Inner>::float_weights(l.inner());
  }
  static stage lower(const QatLayer<Inner>& l, const LoweringInput& in) {
    return lowering<Inner>::lower(l.inner(), in);
  }
};

template <class T, StaticShape S>
struct lowering<QatReluLayer<T, S>> {
  static constexpr LoweringRole role = LoweringRole::relu;
  using stage = ReluStage<S>;
  static stage lower(const QatReluLayer<T, S>& /*layer*/, const LoweringInput& in) {
    return stage(in.relu_fused);
  }
};

namespace detail {
template <class Net, std::size_t... I>
constexpr bool has_qat_layer(std::index_sequence<I...> /*layers*/) {
  return (is_qat_layer_v<typename Net::template layer_type<I>> || ...);
}
}  // namespace detail

/// The conversion plan of a trained QAT network (prepare_qat, then training): the input quantizer
/// of its first Dense/Conv2D, each layer's weights quantized with its learned per-channel steps
/// exactly as its fake quantization did (codes clamp(round(w / s_c), −Q_P, Q_P)), and each
/// output point's learned parameters (a Dense/Conv2D's own, or those of the QatReLU fused after
/// it). Throws argument_error for a network that was not prepared (a weighted layer without
/// quantized weights or an output point, or no input quantizer on the first).
template <class QatNet>
[[nodiscard]] ConversionPlan plan_quantization_aware(const QatNet& qat) {
  ConversionPlan plan;
  plan.layers.resize(QatNet::size);
  bool seen_weighted = false;
  bool fuse_relu = false;
  ActivationParams current;
  detail::for_each_index<QatNet::size>([&](auto i) {
    constexpr std::size_t I = decltype(i)::value;
    using L = typename QatNet::template layer_type<I>;
    const L& layer = qat.template layer<I>();
    detail::LayerPlan& lp = plan.layers[I];
    const std::string where = "quant::plan_quantization_aware: layer " + std::to_string(I);
    lp.role = lowering<L>::role;
    if constexpr (is_qat_layer_v<L>) {
      if (!seen_weighted) {
        if (!layer.quantizes_input()) {
          throw argument_error(where +
                               " (the first Dense/Conv2D) quantizes no input: prepare_qat first");
        }
        plan.input = layer.input_params();
        current = plan.input;
        for (std::size_t k = 0; k < I; ++k) {
          plan.layers[k].input = current;
          plan.layers[k].output = current;
        }
        seen_weighted = true;
      }
      if (!layer.quantizes_weights()) {
        throw argument_error(where + " has no quantized weights: prepare_qat first");
      }
      lp.input = current;
      if (layer.quantizes_output()) {
        lp.output = layer.output_params();
        fuse_relu = false;
      } else {
        bool found = false;
        if constexpr (I + 1 < QatNet::size) {
          using Next = typename QatNet::template layer_type<I + 1>;
          if constexpr (is_qat_relu_layer_v<Next>) {
            const Next& next = qat.template layer<I + 1>();
            if (next.quantizes_output()) {
              lp.output = next.output_params();
              found = true;
            }
          }
        }
        if (!found) {
          throw argument_error(where +
                               " has no output quantization (its own or a ReLU's after it)");
        }
        lp.relu_fused = true;
        fuse_relu = true;
      }
      const FloatWeights w = lowering<L>::float_weights(layer);
      QuantizedWeights q;
      const auto steps = layer.weight_steps();
      q.scales.assign(steps.begin(), steps.end());
      q.codes = detail::symmetric_codes(w, q.scales, layer.weight_bits());
      q.bias = w.bias;
      q.bits = layer.weight_bits();
      lp.weights = std::move(q);
      current = lp.output;
    } else {
      lp.input = current;
      lp.output = current;
      if constexpr (lowering<L>::role == LoweringRole::relu) {
        lp.relu_fused = fuse_relu;
      } else if constexpr (lowering<L>::role == LoweringRole::requantizes ||
                           lowering<L>::role == LoweringRole::folds) {
        static_assert(lowering<L>::role == LoweringRole::keeps_params,
                      "quant::convert of a QAT network: a layer that needs its own calibrated "
                      "quantization (or a BatchNorm) has no QAT quantizer");
      }
      fuse_relu = false;
    }
  });
  if (!seen_weighted) {
    throw argument_error("quant::plan_quantization_aware: the network has no Dense or Conv2D");
  }
  return plan;
}

// clang-format off
/// The integer network of a trained QAT network (plan_quantization_aware, then lower): its
/// predictions are those of the fake-quantized network up to the integer requantization's
/// rounding.
template <class QatNet>
  requires(detail::has_qat_layer<QatNet>(std::make_index_sequence<QatNet::size>{}))
[[nodiscard]] qnetwork_t<QatNet> convert(const QatNet& qat) {
  // clang-format on
  return lower(qat, plan_quantization_aware(qat));
}

}  // namespace edgescale::quant
