// edgescale/quant/quantizer.hpp — float ↔ integer codes: affine, symmetric and power-of-two
// quantizers of 2 to 8 bits, signed or unsigned, per tensor or per channel.
//
//   auto q = quant::Affine<8, false>::from_range(lo, hi);       // uint8, one (S, Z) per channel
//   std::int32_t code = q.quantize(x, channel);                 // Z + round(x / S), saturated
//   float back = q.dequantize(code, channel);                   // S · (code − Z)
//
// Conventions (PyTorch's observers; shared/DESIGN.md §3c):
//   * the range always includes 0 (lo' = min(lo, 0), hi' = max(hi, 0)), so 0 is exact;
//   * Affine:     S = (hi' − lo') / (q_max − q_min), Z = q_min − round(lo' / S) clamped to the
//   codes;
//   * Symmetric:  S = max(|lo'|, hi') / ((q_max − q_min) / 2), Z = 0 (signed) or 2^(b−1)
//                 (unsigned); signed symmetric codes are the narrow range [−(2^(b−1) − 1),
//                 2^(b−1) − 1] (int8 weights in [−127, 127]), so −S·q_max is exact too;
//   * PowerOfTwo: Symmetric with S rounded up to a power of two (shifts instead of multiplies);
//   * rounding is to nearest, ties to even (std::nearbyint in the default rounding mode, as
//     PyTorch's and fbgemm's quantize), then saturation to the codes;
//   * a range of zero width (every value 0) gets S = float's epsilon, as PyTorch does: every value
//     then quantizes to Z and dequantizes to 0, with no division by zero.
// The bit width is a template argument checked at compile time (2 to 8). from_range throws
// argument_error for a NaN or infinite bound, lo > hi, or range lists of different lengths.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace edgescale::quant {

/// The integer codes of a bit width and signedness; `narrow` drops the most negative signed code.
template <int Bits, bool Signed, bool Narrow = false>
struct Codes {
  static_assert(Bits >= 2 && Bits <= 8, "edgescale::quant: bit widths are 2 to 8");
  static constexpr std::int32_t min =
      Signed ? -(std::int32_t{1} << (Bits - 1)) + (Narrow ? 1 : 0) : 0;
  static constexpr std::int32_t max =
      Signed ? (std::int32_t{1} << (Bits - 1)) - 1 : (std::int32_t{1} << Bits) - 1;
};

namespace detail {

/// The smallest scale a quantizer takes (a zero-width range): float's epsilon, as PyTorch.
inline constexpr float min_scale = std::numeric_limits<float>::epsilon();

inline void check_ranges(std::span<const float> lo, std::span<const float> hi, const char* who) {
  if (lo.size() != hi.size() || lo.empty()) {
    throw argument_error(std::string(who) + ": " + std::to_string(lo.size()) + " minima and " +
                         std::to_string(hi.size()) + " maxima (need as many, at least one)");
  }
  for (std::size_t c = 0; c < lo.size(); ++c) {
    if (!std::isfinite(lo[c]) || !std::isfinite(hi[c]) || lo[c] > hi[c]) {
      throw argument_error(std::string(who) + ": channel " + std::to_string(c) + " has range [" +
                           std::to_string(lo[c]) + ", " + std::to_string(hi[c]) +
                           "]; a range must be finite with min <= max (NaN in the data?)");
    }
  }
}

/// Per-channel scales and zero points, and the arithmetic every quantizer shares.
template <std::int32_t QMin, std::int32_t QMax>
class ScaledCodes {
 public:
  static constexpr std::int32_t qmin = QMin;
  static constexpr std::int32_t qmax = QMax;

  [[nodiscard]] Index channels() const { return static_cast<Index>(scale_.size()); }
  [[nodiscard]] float scale(Index c = 0) const { return scale_[at(c)]; }
  [[nodiscard]] std::int32_t zero_point(Index c = 0) const { return zero_[at(c)]; }
  [[nodiscard]] const std::vector<float>& scales() const { return scale_; }
  [[nodiscard]] const std::vector<std::int32_t>& zero_points() const { return zero_; }

  /// Z + round(x / S) (ties to even), saturated to [qmin, qmax]; NaN maps to Z.
  [[nodiscard]] std::int32_t quantize(float x, Index c = 0) const {
    const std::size_t i = at(c);
    const float r = std::nearbyint(x / scale_[i]);
    if (!(r == r)) {
      return zero_[i];
    }
    const float shifted = r + static_cast<float>(zero_[i]);
    if (shifted <= static_cast<float>(qmin)) {
      return qmin;
    }
    if (shifted >= static_cast<float>(qmax)) {
      return qmax;
    }
    return static_cast<std::int32_t>(shifted);
  }
  /// S · (code − Z).
  [[nodiscard]] float dequantize(std::int32_t code, Index c = 0) const {
    const std::size_t i = at(c);
    return scale_[i] * static_cast<float>(code - zero_[i]);
  }
  /// dequantize(quantize(x)): what fake quantization computes.
  [[nodiscard]] float round_trip(float x, Index c = 0) const {
    return dequantize(quantize(x, c), c);
  }

 protected:
  ScaledCodes() = default;
  std::vector<float> scale_;
  std::vector<std::int32_t> zero_;

