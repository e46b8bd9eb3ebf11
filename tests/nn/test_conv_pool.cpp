#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/sequential.hpp>

#include "nn/gradcheck.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <type_traits>

using namespace edgescale;

// ---- compile-time shapes ---------------------------------------------------------------------

static_assert(
    std::is_same_v<nn::Conv2D<1, 6, 5, nn::Pad<2>>::layer<float, Shape<1, 28, 28>>::output_shape,
                   Shape<6, 28, 28>>);
static_assert(std::is_same_v<nn::MaxPool2D<2>::layer<float, Shape<6, 28, 28>>::output_shape,
                             Shape<6, 14, 14>>);
static_assert(std::is_same_v<nn::Conv2D<6, 16, 5>::layer<float, Shape<6, 14, 14>>::output_shape,
                             Shape<16, 10, 10>>);
static_assert(std::is_same_v<nn::MaxPool2D<2>::layer<float, Shape<16, 10, 10>>::output_shape,
                             Shape<16, 5, 5>>);
// floor((H + 2P - K) / S) + 1
static_assert(std::is_same_v<nn::Conv2D<3, 8, 3, nn::Stride<2>,
                                        nn::Pad<1>>::layer<float, Shape<3, 7, 8>>::output_shape,
                             Shape<8, 4, 4>>);
static_assert(std::is_same_v<nn::AvgPool2D<3, 2>::layer<double, Shape<2, 7, 6>>::output_shape,
                             Shape<2, 3, 2>>);
static_assert(std::is_same_v<nn::MaxPool2D<3, 1>::layer<double, Shape<1, 5, 4>>::output_shape,
                             Shape<1, 3, 2>>);
// Options in any order give the same layer.
static_assert(
    std::is_same_v<
        nn::Conv2D<2, 4, 3, nn::NoBias, nn::Pad<1>, nn::Stride<2>>::layer<float, Shape<2, 9, 9>>,
        nn::Conv2D<2, 4, 3, nn::Stride<2>, nn::NoBias, nn::Pad<1>>::layer<float, Shape<2, 9, 9>>>);
static_assert(nn::Conv2D<1, 1, 3>::stride == 1 && nn::Conv2D<1, 1, 3>::padding == 0 &&
              nn::Conv2D<1, 1, 3>::has_bias);
static_assert(nn::Layer<nn::Conv2D<1, 6, 5>::layer<float, Shape<1, 28, 28>>>);
static_assert(nn::HasParameterOnlyBackward<nn::Conv2D<1, 6, 5>::layer<float, Shape<1, 28, 28>>>);
static_assert(nn::Layer<nn::MaxPool2D<2>::layer<float, Shape<3, 4, 4>>>);
static_assert(nn::Layer<nn::AvgPool2D<2>::layer<float, Shape<3, 4, 4>>>);

// Wrong shapes are refused (false, not a hard error).
static_assert(nn::AcceptsInput<nn::Conv2D<1, 6, 5>, float, Shape<1, 28, 28>>);
static_assert(!nn::AcceptsInput<nn::Conv2D<3, 6, 5>, float, Shape<1, 28, 28>>);  // channels
static_assert(!nn::AcceptsInput<nn::Conv2D<1, 6, 5>, float, Shape<784>>);        // rank 1
static_assert(!nn::AcceptsInput<nn::Conv2D<1, 6, 5>, float, Shape<1, 28>>);      // rank 2
static_assert(!nn::AcceptsInput<nn::Conv2D<1, 6, 5>, float, Shape<1, 4, 28>>);   // too small
static_assert(nn::AcceptsInput<nn::Conv2D<1, 6, 5, nn::Pad<1>>, float, Shape<1, 3, 3>>);
static_assert(nn::AcceptsInput<nn::MaxPool2D<2>, float, Shape<5, 2, 2>>);
static_assert(!nn::AcceptsInput<nn::MaxPool2D<3>, float, Shape<5, 2, 9>>);
static_assert(!nn::AcceptsInput<nn::MaxPool2D<2>, float, Shape<100>>);
static_assert(!nn::AcceptsInput<nn::AvgPool2D<2>, double, Shape<4, 4>>);

// ---- helpers ---------------------------------------------------------------------------------

