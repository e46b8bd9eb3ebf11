// Quantizers (quant/quantizer.hpp) and observers (quant/observer.hpp) against hand-worked
// parameters and PyTorch's conventions, and bad input: NaN, zero-width ranges, wrong shapes.
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/quant/concepts.hpp>
#include <edgescale/quant/observer.hpp>
#include <edgescale/quant/quantizer.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace edgescale {

static_assert(quant::Quantizer<quant::Affine<8>>);
static_assert(quant::Quantizer<quant::Affine<4, true>>);
static_assert(quant::Quantizer<quant::Symmetric<8>>);
static_assert(quant::Quantizer<quant::PowerOfTwo<2>>);
static_assert(quant::Observer<quant::MinMax>);
static_assert(quant::Observer<quant::MovingAverageMinMax>);
static_assert(quant::Observer<quant::Percentile>);
static_assert(quant::Observer<quant::MseClipping<8>>);
static_assert(quant::Affine<8>::qmin == 0 && quant::Affine<8>::qmax == 255);
static_assert(quant::Affine<8, true>::qmin == -128 && quant::Affine<8, true>::qmax == 127);
static_assert(quant::Symmetric<8>::qmin == -127 && quant::Symmetric<8>::qmax == 127);
static_assert(quant::Symmetric<4>::qmin == -7 && quant::Symmetric<4>::qmax == 7);
static_assert(quant::Affine<2>::qmax == 3);

TEST_CASE("Affine: scale, zero point, round half to even and saturation, worked by hand") {
  // [−1, 3] on uint8: S = 4/255, Z = 0 − round(−1 / S) = round(63.75) = 64.
  const auto q = quant::Affine<8>::from_range(-1.0F, 3.0F);
  CHECK(q.scale() == doctest::Approx(4.0 / 255));
  CHECK(q.zero_point() == 64);
  CHECK(q.quantize(0.0F) == 64);
  CHECK(q.dequantize(64) == 0.0F);  // 0 is exact
  CHECK(q.quantize(3.0F) == 255);
  CHECK(q.quantize(-1.0F) == 0);
  CHECK(q.quantize(100.0F) == 255);  // saturated
  CHECK(q.quantize(-100.0F) == 0);
  // S = 1 on int8 [−128, 127]: ties to even.
  const auto unit = quant::Affine<8, true>::from_range(-128.0F, 127.0F);
  CHECK(unit.scale() == 1.0F);
  CHECK(unit.zero_point() == 0);
  CHECK(unit.quantize(2.5F) == 2);
  CHECK(unit.quantize(3.5F) == 4);
  CHECK(unit.quantize(-2.5F) == -2);
  CHECK(unit.quantize(1000.0F) == 127);
  CHECK(unit.quantize(-1000.0F) == -128);
  // The range always includes 0: [2, 5] is quantized as [0, 5].
  const auto positive = quant::Affine<8>::from_range(2.0F, 5.0F);
  CHECK(positive.zero_point() == 0);
  CHECK(positive.scale() == doctest::Approx(5.0 / 255));
  // 4 bits: codes 0..15.
  const auto four = quant::Affine<4>::from_range(0.0F, 1.5F);
  CHECK(four.quantize(1.5F) == 15);
  CHECK(four.scale() == doctest::Approx(0.1));
}

TEST_CASE("Symmetric and PowerOfTwo: narrow signed codes, unsigned midpoint, power-of-two scales") {
  // max |x| = 2 on int8: S = 2/127, codes in [−127, 127] — never −128.
  const auto s = quant::Symmetric<8>::from_range(-2.0F, 1.0F);
  CHECK(s.scale() == doctest::Approx(2.0 / 127));
  CHECK(s.zero_point() == 0);
  CHECK(s.quantize(-2.0F) == -127);
  CHECK(s.quantize(2.0F) == 127);
  CHECK(s.quantize(-5.0F) == -127);
  CHECK(s.dequantize(-127) == doctest::Approx(-2.0));
  // Unsigned symmetric: Z = 128, S = m / 127.5.
  const auto u = quant::Symmetric<8, false>::from_range(-1.0F, 1.0F);
  CHECK(u.zero_point() == 128);
  CHECK(u.scale() == doctest::Approx(1.0 / 127.5));
  // PowerOfTwo: S = 2^⌈log₂(1/127)⌉ = 2^−6.
  const auto p = quant::PowerOfTwo<8>::from_range(-1.0F, 1.0F);
  CHECK(p.scale() == 0.015625F);
  CHECK(p.exponent() == -6);
  CHECK(p.quantize(1.0F) == 64);
  // Per channel: each channel its own scale.
  const std::vector<float> lo{-1.0F, -4.0F};
  const std::vector<float> hi{1.0F, 0.5F};
  const auto pc = quant::Symmetric<8>::from_range(lo, hi);
  CHECK(pc.channels() == 2);
  CHECK(pc.scale(0) == doctest::Approx(1.0 / 127));
  CHECK(pc.scale(1) == doctest::Approx(4.0 / 127));
  CHECK(pc.quantize(-4.0F, 1) == -127);
  CHECK_THROWS_AS((void)pc.quantize(0.0F, 2), argument_error);
}

