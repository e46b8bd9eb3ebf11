// The integer network (quant/stages.hpp, lowering.hpp, qnetwork.hpp): Dense, Conv2D and pooling
// stages against a plain scalar reference of TFLite's arithmetic written here on PyTorch's CHW
// layout (bit for bit, saturation and extreme multipliers included); BatchNorm folding against
// the float network; post-training conversion of a small network (fusion, errors per layer);
// bad input.
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn.hpp>
#include <edgescale/quant/calibrate.hpp>
#include <edgescale/quant/fixed_point.hpp>
#include <edgescale/quant/qat.hpp>
#include <edgescale/quant/qnetwork.hpp>
#include <edgescale/quant/stages.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace edgescale {
namespace {

using quant::ActivationParams;

std::int8_t random_code(Rng& rng, int lo, int hi) {
  return static_cast<std::int8_t>(
      lo + static_cast<int>(uniform_index(rng, static_cast<std::uint64_t>(hi - lo + 1))));
}

ActivationParams random_params(Rng& rng, float scale) {
  ActivationParams p;
  p.scale = scale;
  p.zero_point = random_code(rng, -128, 127);
  return p;
}

/// The scalar reference: acc = round(b / (S_in S_w)) + Σ (q_in − Z_in)·q_w in 64 bits (checked to
/// fit 32), then M·acc with TFLite's double rounding, + Z_out, clamped.
std::int8_t reference_output(std::int64_t acc, float s_in, float s_w, float bias,
                             const ActivationParams& out, bool relu) {
  const double acc_scale = static_cast<double>(s_in) * s_w;
  acc += static_cast<std::int64_t>(std::nearbyint(static_cast<double>(bias) / acc_scale));
  REQUIRE(acc <= std::numeric_limits<std::int32_t>::max());
  REQUIRE(acc >= std::numeric_limits<std::int32_t>::min());
  const quant::Multiplier m = quant::quantize_multiplier(acc_scale / out.scale);
  std::int32_t v = quant::multiply_by_quantized_multiplier(static_cast<std::int32_t>(acc), m);
  v += out.zero_point;
  const std::int32_t lo = relu ? std::max(out.qmin, out.zero_point) : out.qmin;
  return static_cast<std::int8_t>(std::clamp(v, lo, out.qmax));
}

struct Case {
  std::vector<std::int8_t> w;
  std::vector<float> scales;
  std::vector<float> bias;
  ActivationParams in;
  ActivationParams out;
  bool relu = false;
};

/// A random layer: weights of `bits` bits (all at ±Q_P when `extreme`), scales spread over
/// decades, and an output scale chosen for `regime`: 0 ordinary, 1 saturating (tiny S_out), 2 a
/// multiplier near 2^−31 (huge S_out), 3 a multiplier above 1.
Case random_case(Rng& rng, Index out, Index fan_in, int regime, bool extreme) {
  Case c;
  const int qp = 127;
  c.w.resize(static_cast<std::size_t>(out * fan_in));
  for (auto& v : c.w) {
    v = extreme ? static_cast<std::int8_t>(uniform_index(rng, 2) == 0 ? -qp : qp)
                : random_code(rng, -qp, qp);
  }
  for (Index o = 0; o < out; ++o) {
    c.scales.push_back(
        std::ldexp(1.0F + uniform01<float>(rng), -7 - static_cast<int>(uniform_index(rng, 6))));
    c.bias.push_back(uniform(rng, -2.0F, 2.0F));
  }
  c.in = random_params(rng, 0.02F + uniform01<float>(rng) * 0.05F);
  const float typical =
      c.in.scale * c.scales[0] * 127.0F * std::sqrt(static_cast<float>(fan_in)) * 40;
  const float s_out[] = {typical / 128, typical * 1e-4F, c.in.scale * c.scales[0] * 3e8F,
                         c.in.scale * c.scales[0] * 0.25F};
  c.out = random_params(rng, s_out[regime]);
  c.relu = uniform_index(rng, 2) == 0;
  return c;
}

template <int In, int Out>
void check_dense(Rng& rng, int regime, bool extreme, Index batch) {
  const Case c = random_case(rng, Out, In, regime, extreme);
  quant::DenseStage<In, Out> stage(c.w, c.scales, c.bias, c.in, c.out, c.relu);
  std::vector<std::int8_t> x(static_cast<std::size_t>(In * batch));
  for (auto& v : x) {
    v = extreme ? static_cast<std::int8_t>(uniform_index(rng, 2) == 0 ? -128 : 127)
                : random_code(rng, -128, 127);
  }
  const quant::QBatchView y = stage.forward({x.data(), In, batch, c.in});
  REQUIRE(y.rows == Out);
  REQUIRE(y.cols == batch);
  Index mismatches = 0;
  for (Index j = 0; j < batch; ++j) {
    for (Index o = 0; o < Out; ++o) {
      std::int64_t acc = 0;
      for (Index k = 0; k < In; ++k) {
        acc += (std::int64_t{x[static_cast<std::size_t>(j * In + k)]} - c.in.zero_point) *
               c.w[static_cast<std::size_t>(o * In + k)];
      }
      const auto o_sz = static_cast<std::size_t>(o);
      mismatches +=
          y(o, j) != reference_output(acc, c.in.scale, c.scales[o_sz], c.bias[o_sz], c.out, c.relu);
    }
  }
  CHECK(mismatches == 0);
}

template <int Cin, int H, int W, int Cout, int K, int S, int P>
void check_conv(Rng& rng, int regime, bool extreme, Index batch) {
  using Stage = quant::Conv2DStage<Shape<Cin, H, W>, Cout, K, S, P>;
  constexpr Index patch = Index{Cin} * K * K;
  const Case c = random_case(rng, Cout, patch, regime, extreme);
  Stage stage(c.w, c.scales, c.bias, c.in, c.out, c.relu);
  constexpr Index in_size = Index{Cin} * H * W;
  std::vector<std::int8_t> chw(static_cast<std::size_t>(in_size * batch));
  for (auto& v : chw) {
    v = random_code(rng, -128, 127);
  }
  // The stage reads HWC.
  std::vector<std::int8_t> hwc(chw.size());
  for (Index n = 0; n < batch; ++n) {
    for (Index ch = 0; ch < Cin; ++ch) {
      for (Index p = 0; p < Index{H} * W; ++p) {
        hwc[static_cast<std::size_t>(n * in_size + p * Cin + ch)] =
            chw[static_cast<std::size_t>(n * in_size + ch * H * W + p)];
      }
    }
  }
  const quant::QBatchView y = stage.forward({hwc.data(), in_size, batch, c.in});
  constexpr int oh = Stage::out_height;
  constexpr int ow = Stage::out_width;
  REQUIRE(y.rows == Index{Cout} * oh * ow);
  Index mismatches = 0;
  for (Index n = 0; n < batch; ++n) {
    for (int o = 0; o < Cout; ++o) {
      for (int oy = 0; oy < oh; ++oy) {
        for (int ox = 0; ox < ow; ++ox) {
          std::int64_t acc = 0;  // padding is a real 0: q − Z_in = 0, nothing to add
          for (int ch = 0; ch < Cin; ++ch) {
            for (int ky = 0; ky < K; ++ky) {
              for (int kx = 0; kx < K; ++kx) {
                const int iy = oy * S - P + ky;
                const int ix = ox * S - P + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
                  continue;
                }
                const std::int64_t q =
                    chw[static_cast<std::size_t>(n * in_size + (Index{ch} * H + iy) * W + ix)];
                acc += (q - c.in.zero_point) *
                       c.w[static_cast<std::size_t>(((o * Cin + ch) * K + ky) * K + kx)];
              }
            }
          }
          const auto os = static_cast<std::size_t>(o);
          const std::int8_t expected =
              reference_output(acc, c.in.scale, c.scales[os], c.bias[os], c.out, c.relu);
          // HWC output: pixel-major, channels innermost.
          mismatches += y((Index{oy} * ow + ox) * Cout + o, n) != expected;
        }
      }
    }
  }
  CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE("integer Dense equals the scalar reference bit for bit") {
  Rng rng = make_stream(11, "dense");
  for (int regime = 0; regime < 4; ++regime) {
    CAPTURE(regime);
    for (int rep = 0; rep < 3; ++rep) {
      check_dense<37, 19>(rng, regime, rep == 2, 1 + rep * 5);
      check_dense<1, 3>(rng, regime, rep == 2, 2);
      check_dense<300, 100>(rng, regime, rep == 2, 3);
    }
  }
}

TEST_CASE("integer Conv2D (im2col, padding with Z_in, strides, 1x1) equals the scalar reference") {
  Rng rng = make_stream(12, "conv");
  for (int regime = 0; regime < 4; ++regime) {
    CAPTURE(regime);
    for (int rep = 0; rep < 2; ++rep) {
      check_conv<3, 9, 8, 5, 3, 2, 1>(rng, regime, rep == 1, 2);
      check_conv<2, 6, 6, 4, 1, 1, 0>(rng, regime, rep == 1, 3);
      check_conv<1, 7, 7, 3, 5, 1, 2>(rng, regime, rep == 1, 1);
      check_conv<2, 8, 7, 6, 3, 2, 1>(rng, regime, rep == 1, 2);  // padded 6-code kernel rows
    }
  }
}

/// Max pooling with K x K windows, stride S, against the plain loop over every window.
template <int K, int S>
void check_max_pool(Rng& rng) {
  using In = Shape<6, 9, 11>;
  quant::MaxPoolStage<In, K, S> pool;
  constexpr int oh = (9 - K) / S + 1;
  constexpr int ow = (11 - K) / S + 1;
  std::vector<std::int8_t> x(static_cast<std::size_t>(In::size * 3));
  for (auto& v : x) {
    v = random_code(rng, -128, 127);
  }
  const ActivationParams p{0.1F, -7, -128, 127, 8};
  const quant::QBatchView y = pool.forward({x.data(), In::size, 3, p});
  REQUIRE(y.rows == 6 * oh * ow);
  for (Index n = 0; n < 3; ++n) {
    for (int oy = 0; oy < oh; ++oy) {
      for (int ox = 0; ox < ow; ++ox) {
        for (int c = 0; c < 6; ++c) {
          int m = -129;
          for (int ky = 0; ky < K; ++ky) {
            for (int kx = 0; kx < K; ++kx) {
              m = std::max<int>(m, x[static_cast<std::size_t>(
                                       n * In::size + ((oy * S + ky) * 11 + ox * S + kx) * 6 + c)]);
            }
          }
          REQUIRE(y((oy * ow + ox) * 6 + c, n) == m);
        }
      }
    }
  }
}

TEST_CASE("integer max pooling: tiling windows (2, 3) and overlapping ones, 6 channels") {
  Rng rng = make_stream(14, "max pool");
  check_max_pool<2, 2>(rng);
  check_max_pool<3, 3>(rng);
  check_max_pool<3, 2>(rng);
  check_max_pool<2, 1>(rng);
}

TEST_CASE("integer pooling: the max of codes, and the mean rounded half away from zero") {
  using In = Shape<2, 4, 5>;
  quant::MaxPoolStage<In, 2, 2> max_pool;
  quant::AvgPoolStage<In, 2, 2> avg_pool;
  Rng rng = make_stream(13, "pool");
  std::vector<std::int8_t> x(static_cast<std::size_t>(In::size * 2));
  for (auto& v : x) {
    v = random_code(rng, -128, 127);
  }
  const ActivationParams p{0.1F, 3, -128, 127, 8};
  const quant::QBatchView mx = max_pool.forward({x.data(), In::size, 2, p});
  const quant::QBatchView av = avg_pool.forward({x.data(), In::size, 2, p});
  CHECK(mx.rows == 2 * 2 * 2);
  CHECK(mx.params.zero_point == 3);
  for (Index n = 0; n < 2; ++n) {
    for (int oy = 0; oy < 2; ++oy) {
      for (int ox = 0; ox < 2; ++ox) {
        for (int c = 0; c < 2; ++c) {
          int m = -129;
          int sum = 0;
          for (int ky = 0; ky < 2; ++ky) {
            for (int kx = 0; kx < 2; ++kx) {
              const int v = x[static_cast<std::size_t>(n * In::size +
                                                       ((oy * 2 + ky) * 5 + ox * 2 + kx) * 2 + c)];
              m = std::max(m, v);
              sum += v;
            }
          }
          const double mean = sum / 4.0;
          const int rounded =
              static_cast<int>(mean < 0 ? -std::floor(-mean + 0.5) : std::floor(mean + 0.5));
          CHECK(mx((oy * 2 + ox) * 2 + c, n) == m);
          CHECK(av((oy * 2 + ox) * 2 + c, n) == rounded);
        }
      }
    }
  }
}

namespace {

using SmallConv =
    nn::Sequential<nn::Input<2, 8, 8>, nn::Conv2D<2, 4, 3, nn::Pad<1>>, nn::BatchNorm, nn::ReLU,
                   nn::MaxPool2D<2>, nn::Flatten, nn::Dense<64, 10>, nn::ReLU, nn::Dense<10, 5>>;

/// A network with non-trivial BatchNorm statistics, and a calibration set.
struct Fixture {
  SmallConv net;
  Matrix<float> calibration;
  Matrix<float> test;
  Fixture() {
    Rng rng = make_stream(14, "init");
    net = SmallConv(nn::init::kaiming_normal, rng);
    auto bn = net.layer<1>().parameters();
    for (Index c = 0; c < 4; ++c) {
      bn[0].value[c] = 0.5F + uniform01<float>(rng);
      bn[1].value[c] = uniform(rng, -0.3F, 0.3F);
      bn[2].value[c] = uniform(rng, -0.5F, 0.5F);
      bn[3].value[c] = 0.5F + uniform01<float>(rng);
    }
    calibration = Matrix<float>(SmallConv::input_shape::size, 64);
    test = Matrix<float>(SmallConv::input_shape::size, 32);
    for (Index i = 0; i < calibration.size(); ++i) {
      calibration.data()[i] = standard_normal<float>(rng);
    }
    for (Index i = 0; i < test.size(); ++i) {
      test.data()[i] = standard_normal<float>(rng);
    }
  }
};

}  // namespace

TEST_CASE("BatchNorm folding gives the float network's evaluation-mode output") {
  Fixture f;
  auto w = quant::detail::folded_weights(f.net);
  REQUIRE(w[0].has_value());
  CHECK_FALSE(w[1].has_value());
  // The folded convolution alone, by direct summation, against layers 0..1 in evaluation mode.
  f.net.set_training(false);
  const ConstBatchView<float> x(f.test.data(), f.test.rows(), 1);
  const Matrix<float> reference = nn::features<2>(f.net, x);
  double worst = 0;
  for (int o = 0; o < 4; ++o) {
    for (int y = 0; y < 8; ++y) {
      for (int xx = 0; xx < 8; ++xx) {
        double acc = w[0]->bias[static_cast<std::size_t>(o)];
        for (int c = 0; c < 2; ++c) {
          for (int ky = 0; ky < 3; ++ky) {
            for (int kx = 0; kx < 3; ++kx) {
              const int iy = y - 1 + ky;
              const int ix = xx - 1 + kx;
              if (iy >= 0 && iy < 8 && ix >= 0 && ix < 8) {
                acc +=
                    static_cast<double>(
                        w[0]->weight[static_cast<std::size_t>(((o * 2 + c) * 3 + ky) * 3 + kx)]) *
                    x((c * 8 + iy) * 8 + ix, 0);
              }
            }
          }
        }
        worst = std::max(worst, std::abs(acc - reference((o * 8 + y) * 8 + xx, 0)));
      }
    }
  }
  CHECK(worst < 1e-5);
}

TEST_CASE("post-training int8: fused ReLU, folded BatchNorm, small error per layer") {
  Fixture f;
  quant::Calibrator cal(f.net, [] { return quant::MinMax{}; });
  for (Index b = 0; b < 4; ++b) {
    cal.observe(ConstBatchView<float>(f.calibration.data() + b * 16 * 128, 128, 16));
  }
  auto qnet = quant::convert(f.net, cal);
  CHECK(qnet.stage<3>().fused());  // the ReLU after conv + BatchNorm
  CHECK(qnet.stage<7>().fused());  // the ReLU after the first Dense
  // The integer output against the float network (evaluation mode).
  f.net.set_training(false);
  const Matrix<float> reference = f.net.forward(f.test);
  const Matrix<float> logits = quant::dequantize(qnet.forward(f.test));
  const double sqnr = 10 * std::log10(reference.squaredNorm() / (reference - logits).squaredNorm());
  MESSAGE("int8 output SQNR " << sqnr << " dB");
  CHECK(sqnr > 25);
  const auto errors =
      quant::layer_errors(f.net, qnet, ConstBatchView<float>(f.test.data(), 128, 32));
  REQUIRE(errors.size() ==
          4);  // input, conv group (ends at the ReLU, layer 2), dense 5..6, dense 7
  CHECK(errors[0].path == "input");
  CHECK(errors[1].path == "2");
  CHECK(errors[2].path == "6");
  CHECK(errors[3].path == "7");
  for (const auto& e : errors) {
    CAPTURE(e.path);
    CHECK(e.sqnr_db > 25);
  }
  // 4 bits everywhere loses more than 8 bits, and less with 8-bit ends.
  auto q4 = quant::convert(f.net, cal, {.weight_bits = 4, .activation_bits = 4});
  auto q4e =
      quant::convert(f.net, cal, {.weight_bits = 4, .activation_bits = 4, .eight_bit_ends = true});
  const auto e4 = quant::layer_errors(f.net, q4, ConstBatchView<float>(f.test.data(), 128, 32));
  const auto e4e = quant::layer_errors(f.net, q4e, ConstBatchView<float>(f.test.data(), 128, 32));
  CHECK(e4.back().sqnr_db < errors.back().sqnr_db - 10);
  CHECK(e4e[0].sqnr_db > e4[0].sqnr_db + 10);  // the input stays 8-bit
  CHECK(q4.stage<7>().fused());
  // MSE-clipped weights run too and differ from min-max at 4 bits.
  auto q4m = quant::convert(
      f.net, cal,
      {.weight_bits = 4, .activation_bits = 8, .weight_range = quant::WeightRange::mse});
  (void)q4m.forward(f.test);
}

TEST_CASE("bad calibration and options: clear errors or a documented safe result") {
  Fixture f;
  SUBCASE("NaN in a calibration batch") {
    quant::Calibrator cal(f.net, [] { return quant::MinMax{}; });
    Matrix<float> bad = f.calibration.leftCols(4);
    bad(5, 2) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(cal.observe(bad), argument_error);
  }
  SUBCASE("no batch, or a bit width out of range") {
    quant::Calibrator cal(f.net, [] { return quant::MinMax{}; });
    CHECK_THROWS_AS((void)quant::convert(f.net, cal), argument_error);
    cal.observe(f.calibration);
    CHECK_THROWS_AS((void)quant::convert(f.net, cal, {.weight_bits = 9}), argument_error);
    CHECK_THROWS_AS((void)quant::convert(f.net, cal, {.activation_bits = 1}), argument_error);
  }
  SUBCASE("a zero-width range (every input equal): epsilon scale, finite outputs") {
    quant::Calibrator cal(f.net, [] { return quant::MinMax{}; });
    const Matrix<float> zeros = Matrix<float>::Zero(128, 8);
    cal.observe(zeros);
    auto qnet = quant::convert(f.net, cal);
    CHECK(qnet.stage<0>().output_params().scale == std::numeric_limits<float>::epsilon());
    const Matrix<float> y = quant::dequantize(qnet.forward(zeros));
    CHECK(y.allFinite());
    const quant::QBatchView codes = qnet.forward(f.test);  // inputs outside the range saturate
    CHECK(codes.cols == 32);
  }
  SUBCASE("wrong input sizes and foreign codes") {
    quant::Calibrator cal(f.net, [] { return quant::MinMax{}; });
    cal.observe(f.calibration);
    auto qnet = quant::convert(f.net, cal);
    const Matrix<float> wrong = Matrix<float>::Zero(127, 2);
    CHECK_THROWS_AS((void)qnet.forward(wrong), argument_error);
    std::vector<std::int8_t> codes(64, 0);
    CHECK_THROWS_AS((void)qnet.stage<6>().forward({codes.data(), 64, 1, ActivationParams{0.5F, 1}}),
                    argument_error);
  }
}

}  // namespace edgescale