namespace {

template <class Spec, class In>
struct Case {
  using spec = Spec;
  using input = In;
};

/// Every parameter tensor drawn from N(0, scale²).
template <class L>
void randomize(L& layer, Rng& rng, double scale = 0.5) {
  for (auto& p : layer.parameters()) {
    for (Index i = 0; i < p.size(); ++i)
      p.value[i] = scale * standard_normal(rng);
  }
}

/// Direct convolution, 7 nested loops, PyTorch's definition.
template <class L>
Matrix<double> naive_conv(const L& layer, const Matrix<double>& x, int stride, int pad) {
  using In = typename L::input_shape;
  using Out = typename L::output_shape;
  constexpr int cin = In::dims[0], h = In::dims[1], w = In::dims[2];
  constexpr int cout = Out::dims[0], ho = Out::dims[1], wo = Out::dims[2];
  const auto params = layer.parameters();
  const Vector<double>& weight = params[0].value;
  const int k = static_cast<int>(params[0].shape[2]);
  Matrix<double> y(Out::size, x.cols());
  for (Index n = 0; n < x.cols(); ++n) {
    for (int o = 0; o < cout; ++o) {
      for (int oy = 0; oy < ho; ++oy) {
        for (int ox = 0; ox < wo; ++ox) {
          double sum = L::has_bias ? params[1].value[o] : 0.0;
          for (int c = 0; c < cin; ++c) {
            for (int ky = 0; ky < k; ++ky) {
              for (int kx = 0; kx < k; ++kx) {
                const int iy = oy * stride - pad + ky;
                const int ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                  continue;
                sum += weight[((o * cin + c) * k + ky) * k + kx] * x((c * h + iy) * w + ix, n);
              }
            }
          }
          y((o * ho + oy) * wo + ox, n) = sum;
        }
      }
    }
  }
  return y;
}

/// Direct weight gradient: dW[o, c, ky, kx] = Σ_{n, oy, ox} dy[o, oy, ox] · x[c, oy·S − P + ky,
/// ox·S − P + kx] (0 outside the image).
template <class L>
Vector<double> naive_weight_gradient(const Matrix<double>& x, const Matrix<double>& dy, int k,
                                     int stride, int pad) {
  using In = typename L::input_shape;
  using Out = typename L::output_shape;
  constexpr int cin = In::dims[0], h = In::dims[1], w = In::dims[2];
  constexpr int cout = Out::dims[0], ho = Out::dims[1], wo = Out::dims[2];
  Vector<double> dw = Vector<double>::Zero(Index{cout} * cin * k * k);
  for (Index n = 0; n < x.cols(); ++n) {
    for (int o = 0; o < cout; ++o) {
      for (int c = 0; c < cin; ++c) {
        for (int ky = 0; ky < k; ++ky) {
          for (int kx = 0; kx < k; ++kx) {
            double sum = 0;
            for (int oy = 0; oy < ho; ++oy) {
              for (int ox = 0; ox < wo; ++ox) {
                const int iy = oy * stride - pad + ky;
                const int ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                  continue;
                sum += dy((o * ho + oy) * wo + ox, n) * x((c * h + iy) * w + ix, n);
              }
            }
            dw[((o * cin + c) * k + ky) * k + kx] += sum;
          }
        }
      }
    }
  }
  return dw;
}

/// Direct input gradient: dx[c, iy, ix] = Σ_{o, oy, ox, ky, kx} W[o, c, ky, kx] · dy[o, oy, ox]
/// over the (oy, ox, ky, kx) with oy·S − P + ky = iy and ox·S − P + kx = ix.
template <class L>
Matrix<double> naive_input_gradient(const L& layer, const Matrix<double>& dy, int stride, int pad) {
  using In = typename L::input_shape;
  using Out = typename L::output_shape;
  constexpr int cin = In::dims[0], h = In::dims[1], w = In::dims[2];
  constexpr int cout = Out::dims[0], ho = Out::dims[1], wo = Out::dims[2];
  const Vector<double>& weight = layer.parameters()[0].value;
  const int k = static_cast<int>(layer.parameters()[0].shape[2]);
  Matrix<double> dx = Matrix<double>::Zero(In::size, dy.cols());
  for (Index n = 0; n < dy.cols(); ++n) {
    for (int o = 0; o < cout; ++o) {
      for (int oy = 0; oy < ho; ++oy) {
        for (int ox = 0; ox < wo; ++ox) {
          for (int c = 0; c < cin; ++c) {
            for (int ky = 0; ky < k; ++ky) {
              for (int kx = 0; kx < k; ++kx) {
                const int iy = oy * stride - pad + ky;
                const int ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                  continue;
                dx((c * h + iy) * w + ix, n) +=
                    weight[((o * cin + c) * k + ky) * k + kx] * dy((o * ho + oy) * wo + ox, n);
              }
            }
          }
        }
      }
    }
  }
  return dx;
}

/// Direct pooling: max (first maximum wins) or mean of each window.
template <class In, class Out>
Matrix<double> naive_pool(const Matrix<double>& x, int k, int stride, bool max) {
  constexpr int c = In::dims[0], h = In::dims[1], w = In::dims[2];
  constexpr int ho = Out::dims[1], wo = Out::dims[2];
  Matrix<double> y(Out::size, x.cols());
  for (Index n = 0; n < x.cols(); ++n) {
    for (int ch = 0; ch < c; ++ch) {
      for (int oy = 0; oy < ho; ++oy) {
        for (int ox = 0; ox < wo; ++ox) {
          double acc = max ? -std::numeric_limits<double>::infinity() : 0.0;
          for (int ky = 0; ky < k; ++ky) {
            for (int kx = 0; kx < k; ++kx) {
              const double v = x((ch * h + oy * stride + ky) * w + ox * stride + kx, n);
              acc = max ? std::max(acc, v) : acc + v;
            }
          }
          y((ch * ho + oy) * wo + ox, n) = max ? acc : acc / (k * k);
        }
      }
    }
  }
  return y;
}

}  // namespace

