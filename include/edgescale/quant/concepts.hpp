// edgescale/quant/concepts.hpp — the plug-in points of quantization: Quantizer and Observer.
//
// A quantizer maps floats to integer codes and back with its parameters (a scale and a zero point
// per channel); an observer turns calibration batches into the ranges quantizers are built from.
// A user's own (a log quantizer, an entropy observer) works wherever the built-ins do.
#pragma once

#include <edgescale/core/tensor.hpp>
#include <edgescale/quant/observer.hpp>

#include <concepts>
#include <cstdint>
#include <span>

namespace edgescale::quant {

// clang-format off

/// Float ↔ integer codes (quant/quantizer.hpp): bits (2 to 8) and signedness at compile time, the
/// code range, per-channel scale and zero point, quantize (round to nearest even, saturate) and
/// dequantize, and construction from per-channel ranges.
template <class Q>
concept Quantizer = requires(const Q& q, float x, std::int32_t code, Index c,
                             std::span<const float> lo, std::span<const float> hi) {
  { Q::bits } -> std::convertible_to<int>;
  { Q::is_signed } -> std::convertible_to<bool>;
  { Q::qmin } -> std::convertible_to<std::int32_t>;
  { Q::qmax } -> std::convertible_to<std::int32_t>;
  { q.channels() } -> std::convertible_to<Index>;
  { q.scale(c) } -> std::convertible_to<float>;
  { q.zero_point(c) } -> std::convertible_to<std::int32_t>;
  { q.quantize(x, c) } -> std::same_as<std::int32_t>;
  { q.dequantize(code, c) } -> std::same_as<float>;
  { Q::from_range(lo, hi) } -> std::same_as<Q>;
};

/// Calibration statistics (quant/observer.hpp): observe(batch) any number of times, then the
/// per-channel ranges.
template <class O>
concept Observer = requires(O& o, const O& co, const Matrix<float>& batch) {
  o.observe(batch);
  { co.range() } -> std::same_as<Ranges>;
  { co.channels() } -> std::convertible_to<Index>;
};

// clang-format on

}  // namespace edgescale::quant
