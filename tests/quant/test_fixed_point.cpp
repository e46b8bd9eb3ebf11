// Requantization arithmetic (quant/fixed_point.hpp) against hand-worked TFLite cases and an
// independent restatement in exact long-double arithmetic (x · m₀ < 2⁶², inside its 64-bit
// significand), on random cases including saturation and extreme multipliers.
#include <edgescale/core/random.hpp>
#include <edgescale/quant/fixed_point.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>

namespace edgescale {
namespace {

using quant::Multiplier;

constexpr std::int32_t int_min = std::numeric_limits<std::int32_t>::min();
constexpr std::int32_t int_max = std::numeric_limits<std::int32_t>::max();

// TFLite's two roundings restated with exact long-double arithmetic: x·2^left saturated, then the
// product with m₀ over 2³¹ rounded half up (toward +∞), then over 2^right rounded half away from 0.
std::int32_t reference(std::int32_t x, Multiplier m) {
  const int left = m.shift > 0 ? m.shift : 0;
  const int right = m.shift > 0 ? 0 : -m.shift;
  long double shifted = std::ldexp(static_cast<long double>(x), left);
  shifted =
      std::clamp(shifted, static_cast<long double>(int_min), static_cast<long double>(int_max));
  if (shifted == int_min && m.value == int_min) {
    return int_max;
  }
  const long double product = shifted * static_cast<long double>(m.value);  // < 2^62: exact
  const long double high = std::floor(std::ldexp(product, -31) + 0.5L);     // ties up
  const long double scaled = std::ldexp(high, -right);
  const long double away = scaled < 0 ? -std::floor(-scaled + 0.5L) : std::floor(scaled + 0.5L);
  return static_cast<std::int32_t>(away);
}

}  // namespace

TEST_CASE("quantize_multiplier: TFLite's int32 + shift, worked by hand") {
  CHECK(quant::quantize_multiplier(0.5) == Multiplier{1 << 30, 0});
  CHECK(quant::quantize_multiplier(1.0) == Multiplier{1 << 30, 1});
  CHECK(quant::quantize_multiplier(0.25) == Multiplier{1 << 30, -1});
  CHECK(quant::quantize_multiplier(0.75) == Multiplier{1610612736, 0});  // 0.75 · 2^31
  // q rounds up to 1: becomes 0.5 with the shift one higher.
  CHECK(quant::quantize_multiplier(1.0 - std::ldexp(1.0, -40)) == Multiplier{1 << 30, 1});
  CHECK(quant::quantize_multiplier(std::ldexp(1.0, -32)) == Multiplier{1 << 30, -31});
  CHECK(quant::quantize_multiplier(std::ldexp(1.0, -33)) == Multiplier{});  // below 2^-31: 0
  CHECK(quant::quantize_multiplier(0.0) == Multiplier{});
  CHECK(quant::quantize_multiplier(0.0123).real() == doctest::Approx(0.0123).epsilon(1e-9));
  CHECK_THROWS_AS((void)quant::quantize_multiplier(-0.5), argument_error);
  CHECK_THROWS_AS((void)quant::quantize_multiplier(std::nan("")), argument_error);
  CHECK_THROWS_AS((void)quant::quantize_multiplier(std::ldexp(1.0, 40)), argument_error);
}

TEST_CASE("the two roundings: ties up in the high multiply, away from zero in the shift") {
  // a·b / 2^31 = 2^29 exactly.
  CHECK(quant::saturating_rounding_doubling_high_mul(1 << 30, 1 << 30) == 1 << 29);
  // ±1.5 and −0.5, −2.5: ties go up (toward +∞).
  CHECK(quant::saturating_rounding_doubling_high_mul(3, 1 << 30) == 2);
  CHECK(quant::saturating_rounding_doubling_high_mul(-3, 1 << 30) == -1);
  CHECK(quant::saturating_rounding_doubling_high_mul(-1, 1 << 30) == 0);
  CHECK(quant::saturating_rounding_doubling_high_mul(-5, 1 << 30) == -2);
  // The one overflow saturates.
  CHECK(quant::saturating_rounding_doubling_high_mul(int_min, int_min) == int_max);
  CHECK(quant::saturating_rounding_doubling_high_mul(int_max, int_max) == int_max - 1);
  // x / 2^e, ties away from zero: 2.5 → 3, −2.5 → −3, −0.75 → −1, 1.5 → 2.
  CHECK(quant::rounding_divide_by_pot(5, 1) == 3);
  CHECK(quant::rounding_divide_by_pot(-5, 1) == -3);
  CHECK(quant::rounding_divide_by_pot(-3, 2) == -1);
  CHECK(quant::rounding_divide_by_pot(6, 2) == 2);
  CHECK(quant::rounding_divide_by_pot(int_min, 31) == -1);
  CHECK(quant::rounding_divide_by_pot(7, 0) == 7);
}

TEST_CASE("multiply_by_quantized_multiplier: hand-worked cases, double rounding included") {
  const Multiplier half = quant::quantize_multiplier(0.5);
  const Multiplier quarter = quant::quantize_multiplier(0.25);
  CHECK(quant::multiply_by_quantized_multiplier(100, half) == 50);
  CHECK(quant::multiply_by_quantized_multiplier(3, half) == 2);     // 1.5, ties up
  CHECK(quant::multiply_by_quantized_multiplier(-3, half) == -1);   // −1.5, ties up
  CHECK(quant::multiply_by_quantized_multiplier(3, quarter) == 1);  // 0.75
  // 5 · 0.25 = 1.25: the high multiply gives 2.5 → 3, the shift 1.5 → 2. One rounding gives 1:
  // the ±1 that separates TFLite from ruy.
  CHECK(quant::multiply_by_quantized_multiplier(5, quarter) == 2);
  // M = 1.5 = 0.75 · 2: the left shift first.
  CHECK(quant::multiply_by_quantized_multiplier(1000, quant::quantize_multiplier(1.5)) == 1500);
  // Saturation of the left shift: M = 4 = 0.5 · 2^3; 2^30 · 2^3 saturates to 2^31 − 1, and
  // (2^31 − 1) · 0.5 = 2^30 − 0.5 rounds up to 2^30.
  CHECK(quant::multiply_by_quantized_multiplier(1 << 30, quant::quantize_multiplier(4.0)) ==
        1 << 30);
}

TEST_CASE("multiply_by_quantized_multiplier equals the exact restatement on 200 000 random cases") {
  Rng rng = make_stream(1, "fixed point");
  int differ_from_single_rounding = 0;
  const int cases = 200000;
  for (int i = 0; i < cases; ++i) {
    // Accumulators of every magnitude, multipliers from 2^-31 to 2^8 (extreme shifts included).
    const int magnitude = static_cast<int>(uniform_index(rng, 32));
    auto x = static_cast<std::int32_t>(uniform_index(rng, std::uint64_t{1} << magnitude));
    if (uniform_index(rng, 2) == 1) {
      x = -x;
    }
    if (i % 1000 == 0) {
      x = i % 2000 == 0 ? int_min : int_max;
    }
    const double m = std::ldexp(0.5 + 0.5 * uniform01<double>(rng),
                                static_cast<int>(uniform_index(rng, 40)) - 31);
    const Multiplier q = quant::quantize_multiplier(m);
    CAPTURE(x);
    CAPTURE(m);
    REQUIRE(quant::multiply_by_quantized_multiplier(x, q) == reference(x, q));
    if (q.shift <= 0) {
      const long double exact = std::ldexp(static_cast<long double>(x) * q.value, q.shift - 31);
      const long double once = exact < 0 ? -std::floor(-exact + 0.5L) : std::floor(exact + 0.5L);
      differ_from_single_rounding += static_cast<long double>(reference(x, q)) != once ? 1 : 0;
    }
  }
  // The documented difference from single rounding (ruy): about 1 % of cases, by ±1.
  const double share = static_cast<double>(differ_from_single_rounding) / cases;
  MESSAGE("double vs single rounding differ in ", 100 * share, " % of random cases");
  CHECK(share > 0.001);
  CHECK(share < 0.05);
}

}  // namespace edgescale