// ---- Conv2D ----------------------------------------------------------------------------------

TEST_CASE("Conv2D names its tensors in PyTorch's layout") {
  nn::Conv2D<3, 6, 5>::layer<float, Shape<3, 32, 32>> conv;
  auto p = conv.parameters();
  REQUIRE(p.size() == 2);
  CHECK(p[0].name == "weight");
  CHECK(p[0].shape == std::vector<Index>{6, 3, 5, 5});
  CHECK(p[0].size() == 6 * 3 * 5 * 5);
  CHECK(p[1].name == "bias");
  CHECK(p[1].shape == std::vector<Index>{6});
  CHECK(p[1].role == ParameterRole::bias);
  nn::Conv2D<3, 6, 5, nn::NoBias>::layer<float, Shape<3, 32, 32>> no_bias;
  CHECK(no_bias.parameters().size() == 1);
}

TEST_CASE("Conv2D initialize uses fan_in = Cin K K and zeroes the bias") {
  Rng rng = make_stream(1, "conv-init");
  nn::Conv2D<4, 8, 3>::layer<double, Shape<4, 9, 9>> conv;
  conv.parameters()[1].value.setOnes();
  conv.initialize(nn::init::kaiming_uniform, rng);
  const auto& w = conv.parameters()[0].value;
  const double bound = std::sqrt(6.0 / (4 * 3 * 3));
  CHECK(w.cwiseAbs().maxCoeff() <= bound);
  CHECK(w.cwiseAbs().maxCoeff() > 0.8 * bound);  // uses the whole range
  CHECK(conv.parameters()[1].value.isZero());
}

using ConvLeNet1 = Case<nn::Conv2D<1, 6, 5, nn::Pad<2>>, Shape<1, 28, 28>>;
using ConvPlain = Case<nn::Conv2D<3, 4, 3>, Shape<3, 7, 6>>;
using ConvStridePad = Case<nn::Conv2D<2, 3, 3, nn::Stride<2>, nn::Pad<1>>, Shape<2, 7, 8>>;
using ConvStrideNoBias = Case<nn::Conv2D<2, 3, 4, nn::NoBias, nn::Stride<3>>, Shape<2, 9, 10>>;
using ConvWidePad = Case<nn::Conv2D<1, 2, 3, nn::Pad<3>>, Shape<1, 4, 5>>;
using ConvPointwise = Case<nn::Conv2D<3, 5, 1>, Shape<3, 4, 5>>;
using ConvPointwiseStride = Case<nn::Conv2D<2, 2, 1, nn::Stride<2>, nn::NoBias>, Shape<2, 5, 5>>;
using ConvKernelIsImage = Case<nn::Conv2D<2, 3, 4>, Shape<2, 4, 4>>;

// Conv2D computes forward by one of three kernels, chosen from the shapes at compile time
// (nn::detail::conv_kernel): DirectChannels (Cout 1 to 4 times 32 bytes of values: 4, 8, 12 or
// 16 doubles), DirectRows (stride 1), or im2col + GEMM (1x1 convolutions with stride 1 and no
// padding, and layers too large for the direct kernels). Backward is the same for all, but after
// a direct forward it unfolds every sample itself. Each kernel, at batch 1 and 3, forward then
// backward (output, input gradient, weight and bias gradients) against the direct loops; then a
// copy of the layer and the layer after release_workspaces (both without scratch memory, so the
// zero border and the slack of the padded copy are allocated again) give the same forward.
template <class L>
struct conv_kernel_of;
template <class T, ImageShape In, int Cout, int K, int S, int P, bool Bias>
struct conv_kernel_of<nn::Conv2DLayer<T, In, Cout, K, S, P, Bias>> {
  // As Conv2DLayer decides (a 1x1 convolution with stride 1 and no padding multiplies its input).
  static constexpr nn::detail::ConvKernel value =
      K == 1 && S == 1 && P == 0
          ? nn::detail::ConvKernel::gemm
          : nn::detail::conv_kernel<T>(In::dims[0], Cout, K, S, In::dims[1] + 2 * P,
                                       In::dims[2] + 2 * P);
};
template <class C>
constexpr nn::detail::ConvKernel kernel_of =
    conv_kernel_of<typename C::spec::template layer<double, typename C::input>>::value;

