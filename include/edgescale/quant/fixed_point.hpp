// edgescale/quant/fixed_point.hpp — the integer arithmetic of requantization, as TFLite's
// reference kernels do it (Jacob et al., CVPR 2018; shared/DESIGN.md §3c).
//
//   const quant::Multiplier m = quant::quantize_multiplier(s_in * s_w / s_out);  // int32 + shift
//   std::int32_t q = quant::multiply_by_quantized_multiplier(acc, m);          // ≈ acc · M
//
// A real multiplier M > 0 is stored as an int32 m₀ in [2³⁰, 2³¹) and an exponent: M =
// m₀·2^(shift−31). Requantization then rounds twice, as TFLite does:
//   1. saturating_rounding_doubling_high_mul(a, m₀) = a·m₀ / 2³¹ rounded to nearest with ties
//      up, toward +∞ (a·m₀ + 2³⁰ for a non-negative product, a·m₀ + 1 − 2³⁰ for a negative one,
//      divided by 2³¹ truncating toward zero: −1.5 gives −1, 1.5 gives 2); the one overflow,
//      a = m₀ = −2³¹, saturates;
//   2. rounding_divide_by_pot(x, e) = x / 2^e rounded half away from zero.
// ruy (TFLite's newer GEMM back end) rounds once, from the 64-bit product, and differs from this by
// ±1 in about 1 % of cases. edgescale takes TFLite's double rounding so its integer models give
// the same codes as TFLite's reference kernels; tests/quant checks every function against an
// exact restatement and hand-worked TFLite cases.
#pragma once

#include <edgescale/core/error.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace edgescale::quant {

/// A real multiplier as TFLite stores it: M = value · 2^(shift − 31), value in [2³⁰, 2³¹) (0 for
/// M = 0). shift > 0 multiplies by 2^shift before the high multiply, shift < 0 divides after it.
struct Multiplier {
  std::int32_t value = 0;
  int shift = 0;
  [[nodiscard]] double real() const { return std::ldexp(static_cast<double>(value), shift - 31); }
  friend bool operator==(const Multiplier&, const Multiplier&) = default;
};

/// TFLite's QuantizeMultiplier: M = q·2^shift with q in [0.5, 1) (frexp), q rounded to 31
/// fractional bits (a q that rounds up to 1 becomes 0.5 with shift + 1); a multiplier below 2⁻³¹
/// is 0. Throws argument_error for a negative, infinite or NaN M, or one of 2³¹ and beyond (the
/// shift a 32-bit accumulator can take).
[[nodiscard]] inline Multiplier quantize_multiplier(double m) {
  if (!(m >= 0) || !std::isfinite(m)) {
    throw argument_error("quantize_multiplier: the multiplier must be finite and >= 0, got " +
                         std::to_string(m));
  }
  if (m == 0) {
    return {};
  }
  int shift = 0;
  const double q = std::frexp(m, &shift);
  auto q_fixed = static_cast<std::int64_t>(std::llround(q * static_cast<double>(1LL << 31)));
  if (q_fixed == (1LL << 31)) {
    q_fixed /= 2;
    ++shift;
  }
  if (shift < -31) {
    return {};
  }
  if (shift > 30) {
    throw argument_error("quantize_multiplier: the multiplier " + std::to_string(m) +
                         " is too large (at most 2^30)");
  }
  return {static_cast<std::int32_t>(q_fixed), shift};
}

/// a·b / 2³¹ (the high 32 bits of 2·a·b) rounded to nearest, ties toward +∞; INT32_MAX for
/// a = b = INT32_MIN.
[[nodiscard]] constexpr std::int32_t saturating_rounding_doubling_high_mul(std::int32_t a,
                                                                           std::int32_t b) {
  const bool overflow = a == b && a == std::numeric_limits<std::int32_t>::min();
  const std::int64_t ab = static_cast<std::int64_t>(a) * static_cast<std::int64_t>(b);
  const std::int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
  const auto high = static_cast<std::int32_t>((ab + nudge) / (1LL << 31));
  return overflow ? std::numeric_limits<std::int32_t>::max() : high;
}

/// x / 2^exponent rounded half away from zero, exponent in [0, 31].
[[nodiscard]] constexpr std::int32_t rounding_divide_by_pot(std::int32_t x, int exponent) {
  const std::int32_t mask = static_cast<std::int32_t>((1LL << exponent) - 1);
  const std::int32_t remainder = x & mask;
  const std::int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/// x · M with TFLite's double rounding (see the top of this file). A positive shift multiplies x
/// by 2^shift first, saturating at the int32 range as TFLite's kernels (which check the shift at
/// conversion) cannot.
[[nodiscard]] constexpr std::int32_t multiply_by_quantized_multiplier(std::int32_t x,
                                                                      Multiplier m) {
  const int left = m.shift > 0 ? m.shift : 0;
  const int right = m.shift > 0 ? 0 : -m.shift;
  std::int64_t shifted = static_cast<std::int64_t>(x) * (std::int64_t{1} << left);
  if (shifted > std::numeric_limits<std::int32_t>::max()) {
    shifted = std::numeric_limits<std::int32_t>::max();
  } else if (shifted < std::numeric_limits<std::int32_t>::min()) {
    shifted = std::numeric_limits<std::int32_t>::min();
  }
  return rounding_divide_by_pot(
      saturating_rounding_doubling_high_mul(static_cast<std::int32_t>(shifted), m.value), right);
}

}  // namespace edgescale::quant