 private:
  [[nodiscard]] std::size_t at(Index c) const {
    if (c < 0 || c >= channels()) {
      throw argument_error("quantizer: channel " + std::to_string(c) + " of " +
                           std::to_string(channels()));
    }
    return static_cast<std::size_t>(c);
  }
};

}  // namespace detail

/// Asymmetric (affine) quantization with a zero point: the whole code range covers [lo', hi'].
template <int Bits, bool Signed = false>
class Affine : public detail::ScaledCodes<Codes<Bits, Signed>::min, Codes<Bits, Signed>::max> {
  using Base = detail::ScaledCodes<Codes<Bits, Signed>::min, Codes<Bits, Signed>::max>;

 public:
  static constexpr int bits = Bits;
  static constexpr bool is_signed = Signed;
  static constexpr bool symmetric = false;

  /// One (S, Z) per channel from its [lo, hi] (see the top of this file).
  [[nodiscard]] static Affine from_range(std::span<const float> lo, std::span<const float> hi) {
    detail::check_ranges(lo, hi, "quant::Affine");
    Affine q;
    for (std::size_t c = 0; c < lo.size(); ++c) {
      const double l = std::min(0.0, static_cast<double>(lo[c]));
      const double h = std::max(0.0, static_cast<double>(hi[c]));
      const auto s = static_cast<float>(std::max(
          (h - l) / static_cast<double>(Base::qmax - Base::qmin), double{detail::min_scale}));
      const double z = static_cast<double>(Base::qmin) - std::nearbyint(l / s);
      q.scale_.push_back(s);
      q.zero_.push_back(static_cast<std::int32_t>(
          std::clamp(z, static_cast<double>(Base::qmin), static_cast<double>(Base::qmax))));
    }
    return q;
  }
  [[nodiscard]] static Affine from_range(float lo, float hi) {
    return from_range(std::span<const float>(&lo, 1), std::span<const float>(&hi, 1));
  }
};

/// Symmetric quantization: Z = 0 (signed, narrow codes) or 2^(b−1) (unsigned).
template <int Bits, bool Signed = true>
class Symmetric : public detail::ScaledCodes<Codes<Bits, Signed, Signed>::min,
                                             Codes<Bits, Signed, Signed>::max> {
  using Base =
      detail::ScaledCodes<Codes<Bits, Signed, Signed>::min, Codes<Bits, Signed, Signed>::max>;

 public:
  static constexpr int bits = Bits;
  static constexpr bool is_signed = Signed;
  static constexpr bool symmetric = true;

  [[nodiscard]] static Symmetric from_range(std::span<const float> lo, std::span<const float> hi) {
    detail::check_ranges(lo, hi, "quant::Symmetric");
    Symmetric q;
    for (std::size_t c = 0; c < lo.size(); ++c) {
      q.scale_.push_back(symmetric_scale(lo[c], hi[c]));
      q.zero_.push_back(Signed ? 0 : std::int32_t{1} << (Bits - 1));
    }
    return q;
  }
  [[nodiscard]] static Symmetric from_range(float lo, float hi) {
    return from_range(std::span<const float>(&lo, 1), std::span<const float>(&hi, 1));
  }

  /// max(|lo'|, hi') / ((q_max − q_min) / 2), at least float's epsilon.
  [[nodiscard]] static float symmetric_scale(float lo, float hi) {
    const double m = std::max(std::abs(std::min(0.0, static_cast<double>(lo))),
                              std::max(0.0, static_cast<double>(hi)));
    return static_cast<float>(std::max(m / (static_cast<double>(Base::qmax - Base::qmin) / 2.0),
                                       double{detail::min_scale}));
  }
};

/// Symmetric quantization with power-of-two scales: S = 2^⌈log₂ S_sym⌉, so requantization is a
/// shift (the largest magnitude still fits: S only grows).
template <int Bits, bool Signed = true>
class PowerOfTwo : public detail::ScaledCodes<Codes<Bits, Signed, Signed>::min,
                                              Codes<Bits, Signed, Signed>::max> {
 public:
  static constexpr int bits = Bits;
  static constexpr bool is_signed = Signed;
  static constexpr bool symmetric = true;

  [[nodiscard]] static PowerOfTwo from_range(std::span<const float> lo, std::span<const float> hi) {
    detail::check_ranges(lo, hi, "quant::PowerOfTwo");
    PowerOfTwo q;
    for (std::size_t c = 0; c < lo.size(); ++c) {
      const float s = Symmetric<Bits, Signed>::symmetric_scale(lo[c], hi[c]);
      q.scale_.push_back(std::exp2(std::ceil(std::log2(s))));
      q.zero_.push_back(Signed ? 0 : std::int32_t{1} << (Bits - 1));
    }
    return q;
  }
  [[nodiscard]] static PowerOfTwo from_range(float lo, float hi) {
    return from_range(std::span<const float>(&lo, 1), std::span<const float>(&hi, 1));
  }
  /// log₂ S of channel c (an integer).
  [[nodiscard]] int exponent(Index c = 0) const {
    return static_cast<int>(std::lround(std::log2(this->scale(c))));
  }
};

}  // namespace edgescale::quant