// DirectRows: one input channel with padding (LeNet-5's first convolution, 6 outputs); several
// channels without padding or bias, with padding, with padding as wide as the kernel, and with a
// single output pixel.
using RowsLeNet1 = ConvLeNet1;
using RowsNoPadNoBias = Case<nn::Conv2D<3, 5, 3, nn::NoBias>, Shape<3, 7, 9>>;
using RowsPad = Case<nn::Conv2D<2, 7, 3, nn::Pad<1>>, Shape<2, 5, 6>>;
using RowsWidePad = Case<nn::Conv2D<2, 3, 2, nn::Pad<2>>, Shape<2, 3, 4>>;
using RowsOnePixel = Case<nn::Conv2D<2, 3, 4>, Shape<2, 4, 4>>;
// DirectChannels: no padding (LeNet-5's second convolution, 16 outputs), padding, stride without
// bias, and fewer pixels than a block.
using ChannelsLeNet2 = Case<nn::Conv2D<6, 16, 5>, Shape<6, 14, 14>>;
using ChannelsPad = Case<nn::Conv2D<2, 8, 3, nn::Pad<1>>, Shape<2, 6, 7>>;
using ChannelsStrideNoBias =
    Case<nn::Conv2D<3, 4, 3, nn::Stride<2>, nn::Pad<1>, nn::NoBias>, Shape<3, 9, 8>>;
using ChannelsOnePixel = Case<nn::Conv2D<2, 12, 4>, Shape<2, 4, 4>>;
// im2col + GEMM: stride 2 with 3 outputs, a 1x1 convolution, and 20 outputs over a sample too
// large for DirectRows (132 x 132 doubles padded, more than 128 KiB).
using GemmStride = ConvStridePad;
using GemmPointwise = ConvPointwise;
using GemmLarge = Case<nn::Conv2D<1, 20, 3, nn::Pad<1>>, Shape<1, 130, 130>>;

static_assert(kernel_of<RowsLeNet1> == nn::detail::ConvKernel::rows);
static_assert(kernel_of<RowsNoPadNoBias> == nn::detail::ConvKernel::rows);
static_assert(kernel_of<RowsPad> == nn::detail::ConvKernel::rows);
static_assert(kernel_of<RowsWidePad> == nn::detail::ConvKernel::rows);
static_assert(kernel_of<RowsOnePixel> == nn::detail::ConvKernel::rows);
static_assert(kernel_of<ChannelsLeNet2> == nn::detail::ConvKernel::channels);
static_assert(kernel_of<ChannelsPad> == nn::detail::ConvKernel::channels);
static_assert(kernel_of<ChannelsStrideNoBias> == nn::detail::ConvKernel::channels);
static_assert(kernel_of<ChannelsOnePixel> == nn::detail::ConvKernel::channels);
static_assert(kernel_of<GemmStride> == nn::detail::ConvKernel::gemm);
static_assert(kernel_of<GemmPointwise> == nn::detail::ConvKernel::gemm);
static_assert(kernel_of<GemmLarge> == nn::detail::ConvKernel::gemm);
// LeNet-5 in float takes the same kernels.
static_assert(nn::detail::conv_kernel<float>(1, 6, 5, 1, 32, 32) == nn::detail::ConvKernel::rows);
static_assert(nn::detail::conv_kernel<float>(6, 16, 5, 1, 14, 14) ==
              nn::detail::ConvKernel::channels);

TEST_CASE_TEMPLATE(
    "Conv2D forward equals a direct convolution and its gradients match finite "
    "differences",
    C, ConvLeNet1, ConvPlain, ConvStridePad, ConvStrideNoBias, ConvWidePad, ConvPointwise,
    ConvPointwiseStride, ConvKernelIsImage, RowsNoPadNoBias, RowsWidePad, ChannelsPad,
    ChannelsStrideNoBias, ChannelsOnePixel) {
  using Spec = typename C::spec;
  using In = typename C::input;
  Rng rng = make_stream(21, "conv");
  typename Spec::template layer<double, In> conv;
  randomize(conv, rng);
  const Index batch = 3;
  const Matrix<double> x = test::random_batch(In::size, batch, rng);

  const Matrix<double> y = conv.forward(ConstBatchView<double>(x.data(), x.rows(), x.cols()));
  const Matrix<double> expected = naive_conv(conv, x, Spec::stride, Spec::padding);
  REQUIRE(y.rows() == expected.rows());
  CHECK((y - expected).cwiseAbs().maxCoeff() < 1e-12 * (1 + expected.cwiseAbs().maxCoeff()));

  const auto r = test::gradient_check(conv, x, rng);
  CHECK(r.input_error < 1e-6);
  REQUIRE(r.parameter_errors.size() == (Spec::has_bias ? 2U : 1U));
  for (std::size_t i = 0; i < r.parameter_errors.size(); ++i) {
    INFO(r.names[i]);
    CHECK(r.parameter_errors[i] < 1e-6);
  }

  // backward_parameters accumulates the same parameter gradients as backward.
  const Matrix<double> dy =
      test::random_batch(Spec::template layer<double, In>::output_shape::size, batch, rng);
  const ConstBatchView<double> dyv(dy.data(), dy.rows(), dy.cols());
  conv.forward(ConstBatchView<double>(x.data(), x.rows(), x.cols()));
  for (auto& p : conv.parameters())
    p.zero_grad();
  conv.backward(dyv);
  std::vector<Vector<double>> full;
  for (auto& p : conv.parameters())
    full.push_back(p.grad);
  for (auto& p : conv.parameters())
    p.zero_grad();
  conv.backward_parameters(dyv);
  for (std::size_t i = 0; i < full.size(); ++i) {
    CHECK((conv.parameters()[i].grad - full[i]).norm() <= 1e-12 * (1 + full[i].norm()));
  }
}

