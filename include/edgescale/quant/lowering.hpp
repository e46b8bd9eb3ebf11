// edgescale/quant/lowering.hpp — how each float layer becomes a stage of the integer network:
// the trait quant::lowering<L>, specialised here for the built-in layers and open to users.
//
//   template <> struct quant::lowering<MyLayer> {              // a user's layer opts in
//     static constexpr quant::LoweringRole role = quant::LoweringRole::keeps_params;
//     using stage = MyIntegerStage;                            // QBatchView in, QBatchView out
//     static stage lower(const MyLayer& l, const quant::LoweringInput& in) { ... }
//   };
//
// Roles (what quant::convert does around the stage):
//   weighted      Dense, Conv2D: float weights and bias (`float_weights`), a BatchNorm after it is
//                 folded in, a ReLU after it is fused into its clamp, and its output quantized with
//                 the calibrated range of the last layer of that group; `lower` gets int8 codes,
//                 per-channel scales and the folded float bias in LoweringInput;
//   folds         BatchNorm: folded into the weighted layer before it (`fold`); its stage does
//                 nothing. A BatchNorm that follows no weighted layer is refused;
//   relu          ReLU: fused (nothing to do) after a weighted group, else max(q, Z);
//   keeps_params  pooling, flatten: codes in, codes out with the same scale and zero point;
//   requantizes   a user's stage whose output gets its own calibrated quantization.
// BatchNorm folding (eval mode, running statistics): a_c = γ_c / √(running_var_c + ε),
// W'[c, :] = a_c·W[c, :], b'_c = a_c·(b_c − running_mean_c) + β_c.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/batchnorm.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/quant/params.hpp>
#include <edgescale/quant/stages.hpp>

