// edgescale/quant/export.hpp — the deployment side of an integer network: its size in bytes,
// dense and sparse.
//
//   auto qnet = quant::convert(net, cal);
//   quant::ModelSize size = quant::model_size(qnet);
//   // size.fp32_bytes, size.quantized_bytes, size.sparse_bytes; size.layers[i] per weighted stage
//
// Model size. For each weighted stage ℓ (Dense, Conv2D) with n_ℓ weights, C_ℓ output channels,
// nz_ℓ nonzero weight codes and storage width b_ℓ = Requantizer::weight_bits() (2 to 8):
//   fp32       4·n_ℓ + 4·C_ℓ                     a float weight each, and a float bias per channel
//                                                (BatchNorm folded: the network that was quantized)
//   quantized  ⌈n_ℓ·b_ℓ/8⌉ + 9·C_ℓ               weights packed at b_ℓ bits, then per channel an
//                                                int32 bias, an int32 multiplier, a 1-byte shift
//   sparse     ⌈nz_ℓ·b_ℓ/8⌉ + ⌈n_ℓ/8⌉ + 9·C_ℓ    only the nonzero codes packed, a 1-bit-per-weight
//                                                bitmap of where they are, the same per channel
// and the network's quantized and sparse sizes add 7 bytes per quantized activation tensor (the
// input and each weighted stage's output: a float scale, an int8 zero point and the int8 clamp
// [min, max]). The sparse form pays 1 bit per weight, so it beats the dense one when more than
// 1/b_ℓ of a layer's weights are zero (1/8 at 8 bits): a pruned network's saving shows there.
#pragma once

#include <edgescale/quant/qnetwork.hpp>
#include <edgescale/quant/stages.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace edgescale::quant {

/// The bytes of one weighted stage (see the top of this file).
struct LayerSize {
  std::size_t stage = 0;     ///< its index in the integer network (0 is the input)
  std::size_t weights = 0;   ///< n: weight codes
  std::size_t nonzero = 0;   ///< nz: nonzero weight codes
  std::size_t channels = 0;  ///< C: output channels
  int bits = 8;              ///< b: the storage width of its codes
  std::size_t fp32_bytes = 0;
  std::size_t quantized_bytes = 0;
  std::size_t sparse_bytes = 0;
};

/// An integer network's size as fp32, quantized, and quantized with a sparsity bitmap.
struct ModelSize {
  std::size_t fp32_bytes = 0;
  std::size_t quantized_bytes = 0;   ///< includes activation_bytes
  std::size_t sparse_bytes = 0;      ///< includes activation_bytes
  std::size_t activation_bytes = 0;  ///< 7 bytes per quantized activation tensor
  std::size_t weights = 0;
  std::size_t nonzero_weights = 0;
  std::vector<LayerSize> layers;  ///< the weighted stages, in order
};

/// Bytes of one quantized activation tensor's parameters: float scale, int8 zero point, int8
/// clamp bounds.
inline constexpr std::size_t activation_param_bytes = 4 + 1 + 2;

namespace detail {

template <class Stage>
concept HasRequantizer = requires(const Stage& s) {
  { s.requantizer() } -> std::same_as<const Requantizer&>;
};

[[nodiscard]] inline LayerSize layer_size(std::size_t stage, const Requantizer& rq) {
  LayerSize s;
  s.stage = stage;
  s.weights = rq.codes().size();
  for (const std::int8_t c : rq.codes()) {
    s.nonzero += c != 0 ? 1 : 0;
  }
  s.channels = static_cast<std::size_t>(rq.out_channels());
  s.bits = rq.weight_bits();
  const auto bits = static_cast<std::size_t>(s.bits);
  const std::size_t per_channel = 4 + 4 + 1;  // int32 bias, int32 multiplier, shift
  s.fp32_bytes = 4 * s.weights + 4 * s.channels;
  s.quantized_bytes = (s.weights * bits + 7) / 8 + per_channel * s.channels;
  s.sparse_bytes = (s.nonzero * bits + 7) / 8 + (s.weights + 7) / 8 + per_channel * s.channels;
  return s;
}

}  // namespace detail

/// The size of `qnet` as fp32, quantized and sparse (formulas at the top of this file). Stages
/// without weights (pooling, ReLU, flatten, folded BatchNorm) cost nothing; a user's stage counts
/// when it exposes a Requantizer through `requantizer()`.
template <StaticShape In, class... Stages>
[[nodiscard]] ModelSize model_size(const QNetwork<In, Stages...>& qnet) {
  ModelSize size;
  size.activation_bytes = activation_param_bytes;  // the input
  qnet.for_each_stage([&](std::size_t index, const auto& stage) {
    if constexpr (detail::HasRequantizer<std::remove_cvref_t<decltype(stage)>>) {
      const LayerSize layer = detail::layer_size(index, stage.requantizer());
      size.fp32_bytes += layer.fp32_bytes;
      size.quantized_bytes += layer.quantized_bytes;
      size.sparse_bytes += layer.sparse_bytes;
      size.weights += layer.weights;
      size.nonzero_weights += layer.nonzero;
      size.activation_bytes += activation_param_bytes;  // its output
      size.layers.push_back(layer);
    }
  });
  size.quantized_bytes += size.activation_bytes;
  size.sparse_bytes += size.activation_bytes;
  return size;
}

}  // namespace edgescale::quant