TEST_CASE("Conv2D batches: sample results do not depend on the batch") {
  Rng rng = make_stream(22, "conv-batch");
  nn::Conv2D<2, 3, 3, nn::Pad<1>>::layer<double, Shape<2, 5, 5>> conv;
  randomize(conv, rng);
  const Matrix<double> x = test::random_batch(50, 4, rng);
  const Matrix<double> batched = conv.forward(ConstBatchView<double>(x.data(), 50, 4));
  for (Index n = 0; n < 4; ++n) {
    const Matrix<double> single = conv.forward(ConstBatchView<double>(x.col(n).data(), 50, 1));
    CHECK((single.col(0) - batched.col(n)).norm() < 1e-12);
  }
}

// Conv2D keeps one sample's unfolded patches (colT_n) and unfolds the others again in backward,
// last sample first; im2col reads a zero-padded copy when P > 0 and the sample itself when P = 0,
// with contiguous row copies when S = 1; with Cout = 6 or 7 the weight gradient is computed with
// 8 columns (two or one zero). Every path, against the direct weight gradient, whatever the
// order of calls: backward, backward_parameters again, then a forward at another batch size.
using ConvSevenOut = Case<nn::Conv2D<2, 7, 3, nn::Pad<1>>, Shape<2, 5, 6>>;
using ConvPointwiseSix = Case<nn::Conv2D<3, 6, 1>, Shape<3, 4, 5>>;
TEST_CASE_TEMPLATE("Conv2D weight gradients match a direct sum in any order of calls", C,
                   ConvLeNet1, ConvPlain, ConvStridePad, ConvStrideNoBias, ConvWidePad,
                   ConvPointwise, ConvPointwiseStride, ConvSevenOut, ConvPointwiseSix) {
  using Spec = typename C::spec;
  using In = typename C::input;
  using L = typename Spec::template layer<double, In>;
  Rng rng = make_stream(25, "conv-order");
  L conv;
  randomize(conv, rng);
  const int k = static_cast<int>(conv.parameters()[0].shape[2]);
  auto weight_grad = [&] { return conv.parameters()[0].grad; };
  auto zero = [&] {
    for (auto& p : conv.parameters())
      p.zero_grad();
  };

  const Matrix<double> x = test::random_batch(In::size, 4, rng);
  const Matrix<double> dy = test::random_batch(L::output_shape::size, 4, rng);
  const Vector<double> expected = naive_weight_gradient<L>(x, dy, k, Spec::stride, Spec::padding);
  const double tolerance = 1e-12 * (1 + expected.norm());
  conv.forward(ConstBatchView<double>(x.data(), x.rows(), x.cols()));
  zero();
  conv.backward(ConstBatchView<double>(dy.data(), dy.rows(), dy.cols()));
  CHECK((weight_grad() - expected).norm() < tolerance);
  zero();  // the kept patches are now sample 0's
  conv.backward_parameters(ConstBatchView<double>(dy.data(), dy.rows(), dy.cols()));
  CHECK((weight_grad() - expected).norm() < tolerance);

  const Matrix<double> x2 = test::random_batch(In::size, 2, rng);
  const Matrix<double> dy2 = test::random_batch(L::output_shape::size, 2, rng);
  conv.forward(ConstBatchView<double>(x2.data(), x2.rows(), x2.cols()));
  zero();
  conv.backward_parameters(ConstBatchView<double>(dy2.data(), dy2.rows(), dy2.cols()));
  const Vector<double> expected2 =
      naive_weight_gradient<L>(x2, dy2, k, Spec::stride, Spec::padding);
  CHECK((weight_grad() - expected2).norm() < 1e-12 * (1 + expected2.norm()));
}

TEST_CASE("Conv2D in float agrees with double") {
  Rng rng = make_stream(23, "conv-float");
  nn::Conv2D<6, 16, 5>::layer<double, Shape<6, 14, 14>> conv_d;
  nn::Conv2D<6, 16, 5>::layer<float, Shape<6, 14, 14>> conv_f;
  conv_d.initialize(nn::init::kaiming_normal, rng);
  randomize(conv_d, rng, 0.1);
  for (std::size_t i = 0; i < 2; ++i) {
    conv_f.parameters()[i].value = conv_d.parameters()[i].value.cast<float>();
  }
  const Matrix<double> x = test::random_batch(6 * 14 * 14, 2, rng);
  const Matrix<float> xf = x.cast<float>();
  const Matrix<double> yd = conv_d.forward(ConstBatchView<double>(x.data(), x.rows(), 2));
  const Matrix<float> yf = conv_f.forward(ConstBatchView<float>(xf.data(), xf.rows(), 2));
  CHECK((yf.cast<double>() - yd).cwiseAbs().maxCoeff() < 1e-4 * (1 + yd.cwiseAbs().maxCoeff()));
}