TEST_CASE("bad ranges: NaN and inverted ranges are refused; a zero-width range is safe") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS((void)quant::Affine<8>::from_range(nan, 1.0F), doctest::Contains("NaN"),
                       argument_error);
  CHECK_THROWS_AS((void)quant::Symmetric<8>::from_range(2.0F, 1.0F), argument_error);
  CHECK_THROWS_AS((void)quant::Affine<8>::from_range(0.0F, std::numeric_limits<float>::infinity()),
                  argument_error);
  // All values 0: S = float epsilon, every value to Z and back to 0 — no division by zero.
  for (const auto& q : {quant::Affine<8>::from_range(0.0F, 0.0F)}) {
    CHECK(q.scale() == std::numeric_limits<float>::epsilon());
    CHECK(q.quantize(0.0F) == q.zero_point());
    CHECK(q.dequantize(q.quantize(0.0F)) == 0.0F);
  }
  const auto z = quant::Symmetric<4>::from_range(0.0F, 0.0F);
  CHECK(std::isfinite(z.scale()));
  CHECK(z.round_trip(0.0F) == 0.0F);
  CHECK(z.quantize(nan) == z.zero_point());
  // A constant c: the range [0, c] keeps c exact at the top code.
  const auto c = quant::Affine<8>::from_range(5.0F, 5.0F);
  CHECK(c.round_trip(5.0F) == doctest::Approx(5.0F));
}

TEST_CASE("observers: min-max, moving average, percentile and MSE clipping") {
  Matrix<float> a(2, 3);
  a << -1, 0, 2, 4, 5, -3;
  Matrix<float> b(2, 3);
  b << -2, 1, 1, 0, 1, 6;

  quant::MinMax per_tensor;
  per_tensor.observe(a);
  per_tensor.observe(b);
  CHECK(per_tensor.range().lo == std::vector<float>{-3});
  CHECK(per_tensor.range().hi == std::vector<float>{6});
  quant::MinMax per_channel(2);
  per_channel.observe(a);
  per_channel.observe(b);
  CHECK(per_channel.range().lo == std::vector<float>{-2, -3});
  CHECK(per_channel.range().hi == std::vector<float>{2, 6});
  const auto q = per_channel.quantizer<quant::Symmetric<8>>();
  CHECK(q.scale(1) == doctest::Approx(6.0 / 127));

  quant::MovingAverageMinMax moving(1, 0.5);
  moving.observe(a);  // first batch: [−3, 5]
  moving.observe(b);  // min −3 + 0.5 (−2 + 3) = −2.5, max 5 + 0.5 (6 − 5) = 5.5
  CHECK(moving.range().lo[0] == doctest::Approx(-2.5));
  CHECK(moving.range().hi[0] == doctest::Approx(5.5));

  // Percentile: 10 000 values 1..10 000; the 99th and 1st percentiles by nearest rank.
  Matrix<float> ramp(1, 10000);
  for (Index i = 0; i < ramp.cols(); ++i) {
    ramp(0, i) = static_cast<float>(i + 1);
  }
  quant::Percentile pct(1, 99.0);
  pct.observe(ramp);
  CHECK(pct.range().hi[0] == 9900.0F);
  CHECK(pct.range().lo[0] == 100.0F);

  // MSE clipping: Gaussian values plus a few far outliers. The clipped range beats min-max's on
  // 4 bits, and clips the outliers.
  Rng rng = make_stream(2, "mse observer");
  Matrix<float> g(1, 20000);
  for (Index i = 0; i < g.cols(); ++i) {
    g(0, i) = static_cast<float>(standard_normal(rng));
  }
  g(0, 0) = 40.0F;
  g(0, 1) = -40.0F;
  quant::MseClipping<4> mse;
  mse.observe(g);
  quant::MinMax mm;
  mm.observe(g);
  const auto clipped = mse.quantizer<quant::Affine<4>>();
  const auto full = mm.quantizer<quant::Affine<4>>();
  double e_clipped = 0;
  double e_full = 0;
  for (Index i = 0; i < g.cols(); ++i) {
    const float v = g(0, i);
    e_clipped += std::pow(v - clipped.round_trip(v), 2);
    e_full += std::pow(v - full.round_trip(v), 2);
  }
  MESSAGE("4-bit squared error: MSE clipping ", e_clipped, ", min-max ", e_full);
  CHECK(e_clipped < 0.5 * e_full);
  CHECK(mse.range().hi[0] < 20.0F);
}

TEST_CASE("observers refuse NaN, wrong shapes and an empty history") {
  Matrix<float> x = Matrix<float>::Ones(3, 4);
  x(1, 2) = std::numeric_limits<float>::quiet_NaN();
  x(0, 0) = std::numeric_limits<float>::infinity();
  quant::MinMax obs;
  CHECK_THROWS_WITH_AS(obs.observe(x), doctest::Contains("2 NaN or infinite values"),
                       argument_error);
  CHECK_THROWS_WITH_AS((void)obs.range(), doctest::Contains("nothing observed"), argument_error);
  quant::MinMax per_channel(5);
  CHECK_THROWS_WITH_AS(per_channel.observe(Matrix<float>::Ones(3, 4)),
                       doctest::Contains("5 channels"), argument_error);
  quant::Percentile pct;
  CHECK_THROWS_AS(pct.observe(Matrix<float>(0, 0)), argument_error);
  CHECK_THROWS_AS(quant::MovingAverageMinMax(1, 0.0), argument_error);
  // All values equal to 0: a safe quantizer, no NaN.
  quant::MseClipping<8> zeros;
  zeros.observe(Matrix<float>::Zero(2, 2));
  const auto q = zeros.quantizer<quant::Affine<8>>();
  CHECK(std::isfinite(q.scale()));
  CHECK(q.round_trip(0.0F) == 0.0F);
}

}  // namespace edgescale