#include <cmath>
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edgescale::quant {

/// What quant::convert does around a layer's stage (see the top of this file).
enum class LoweringRole { weighted, folds, relu, keeps_params, requantizes };

/// A weighted layer's float weights, Out x fan_in in PyTorch's order, and its bias (zeros when it
/// has none), BatchNorm folded in when one follows.
struct FloatWeights {
  Index out = 0;
  Index fan_in = 0;
  std::vector<float> weight;
  std::vector<float> bias;
};

/// What convert hands `lowering<L>::lower`.
struct LoweringInput {
  std::string_view path;
  ActivationParams input;   ///< the codes the stage receives
  ActivationParams output;  ///< its output's (weighted, requantizes)
  bool relu_fused = false;  ///< weighted: a ReLU follows; relu: fused into the layer before
  std::span<const std::int8_t> codes;  ///< weighted: Out x fan_in symmetric codes
  std::span<const float> scales;       ///< weighted: S_w per output channel
  std::span<const float> bias;         ///< weighted: the float bias (BatchNorm folded)
  int weight_bits = 8;                 ///< weighted: the codes' bit width (2 to 8)
};

/// The lowering of layer type L; specialised below for the built-in layers. A type without a
/// specialisation has no integer form and quant::convert stops with a message naming it.
template <class L>
struct lowering;

// clang-format off
/// L has an integer form: a role, a stage type, and lower(layer, LoweringInput) (weighted layers
/// also float_weights(layer), folding layers fold(layer, FloatWeights&)).
template <class L>
concept Lowerable = requires(const L& layer, const LoweringInput& in) {
  { lowering<L>::role } -> std::convertible_to<LoweringRole>;
  typename lowering<L>::stage;
  { lowering<L>::lower(layer, in) } -> std::same_as<typename lowering<L>::stage>;
};
// clang-format on

template <class T, int In, int Out, bool Bias>
struct lowering<nn::DenseLayer<T, In, Out, Bias>> {
  using layer_type = nn::DenseLayer<T, In, Out, Bias>;
  static constexpr LoweringRole role = LoweringRole::weighted;
  using stage = DenseStage<In, Out>;
  static FloatWeights float_weights(const layer_type& l) {
    FloatWeights w{Out, In, {}, std::vector<float>(Out, 0.0F)};
    const auto params = l.parameters();
    w.weight.assign(params[0].value.data(), params[0].value.data() + Index{Out} * In);
    if constexpr (Bias) {
      w.bias.assign(params[1].value.data(), params[1].value.data() + Out);
    }
    return w;
  }
  static stage lower(const layer_type& /*layer*/, const LoweringInput& in) {
    return stage(in.codes, in.scales, in.bias, in.input, in.output, in.relu_fused, in.weight_bits);
  }
};

template <class T, ImageShape InS, int Cout, int K, int S, int P, bool Bias>
struct lowering<nn::Conv2DLayer<T, InS, Cout, K, S, P, Bias>> {
  using layer_type = nn::Conv2DLayer<T, InS, Cout, K, S, P, Bias>;
  static constexpr LoweringRole role = LoweringRole::weighted;
  using stage = Conv2DStage<InS, Cout, K, S, P>;
  static FloatWeights float_weights(const layer_type& l) {
    const Index fan_in = layer_type::patch_size;
    FloatWeights w{Cout, fan_in, {}, std::vector<float>(Cout, 0.0F)};
    const auto params = l.parameters();
    w.weight.assign(params[0].value.data(), params[0].value.data() + Cout * fan_in);
    if constexpr (Bias) {
      w.bias.assign(params[1].value.data(), params[1].value.data() + Cout);
    }
    return w;
  }
  static stage lower(const layer_type& /*layer*/, const LoweringInput& in) {
    return stage(in.codes, in.scales, in.bias, in.input, in.output, in.relu_fused, in.weight_bits);
  }
};

template <class T, StaticShape Sh>
struct lowering<nn::BatchNormLayer<T, Sh>> {
  using layer_type = nn::BatchNormLayer<T, Sh>;
  static constexpr LoweringRole role = LoweringRole::folds;
  using stage = FoldedStage<Sh>;
  /// Folds the running statistics and the affine map into the weighted layer before it.
  static void fold(const layer_type& l, FloatWeights& w) {
    const auto p = l.parameters();
    const Index channels = Sh::dims[0];
    if (w.out != channels) {
      throw argument_error("quant: a BatchNorm of " + std::to_string(channels) +
                           " channels after a layer of " + std::to_string(w.out) + " outputs");
    }
    for (Index c = 0; c < channels; ++c) {
      const double a = static_cast<double>(p[0].value[c]) /
                       std::sqrt(static_cast<double>(p[3].value[c]) + layer_type::eps);
      float* row = w.weight.data() + c * w.fan_in;
      for (Index k = 0; k < w.fan_in; ++k) {
        row[k] = static_cast<float>(a * row[k]);
      }
      auto& b = w.bias[static_cast<std::size_t>(c)];
      b = static_cast<float>(a * (static_cast<double>(b) - p[2].value[c]) + p[1].value[c]);
    }
  }
  static stage lower(const layer_type& /*layer*/, const LoweringInput& /*in*/) { return {}; }
};

template <class T, StaticShape Sh>
struct lowering<nn::ElementwiseLayer<T, Sh, nn::detail::ReluFn>> {
  static constexpr LoweringRole role = LoweringRole::relu;
  using stage = ReluStage<Sh>;
  static stage lower(const nn::ElementwiseLayer<T, Sh, nn::detail::ReluFn>& /*layer*/,
                     const LoweringInput& in) {
    return stage(in.relu_fused);
  }
};

template <class T, ImageShape InS, int K, int S>
struct lowering<nn::MaxPool2DLayer<T, InS, K, S>> {
  static constexpr LoweringRole role = LoweringRole::keeps_params;
  using stage = MaxPoolStage<InS, K, S>;
  static stage lower(const nn::MaxPool2DLayer<T, InS, K, S>& /*layer*/,
                     const LoweringInput& /*in*/) {
    return {};
  }
};

template <class T, ImageShape InS, int K, int S>
struct lowering<nn::AvgPool2DLayer<T, InS, K, S>> {
  static constexpr LoweringRole role = LoweringRole::keeps_params;
  using stage = AvgPoolStage<InS, K, S>;
  static stage lower(const nn::AvgPool2DLayer<T, InS, K, S>& /*layer*/,
                     const LoweringInput& /*in*/) {
    return {};
  }
};

template <class T, StaticShape InS>
struct lowering<nn::FlattenLayer<T, InS>> {
  static constexpr LoweringRole role = LoweringRole::keeps_params;
  using stage = FlattenStage<InS>;
  static stage lower(const nn::FlattenLayer<T, InS>& /*layer*/, const LoweringInput& /*in*/) {
    return {};
  }
};

}  // namespace edgescale::quant