TEST_CASE_TEMPLATE("Conv2D forward kernels: forward then backward equal the direct loops", C,
                   RowsLeNet1, RowsNoPadNoBias, RowsPad, RowsWidePad, RowsOnePixel, ChannelsLeNet2,
                   ChannelsPad, ChannelsStrideNoBias, ChannelsOnePixel, GemmStride, GemmPointwise,
                   GemmLarge) {
  using Spec = typename C::spec;
  using In = typename C::input;
  using L = typename Spec::template layer<double, In>;
  Rng rng = make_stream(26, "conv-kernels");
  L conv;
  randomize(conv, rng);
  const int k = static_cast<int>(conv.parameters()[0].shape[2]);
  for (const Index batch : {Index{1}, Index{3}}) {
    INFO("batch " << batch);
    const Matrix<double> x = test::random_batch(In::size, batch, rng);
    const Matrix<double> dy = test::random_batch(L::output_shape::size, batch, rng);
    const ConstBatchView<double> xv(x.data(), x.rows(), x.cols());
    const ConstBatchView<double> dyv(dy.data(), dy.rows(), dy.cols());
    for (auto& p : conv.parameters())
      p.zero_grad();

    const Matrix<double> y = conv.forward(xv);
    const Matrix<double> expected = naive_conv(conv, x, Spec::stride, Spec::padding);
    REQUIRE(y.rows() == expected.rows());
    CHECK((y - expected).cwiseAbs().maxCoeff() < 1e-12 * (1 + expected.cwiseAbs().maxCoeff()));

    const Matrix<double> dx = conv.backward(dyv);
    const Matrix<double> dx_expected = naive_input_gradient(conv, dy, Spec::stride, Spec::padding);
    CHECK((dx - dx_expected).norm() < 1e-12 * (1 + dx_expected.norm()));
    const Vector<double> dw = naive_weight_gradient<L>(x, dy, k, Spec::stride, Spec::padding);
    CHECK((conv.parameters()[0].grad - dw).norm() < 1e-12 * (1 + dw.norm()));
    if constexpr (L::has_bias) {
      constexpr Index cout = L::output_shape::dims[0];
      constexpr Index pixels = L::output_shape::size / cout;
      Vector<double> db = Vector<double>::Zero(cout);
      for (Index n = 0; n < batch; ++n) {
        for (Index o = 0; o < cout; ++o)
          db[o] += dy.col(n).segment(o * pixels, pixels).sum();
      }
      CHECK((conv.parameters()[1].grad - db).norm() < 1e-12 * (1 + db.norm()));
    }

    L copy = conv;
    CHECK(nn::workspace_bytes(copy) == 0);
    CHECK(Matrix<double>(copy.forward(xv)) == y);
    nn::release_workspaces(conv);
    CHECK(nn::workspace_bytes(conv) == 0);
    CHECK(Matrix<double>(conv.forward(xv)) == y);
    const Matrix<double> dx_again = conv.backward(dyv);
    CHECK(dx_again == dx);
  }
}

// ---- pooling ---------------------------------------------------------------------------------

using MaxPool2 = Case<nn::MaxPool2D<2>, Shape<3, 8, 6>>;
using MaxPool2Odd = Case<nn::MaxPool2D<2>, Shape<2, 7, 9>>;
using MaxPoolOverlap = Case<nn::MaxPool2D<3, 2>, Shape<2, 7, 8>>;
using MaxPoolStride1 = Case<nn::MaxPool2D<3, 1>, Shape<1, 5, 6>>;
using AvgPool2 = Case<nn::AvgPool2D<2>, Shape<3, 8, 6>>;
using AvgPoolOverlap = Case<nn::AvgPool2D<3, 2>, Shape<2, 7, 8>>;
using AvgPoolStride3 = Case<nn::AvgPool2D<2, 3>, Shape<2, 8, 7>>;

template <class Spec>
inline constexpr bool is_max_pool = false;
template <int K, int S>
inline constexpr bool is_max_pool<nn::MaxPool2D<K, S>> = true;
template <class Spec>
struct pool_params;
template <template <int, int> class P, int K, int S>
struct pool_params<P<K, S>> {
  static constexpr int kernel = K;
  static constexpr int stride = S;
};