namespace edgescale {

TEST_CASE("a trained QAT network converts to the integer network its fake quantization models") {
  using Net =
      nn::Sequential<nn::Input<2, 8, 8>, nn::Conv2D<2, 4, 3, nn::Pad<1>>, nn::ReLU,
                     nn::MaxPool2D<2>, nn::Flatten, nn::Dense<64, 10>, nn::ReLU, nn::Dense<10, 5>>;
  Rng rng = make_stream(15, "qat");
  Net net(nn::init::kaiming_normal, rng);
  Matrix<float> x(128, 64);
  for (Index i = 0; i < x.size(); ++i) {
    x.data()[i] = standard_normal<float>(rng);
  }
  quant::qat_network_t<Net> qat;
  CHECK_THROWS_AS((void)quant::convert(qat), argument_error);  // not prepared
  for (const int bits : {8, 4}) {
    CAPTURE(bits);
    quant::prepare_qat(qat, net, x, quant::eight_bit_ends(net, bits));
    auto qnet = quant::convert(qat);
    CHECK(qnet.stage<2>().fused());
    CHECK(qnet.stage<6>().fused());
    CHECK(qnet.stage<1>().requantizer().weight_bits() == 8);  // first layer: 8-bit ends
    CHECK(qnet.stage<7>().requantizer().weight_bits() == 8);  // last layer
    CHECK(qnet.stage<5>().requantizer().weight_bits() <= bits);
    CHECK(qnet.stage<5>().output_params().qmax - qnet.stage<5>().output_params().qmin ==
          (1 << bits) - 1);
    const Matrix<float> fake = qat.forward(x);
    const Matrix<float> integer = quant::dequantize(qnet.forward(x));
    // The output codes agree with the fake-quantized logits but for the requantization's rounding:
    // the integer logits are within one output step of the fake ones almost everywhere.
    const float step = qnet.stage<7>().output_params().scale;
    const Index close = ((fake - integer).array().abs() <= 1.01F * step).count();
    MESSAGE(bits << "-bit: " << close << " of " << fake.size() << " logits within one step");
    CHECK(close >= fake.size() * 95 / 100);
    Index same = 0;
    for (Index j = 0; j < x.cols(); ++j) {
      Index a = 0;
      Index b = 0;
      fake.col(j).maxCoeff(&a);
      integer.col(j).maxCoeff(&b);
      same += a == b;
    }
    CHECK(same >= x.cols() * 9 / 10);
  }
}

}  // namespace edgescale
