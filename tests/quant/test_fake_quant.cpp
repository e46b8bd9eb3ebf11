// Fake quantization (quant/fake_quant.hpp): the forward, the STE and LSQ gradients against the
// closed forms of Esser et al. (ICLR 2020) on hand-worked values (inside, at and beyond the clamp
// edges, ties to even), the gradient scale and initial step, and the float forward against the
// integer container's own arithmetic (ActivationParams) bit for bit.
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/quant/fake_quant.hpp>
#include <edgescale/quant/params.hpp>

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace edgescale {

namespace {

/// The forward and both gradients at one value, in double.
struct Worked {
  double v;
  double q_hat;
  double d_input;
  double d_step;
};

void check_worked(const Worked& w, double step, const quant::CodeRange& codes) {
  CAPTURE(w.v);
  CHECK(quant::fake_quantize(w.v, step, codes) == doctest::Approx(w.q_hat).epsilon(1e-12));
  const auto g = quant::fake_quantize_gradient(w.v, step, codes);
  CHECK(g.input == w.d_input);
  CHECK(g.step == doctest::Approx(w.d_step).epsilon(1e-12));
}

}  // namespace

TEST_CASE("qat fake quant: code ranges of weights, signed and unsigned activations") {
  CHECK(quant::narrow_codes(8).qn == 127);
  CHECK(quant::narrow_codes(8).qp == 127);
  CHECK(quant::narrow_codes(4).qn == 7);
  CHECK(quant::narrow_codes(2).qp == 1);
  CHECK(quant::signed_codes(8).qn == 128);
  CHECK(quant::signed_codes(8).qp == 127);
  CHECK(quant::signed_codes(4).qn == 8);
  CHECK(quant::signed_codes(4).qp == 7);
  CHECK(quant::unsigned_codes(8).qn == 0);
  CHECK(quant::unsigned_codes(8).qp == 255);
  CHECK(quant::unsigned_codes(4).qp == 15);
  for (const int bad : {-1, 0, 1, 9, 32}) {
    CAPTURE(bad);
    CHECK_THROWS_AS((void)quant::narrow_codes(bad), argument_error);
    CHECK_THROWS_AS((void)quant::signed_codes(bad), argument_error);
    CHECK_THROWS_AS((void)quant::unsigned_codes(bad), argument_error);
  }
  // The int8 container: unsigned codes shifted by −128, signed ones as they are.
  const quant::ActivationParams u4 = quant::lsq_params(0.5F, 4, false);
  CHECK(u4.zero_point == -128);
  CHECK(u4.qmin == -128);
  CHECK(u4.qmax == -113);
  CHECK_NOTHROW(u4.check("u4"));
  const quant::ActivationParams s8 = quant::lsq_params(0.5F, 8, true);
  CHECK(s8.zero_point == 0);
  CHECK(s8.qmin == -128);
  CHECK(s8.qmax == 127);
  CHECK_NOTHROW(s8.check("s8"));
  CHECK(quant::codes_of(u4).qn == 0);
  CHECK(quant::codes_of(u4).qp == 15);
  CHECK(quant::codes_of(s8).qn == 128);
  // An affine input quantization: Z = −64 in [−128, 127] covers 64 codes below zero.
  const quant::ActivationParams affine{0.1F, -64, -128, 127, 8};
  CHECK(quant::codes_of(affine).qn == 64);
  CHECK(quant::codes_of(affine).qp == 191);
}

TEST_CASE("qat fake quant: unsigned 4-bit LSQ, worked by hand (s = 0.5, Q_N = 0, Q_P = 15)") {
  const quant::CodeRange codes = quant::unsigned_codes(4);
  const double s = 0.5;
  // inside: v/s = 4.6 rounds to 5; ∂q̂/∂s = 5 − 4.6 = 0.4
  check_worked({2.3, 2.5, 1, 0.4}, s, codes);
  // inside: v/s = 4.4 rounds to 4; ∂q̂/∂s = −0.4
  check_worked({2.2, 2.0, 1, -0.4}, s, codes);
  // just inside the top: v/s = 14.8 rounds to 15 = Q_P; still inside, ∂q̂/∂s = 0.2
  check_worked({7.4, 7.5, 1, 0.2}, s, codes);
  // at the top edge v/s = Q_P = 15: clamped, ∂q̂/∂v = 0, ∂q̂/∂s = Q_P
  check_worked({7.5, 7.5, 0, 15}, s, codes);
  // beyond it: v/s = 16
  check_worked({8.0, 7.5, 0, 15}, s, codes);
  // at the bottom edge v = 0 and below: ∂q̂/∂s = −Q_N = 0
  check_worked({0.0, 0.0, 0, 0}, s, codes);
  check_worked({-1.0, 0.0, 0, 0}, s, codes);
  // just above zero: v/s = 0.2 rounds to 0 (inside), ∂q̂/∂s = −0.2
  check_worked({0.1, 0.0, 1, -0.2}, s, codes);
}

TEST_CASE("qat fake quant: signed 4-bit LSQ at both edges (s = 0.25, Q_N = 8, Q_P = 7)") {
  const quant::CodeRange codes = quant::signed_codes(4);
  const double s = 0.25;
  check_worked({-3.0, -2.0, 0, -8}, s, codes);         // v/s = −12 <= −Q_N
  check_worked({-2.0, -2.0, 0, -8}, s, codes);         // v/s = −8 = −Q_N: the edge
  check_worked({-1.9, -2.0, 1, -0.4}, s, codes);       // v/s = −7.6 rounds to −8, inside
  check_worked({1.0, 1.0, 1, 0.0}, s, codes);          // v/s = 4 exactly
  check_worked({1.75, 1.75, 0, 7}, s, codes);          // v/s = 7 = Q_P
  check_worked({1.8, 1.75, 0, 7}, s, codes);           // v/s = 7.2
  check_worked({-0.3, -0.25, 1, -1 + 1.2}, s, codes);  // v/s = −1.2 rounds to −1
}

TEST_CASE("qat fake quant: round half to even, as the quantizers") {
  const quant::CodeRange codes = quant::signed_codes(8);
  // s = 1: ties go to the even code; ∂q̂/∂s = round(x) − x = ∓0.5
  check_worked({2.5, 2.0, 1, -0.5}, 1.0, codes);
  check_worked({3.5, 4.0, 1, 0.5}, 1.0, codes);
  check_worked({-2.5, -2.0, 1, 0.5}, 1.0, codes);
  check_worked({-3.5, -4.0, 1, -0.5}, 1.0, codes);
  check_worked({0.5, 0.0, 1, -0.5}, 1.0, codes);
  // 8-bit narrow weights: ±127 at most, the edge at ±127 exactly
  const quant::CodeRange w8 = quant::narrow_codes(8);
  check_worked({126.5, 126.0, 1, -0.5}, 1.0, w8);
  check_worked({127.0, 127.0, 0, 127}, 1.0, w8);
  check_worked({-130.0, -127.0, 0, -127}, 1.0, w8);
  // the forward keeps the step's sign of zero out: a negative value rounding to 0 gives +0
  CHECK(!std::signbit(quant::fake_quantize(-0.2F, 1.0F, codes)));
  CHECK(quant::fake_quantize(std::nan(""), 1.0, codes) == 0.0);
  const auto nan_gradient = quant::fake_quantize_gradient(std::nan(""), 1.0, codes);
  CHECK(nan_gradient.input == 0.0);
  CHECK(nan_gradient.step == 0.0);
}

TEST_CASE("qat fake quant: LSQ gradient scale and initial step") {
  // g = 1/√(N·Q_P): 16 features at 4 bits unsigned (Q_P = 15)
  CHECK(quant::lsq_gradient_scale<double>(16, quant::unsigned_codes(4)) ==
        doctest::Approx(1.0 / std::sqrt(240.0)));
  // 300 weights per channel, 8-bit narrow (Q_P = 127)
  CHECK(quant::lsq_gradient_scale<float>(300, quant::narrow_codes(8)) ==
        doctest::Approx(1.0 / std::sqrt(300.0 * 127.0)));
  // s = 2·mean|v| / √Q_P: mean|{1, −3, 2, 0}| = 1.5, Q_P = 15
  CHECK(quant::lsq_initial_step(1.5, quant::unsigned_codes(4)) ==
        doctest::Approx(3.0 / std::sqrt(15.0)));
  // nothing but zeros: the smallest step, never 0
  CHECK(quant::lsq_initial_step(0.0F, quant::narrow_codes(4)) ==
        std::numeric_limits<float>::epsilon());
}

TEST_CASE("qat fake quant: tensor backward sums the LSQ step gradient and masks the STE") {
  const quant::CodeRange codes = quant::unsigned_codes(4);
  // the values of the unsigned hand-worked case, s = 0.5
  Matrix<double> v(4, 2);
  v << 2.3, 7.5, 2.2, 8.0, 7.4, 0.0, 0.1, -1.0;
  Matrix<double> dy(4, 2);
  dy << 1, 2, 3, 4, 5, 6, 7, 8;
  Matrix<double> y(4, 2);
  quant::fake_quantize(batch_view(v), 0.5, codes, BatchView<double>(y.data(), 4, 2));
  Matrix<double> expected(4, 2);
  expected << 2.5, 7.5, 2.0, 7.5, 7.5, 0.0, 0.0, 0.0;
  CHECK(y == expected);
  Matrix<double> dx(4, 2);
  const double step_sum = quant::fake_quantize_backward(batch_view(v), 0.5, codes, batch_view(dy),
                                                        BatchView<double>(dx.data(), 4, 2));
  // Σ dy·∂q̂/∂s: 1·0.4 + 2·15 + 3·(−0.4) + 4·15 + 5·0.2 + 6·0 + 7·(−0.2) + 8·0
  CHECK(step_sum == doctest::Approx(0.4 + 30 - 1.2 + 60 + 1.0 - 1.4));
  Matrix<double> expected_dx(4, 2);
  expected_dx << 1, 0, 3, 0, 5, 0, 7, 0;
  CHECK(dx == expected_dx);
}

TEST_CASE(
    "qat fake quant: per-channel weights, each channel with its step and its gradient scale") {
  // two channels of three weights, 4-bit narrow codes [−7, 7]
  const quant::CodeRange codes = quant::narrow_codes(4);
  const std::vector<double> w{0.26, -0.9, 2.0, 0.3, -0.05, -10.0};
  const std::vector<double> steps{0.1, 1.0};
  std::vector<double> w_hat(6);
  quant::fake_quantize_channels<double>(w, steps, codes, w_hat);
  // channel 0: 2.6 → 3, −9 → −7 (clamped), 20 → 7 (clamped); channel 1: 0.3 → 0, −0.05 → −0,
  // −10 → −7
  const std::vector<double> expected{0.3, -0.7, 0.7, 0.0, 0.0, -7.0};
  for (std::size_t k = 0; k < w.size(); ++k) {
    CAPTURE(k);
    CHECK(w_hat[k] == doctest::Approx(expected[k]).epsilon(1e-12));
  }
  std::vector<double> dw_hat{1, 1, 1, 2, 2, 2};
  std::vector<double> dsteps(2);
  // dw written over dŵ (allowed)
  quant::fake_quantize_channels_backward<double>(w, steps, codes, dw_hat, dw_hat, dsteps);
  const std::vector<double> expected_dw{1, 0, 0, 2, 2, 0};
  CHECK(dw_hat == expected_dw);
  const double g = 1.0 / std::sqrt(3.0 * 7.0);
  // channel 0: (3 − 2.6) − 7 + 7; channel 1: 2·(0 − 0.3) + 2·(0 + 0.05) + 2·(−7)
  CHECK(dsteps[0] == doctest::Approx(g * (0.4 - 7 + 7)));
  CHECK(dsteps[1] == doctest::Approx(g * (-0.6 + 0.1 - 14)));
  std::vector<double> odd(5);
  CHECK_THROWS_AS(quant::fake_quantize_channels<double>(std::span<const double>(w.data(), 5), steps,
                                                        codes, odd),
                  shape_error);
}

TEST_CASE("qat fake quant: the float forward is the integer container's arithmetic, bit for bit") {
  Rng rng = make_stream(7, "fake quant container");
  std::vector<float> values{0.0F,
                            -0.0F,
                            0.25F,
                            -0.25F,
                            0.75F,
                            -1.25F,
                            1e-30F,
                            -1e-30F,
                            1e30F,
                            -1e30F,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN()};
  for (int i = 0; i < 2000; ++i) {
    values.push_back(static_cast<float>(40.0 * standard_normal(rng)));
  }
  for (const bool is_signed : {false, true}) {
    for (int bits = 2; bits <= 8; ++bits) {
      for (const float step : {0.5F, 0.1F, 0.037F, 3.0F}) {
        CAPTURE(is_signed);
        CAPTURE(bits);
        CAPTURE(step);
        const quant::ActivationParams p = quant::lsq_params(step, bits, is_signed);
        const quant::CodeRange codes = quant::codes_of(p);
        int mismatches = 0;
        for (const float v : values) {
          const float container = p.dequantize(p.quantize(v));
          const float generic = quant::fake_quantize(v, step, codes);
          mismatches +=
              std::bit_cast<std::uint32_t>(container) == std::bit_cast<std::uint32_t>(generic) ? 0
                                                                                               : 1;
        }
        CHECK(mismatches == 0);
      }
    }
  }
  // the tensor form for floats is the container's round trip, with a fixed affine input too
  const quant::ActivationParams affine{0.02F, -50, -128, 127, 8};
  Matrix<float> v(3, 1);
  v << -3.0F, 0.013F, 9.0F;
  Matrix<float> y(3, 1);
  quant::fake_quantize(batch_view(v), affine, BatchView<float>(y.data(), 3, 1));
  for (Index i = 0; i < 3; ++i) {
    CHECK(y(i) == affine.dequantize(affine.quantize(v(i))));
  }
  CHECK(y(0) == affine.dequantize(-128));  // saturated at qmin: −78 codes below the zero point
  CHECK(y(2) == affine.dequantize(127));
}

}  // namespace edgescale