TEST_CASE_TEMPLATE(
    "pooling forward equals a direct loop and its gradient matches finite "
    "differences",
    C, MaxPool2, MaxPool2Odd, MaxPoolOverlap, MaxPoolStride1, AvgPool2, AvgPoolOverlap,
    AvgPoolStride3) {
  using Spec = typename C::spec;
  using In = typename C::input;
  using L = typename Spec::template layer<double, In>;
  Rng rng = make_stream(31, "pool");
  L pool;
  const Matrix<double> x = test::random_batch(In::size, 3, rng);
  const Matrix<double> y = pool.forward(ConstBatchView<double>(x.data(), x.rows(), x.cols()));
  const Matrix<double> expected = naive_pool<In, typename L::output_shape>(
      x, pool_params<Spec>::kernel, pool_params<Spec>::stride, is_max_pool<Spec>);
  CHECK((y - expected).cwiseAbs().maxCoeff() < 1e-14);
  // Normal inputs have no ties within 1e-6 in a window (almost surely), so max is smooth here.
  const auto r = test::gradient_check(pool, x, rng);
  CHECK(r.input_error < 1e-6);
  CHECK(r.parameter_errors.empty());
}

TEST_CASE("MaxPool2D: the first maximum of a window takes the gradient; NaN propagates") {
  nn::MaxPool2D<2>::layer<double, Shape<1, 2, 4>> pool;
  Matrix<double> x(8, 1);
  // window 0: all equal -> index 0; window 1: maximum 5 twice (row-major order: (0,3) first)
  x << 1, 1, 2, 5,  //
      1, 1, 5, 3;
  const Matrix<double> y = pool.forward(ConstBatchView<double>(x.data(), 8, 1));
  CHECK(y(0) == 1.0);
  CHECK(y(1) == 5.0);
  Matrix<double> dy(2, 1);
  dy << 10, 20;
  const Matrix<double> dx = pool.backward(ConstBatchView<double>(dy.data(), 2, 1));
  Matrix<double> expected(8, 1);
  expected << 10, 0, 0, 20,  //
      0, 0, 0, 0;
  CHECK(dx == expected);

  x(5) = std::numeric_limits<double>::quiet_NaN();
  const Matrix<double> y2 = pool.forward(ConstBatchView<double>(x.data(), 8, 1));
  CHECK(std::isnan(y2(0)));
  CHECK(y2(1) == 5.0);
}

// MaxPool2D has two backward paths: windows that tile the input (S = K, H and W multiples of K)
// write each input gradient once; otherwise dx is zeroed and each dy added at its maximum. Both,
// and forward, against a sequential scan of each window in row-major order (a value replaces the
// best so far when greater or NaN: the first maximum wins ties, the last NaN wins), on inputs
// full of ties and NaNs.
using MaxPoolTiles = Case<nn::MaxPool2D<2>, Shape<3, 8, 6>>;
using MaxPoolTiles3 = Case<nn::MaxPool2D<3>, Shape<2, 9, 6>>;
using MaxPoolGap = Case<nn::MaxPool2D<2, 3>, Shape<2, 8, 7>>;
TEST_CASE_TEMPLATE("MaxPool2D equals a sequential scan with ties and NaNs", C, MaxPoolTiles,
                   MaxPoolTiles3, MaxPool2Odd, MaxPoolOverlap, MaxPoolStride1, MaxPoolGap) {
  using Spec = typename C::spec;
  using In = typename C::input;
  using L = typename Spec::template layer<double, In>;
  using Out = typename L::output_shape;
  constexpr int k = pool_params<Spec>::kernel, stride = pool_params<Spec>::stride;
  constexpr int ch = In::dims[0], h = In::dims[1], w = In::dims[2];
  constexpr int ho = Out::dims[1], wo = Out::dims[2];
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Rng rng = make_stream(32, "pool-ties");
  const Index batch = 3;
  Matrix<double> x(In::size, batch);
  for (Index i = 0; i < x.size(); ++i) {
    const auto draw = uniform_index(rng, 20);
    x(i) = draw == 0 ? nan : static_cast<double>(draw % 3);  // 0, 1, 2 and 5 % NaN
  }
  const Matrix<double> dy = test::random_batch(Out::size, batch, rng);

  Matrix<double> y_expected(Out::size, batch);
  Matrix<double> dx_expected = Matrix<double>::Zero(In::size, batch);
  for (Index n = 0; n < batch; ++n) {
    for (int c = 0; c < ch; ++c) {
      for (int oy = 0; oy < ho; ++oy) {
        for (int ox = 0; ox < wo; ++ox) {
          Index best = (c * h + oy * stride) * w + ox * stride;
          for (int ky = 0; ky < k; ++ky) {
            for (int kx = 0; kx < k; ++kx) {
              const Index i = (c * h + oy * stride + ky) * w + ox * stride + kx;
              if (x(i, n) > x(best, n) || std::isnan(x(i, n)))
                best = i;
            }
          }
          const Index o = (c * ho + oy) * wo + ox;
          y_expected(o, n) = x(best, n);
          dx_expected(best, n) += dy(o, n);
        }
      }
    }
  }

  L pool;
  const Matrix<double> y = pool.forward(ConstBatchView<double>(x.data(), x.rows(), x.cols()));
  const Matrix<double> dx = pool.backward(ConstBatchView<double>(dy.data(), dy.rows(), batch));
  REQUIRE(y.rows() == Out::size);
  CHECK(y_expected.hasNaN());  // the draw did produce NaN maxima
  for (Index i = 0; i < y.size(); ++i) {
    INFO("output " << i);
    CHECK(std::isnan(y(i)) == std::isnan(y_expected(i)));
    if (!std::isnan(y_expected(i)))
      CHECK(y(i) == y_expected(i));
  }
  CHECK(dx == dx_expected);
}

TEST_CASE("overlapping max windows add their gradients") {
  nn::MaxPool2D<2, 1>::layer<double, Shape<1, 2, 3>> pool;
  Matrix<double> x(6, 1);
  x << 0, 9, 0,  //
      0, 0, 0;   // 9 is the maximum of both windows
  pool.forward(ConstBatchView<double>(x.data(), 6, 1));
  Matrix<double> dy(2, 1);
  dy << 1, 2;
  const Matrix<double> dx = pool.backward(ConstBatchView<double>(dy.data(), 2, 1));
  CHECK(dx(1) == 3.0);
  CHECK(dx.sum() == 3.0);
}

TEST_CASE("LeNet-5 features compose in float: shapes and a forward/backward pass") {
  using Net = nn::Sequential<nn::Input<1, 28, 28>, nn::Conv2D<1, 6, 5, nn::Pad<2>>, nn::ReLU,
                             nn::MaxPool2D<2>, nn::Conv2D<6, 16, 5>, nn::ReLU, nn::MaxPool2D<2>,
                             nn::Flatten, nn::Dense<400, 120>, nn::ReLU, nn::Dense<120, 84>,
                             nn::ReLU, nn::Dense<84, 10>>;
  static_assert(std::is_same_v<Net::layer_type<0>::output_shape, Shape<6, 28, 28>>);
  static_assert(std::is_same_v<Net::layer_type<2>::output_shape, Shape<6, 14, 14>>);
  static_assert(std::is_same_v<Net::layer_type<3>::output_shape, Shape<16, 10, 10>>);
  static_assert(std::is_same_v<Net::layer_type<5>::output_shape, Shape<16, 5, 5>>);
  static_assert(std::is_same_v<Net::output_shape, Shape<10>>);
  Rng rng = make_stream(41, "lenet-float");
  Net net{nn::init::kaiming_normal, rng};
  CHECK(net.parameter_count() ==
        6 * 25 + 6 + 16 * 6 * 25 + 16 + 400 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10);
  std::vector<std::string> names;
  net.for_each_parameter(
      [&](std::string_view name, const Parameter<float>&) { names.emplace_back(name); });
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias", "7.weight",
                                          "7.bias", "9.weight", "9.bias", "11.weight", "11.bias"});
  const Matrix<float> x = Matrix<float>::Random(784, 5);
  const Matrix<float> y = net.forward(x);
  CHECK(y.rows() == 10);
  CHECK(y.cols() == 5);
  CHECK(y.allFinite());
  const Matrix<float> dy = Matrix<float>::Ones(10, 5);
  net.backward_parameters(ConstBatchView<float>(dy.data(), 10, 5));
  net.for_each_parameter(
      [&](std::string_view, const Parameter<float>& p) { CHECK(p.grad.allFinite()); });
  CHECK(net.layer<0>().parameters()[0].grad.norm() > 0);
}

#ifdef EIGEN_RUNTIME_NO_MALLOC
// Eigen's own allocation hook (no operator new replacement here): the workspaces are reserved for
// batch 1 in the constructors, and the GEMMs of these sizes block on the stack.
TEST_CASE_TEMPLATE("batch-1 conv and pool forward allocate nothing after construction", T, float,
                   double) {
  typename nn::Conv2D<1, 6, 5, nn::Pad<2>>::template layer<T, Shape<1, 28, 28>> conv1;
  typename nn::MaxPool2D<2>::template layer<T, Shape<6, 28, 28>> pool1;
  typename nn::Conv2D<6, 16, 5>::template layer<T, Shape<6, 14, 14>> conv2;
  typename nn::AvgPool2D<2>::template layer<T, Shape<16, 10, 10>> pool2;
  Rng rng = make_stream(24, "conv-no-malloc");
  randomize(conv1, rng);
  randomize(conv2, rng);
  const Matrix<T> x = test::random_batch(784, 1, rng).cast<T>();
  Eigen::internal::set_is_malloc_allowed(false);  // Eigen asserts on any heap allocation
  const ConstBatchView<T> y = pool2.forward(
      conv2.forward(pool1.forward(conv1.forward(ConstBatchView<T>(x.data(), 784, 1)))));
  const T checksum = y.sum();
  Eigen::internal::set_is_malloc_allowed(true);
  CHECK(std::isfinite(checksum));
}
#endif
