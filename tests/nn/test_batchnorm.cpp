#include <edgescale/core/error.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/batchnorm.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/sequential.hpp>

#include "nn/gradcheck.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace edgescale;

static_assert(nn::AcceptsInput<nn::BatchNorm, float, Shape<10>>);
static_assert(nn::AcceptsInput<nn::BatchNorm, float, Shape<3, 4, 5>>);
static_assert(!nn::AcceptsInput<nn::BatchNorm, float, Shape<3, 4>>);
static_assert(
    std::is_same_v<nn::BatchNorm::layer<float, Shape<3, 4, 5>>::output_shape, Shape<3, 4, 5>>);
static_assert(nn::HasTrainingMode<nn::BatchNorm::layer<float, Shape<3>>>);
static_assert(nn::HasParameterOnlyBackward<nn::BatchNorm::layer<float, Shape<3>>>);

namespace {

/// Per-channel statistics over batch (and H x W) by the textbook formulas; `channels` groups of
/// `spatial` consecutive values per sample.
struct Reference {
  std::vector<double> mean, biased, unbiased;
};

Reference statistics(const Matrix<double>& x, int channels, int spatial) {
  Reference r;
  const double m = static_cast<double>(x.cols()) * spatial;
  for (int c = 0; c < channels; ++c) {
    double s = 0;
    for (Index n = 0; n < x.cols(); ++n)
      for (int i = 0; i < spatial; ++i)
        s += x(c * spatial + i, n);
    const double mean = s / m;
    double ss = 0;
    for (Index n = 0; n < x.cols(); ++n)
      for (int i = 0; i < spatial; ++i)
        ss += std::pow(x(c * spatial + i, n) - mean, 2);
    r.mean.push_back(mean);
    r.biased.push_back(ss / m);
    r.unbiased.push_back(ss / (m - 1));
  }
  return r;
}

template <class L>
void randomize_affine(L& bn, Rng& rng) {
  auto p = bn.parameters();
  for (Index c = 0; c < p[0].size(); ++c) {
    p[0].value[c] = 0.5 + uniform01(rng);        // gamma
    p[1].value[c] = standard_normal(rng);        // beta
    p[2].value[c] = 0.3 * standard_normal(rng);  // running_mean
    p[3].value[c] = 0.5 + 2.0 * uniform01(rng);  // running_var
  }
}

template <class S>
void check_forward(int channels, int spatial, Index batch) {
  Rng rng = make_stream(51, "bn-forward");
  nn::BatchNormLayer<double, S> bn;
  randomize_affine(bn, rng);
  auto p = bn.parameters();
  const Vector<double> gamma = p[0].value, beta = p[1].value;
  const Vector<double> rm0 = p[2].value, rv0 = p[3].value;

  Matrix<double> x = test::random_batch(S::size, batch, rng);
  x.array() = 2.0 * x.array() + 1.5;
  const Reference ref = statistics(x, channels, spatial);

  // training: batch statistics, biased variance
  const Matrix<double> y = bn.forward(ConstBatchView<double>(x.data(), x.rows(), x.cols()));
  for (int c = 0; c < channels; ++c) {
    for (Index n = 0; n < batch; ++n) {
      for (int i = 0; i < spatial; ++i) {
        const double expected =
            gamma[c] * (x(c * spatial + i, n) - ref.mean[c]) / std::sqrt(ref.biased[c] + 1e-5) +
            beta[c];
        CHECK(y(c * spatial + i, n) == doctest::Approx(expected).epsilon(1e-12));
      }
    }
    // running statistics, momentum 0.1, unbiased variance
    CHECK(p[2].value[c] == doctest::Approx(0.9 * rm0[c] + 0.1 * ref.mean[c]).epsilon(1e-13));
    CHECK(p[3].value[c] == doctest::Approx(0.9 * rv0[c] + 0.1 * ref.unbiased[c]).epsilon(1e-13));
  }

  // eval: running statistics, untouched
  bn.set_training(false);
  const Vector<double> rm = p[2].value, rv = p[3].value;
  const Matrix<double> ye = bn.forward(ConstBatchView<double>(x.data(), x.rows(), x.cols()));
  for (int c = 0; c < channels; ++c) {
    for (Index n = 0; n < batch; ++n) {
      for (int i = 0; i < spatial; ++i) {
        const double expected =
            gamma[c] * (x(c * spatial + i, n) - rm[c]) / std::sqrt(rv[c] + 1e-5) + beta[c];
        CHECK(ye(c * spatial + i, n) == doctest::Approx(expected).epsilon(1e-12));
      }
    }
  }
  CHECK(p[2].value == rm);
  CHECK(p[3].value == rv);
}

template <class S>
void check_gradients(bool training, Index batch) {
  Rng rng = make_stream(training ? 52 : 53, "bn-grad");
  nn::BatchNormLayer<double, S> bn;
  randomize_affine(bn, rng);
  bn.set_training(training);
  Matrix<double> x = test::random_batch(S::size, batch, rng);
  x.array() = 1.7 * x.array() - 0.4;
  // In training mode every forward of the check updates the running statistics, which that
  // forward does not read: the gradient is unaffected (the running stats drift, harmlessly).
  const auto r = test::gradient_check(bn, x, rng);
  CHECK(r.input_error < 1e-6);
  REQUIRE(r.names == std::vector<std::string>{"weight", "bias"});  // buffers are not trained
  CHECK(r.parameter_errors[0] < 1e-6);
  CHECK(r.parameter_errors[1] < 1e-6);
}

}  // namespace

TEST_CASE("BatchNorm tensors: gamma 1, beta 0, running statistics 0 and 1") {
  nn::BatchNormLayer<float, Shape<4, 3, 3>> bn;
  auto p = bn.parameters();
  REQUIRE(p.size() == 4);
  CHECK(p[0].name == "weight");
  CHECK(p[1].name == "bias");
  CHECK(p[2].name == "running_mean");
  CHECK(p[3].name == "running_var");
  CHECK(p[0].shape == std::vector<Index>{4});
  CHECK(p[0].role == ParameterRole::scale);  // γ: trained, never pruned
  CHECK(p[1].role == ParameterRole::bias);
  CHECK(p[2].role == ParameterRole::buffer);
  CHECK(p[3].role == ParameterRole::buffer);
  CHECK(p[0].value.isOnes());
  CHECK(p[1].value.isZero());
  CHECK(p[2].value.isZero());
  CHECK(p[3].value.isOnes());
  CHECK(bn.training());
  p[0].value.setZero();
  p[3].value.setZero();
  Rng rng = make_stream(1, "bn");
  bn.initialize(nn::init::kaiming_normal, rng);
  CHECK(p[0].value.isOnes());
  CHECK(p[3].value.isOnes());
}

TEST_CASE("BatchNorm1d forward matches the formulas (training and eval)") {
  check_forward<Shape<5>>(5, 1, 4);
}

TEST_CASE("BatchNorm2d forward matches the formulas (training and eval)") {
  check_forward<Shape<3, 4, 5>>(3, 20, 3);
}

TEST_CASE("BatchNorm2d accepts a batch of one image") {
  check_forward<Shape<2, 3, 3>>(2, 9, 1);
}

TEST_CASE("BatchNorm gradients match finite differences") {
  SUBCASE("rank 1, training") {
    check_gradients<Shape<6>>(true, 5);
  }
  SUBCASE("rank 1, eval") {
    check_gradients<Shape<6>>(false, 5);
  }
  SUBCASE("rank 1, eval, batch 1") {
    check_gradients<Shape<6>>(false, 1);
  }
  SUBCASE("rank 3, training") {
    check_gradients<Shape<3, 4, 5>>(true, 3);
  }
  SUBCASE("rank 3, training, batch 1") {
    check_gradients<Shape<2, 3, 4>>(true, 1);
  }
  SUBCASE("rank 3, eval") {
    check_gradients<Shape<3, 4, 5>>(false, 3);
  }
}

TEST_CASE("BatchNorm1d refuses a training batch of one (no NaN), accepts it in eval") {
  nn::BatchNormLayer<float, Shape<3>> bn;
  const Matrix<float> x = Matrix<float>::Random(3, 1);
  const ConstBatchView<float> xv(x.data(), 3, 1);
  CHECK_THROWS_AS(bn.forward(xv), shape_error);
  CHECK(bn.parameters()[2].value.isZero());  // running statistics untouched
  bn.set_training(false);
  const Matrix<float> y = bn.forward(xv);
  CHECK(y.allFinite());
}

TEST_CASE("BatchNorm in float accumulates accurately") {
  // Values with a large common offset: a one-pass E[x²] − E[x]² in float would lose the variance.
  nn::BatchNormLayer<float, Shape<1>> bn;
  Rng rng = make_stream(54, "bn-float");
  Matrix<float> x(1, 1000);
  for (Index i = 0; i < x.cols(); ++i)
    x(0, i) = 1000.0F + static_cast<float>(standard_normal(rng));
  const Matrix<float> y = bn.forward(ConstBatchView<float>(x.data(), 1, x.cols()));
  CHECK(std::abs(y.mean()) < 1e-3);
  const double var = (y.array().cast<double>().square()).mean();
  CHECK(var == doctest::Approx(1.0).epsilon(1e-3));
}

TEST_CASE("BatchNorm in a network: set_training reaches it, names and backward") {
  // Convolution and Dense before a BatchNorm go without bias: BatchNorm subtracts any per-channel
  // constant, so such a bias has an exactly zero gradient (checked in the next test case).
  using Net = nn::BasicSequential<double, nn::Input<2, 5, 5>, nn::Conv2D<2, 3, 3, nn::NoBias>,
                                  nn::BatchNorm, nn::ReLU, nn::Flatten,
                                  nn::Dense<27, 4, nn::NoBias>, nn::BatchNorm>;
  Rng rng = make_stream(55, "bn-net");
  Net net{nn::init::kaiming_normal, rng};
  std::vector<std::string> names;
  net.for_each_tensor(
      [&](std::string_view name, const Parameter<double>&) { names.emplace_back(name); });
  CHECK(names == std::vector<std::string>{"0.weight", "1.weight", "1.bias", "1.running_mean",
                                          "1.running_var", "4.weight", "5.weight", "5.bias",
                                          "5.running_mean", "5.running_var"});
  CHECK(net.parameter_count() == 2 * 3 * 9 + 3 + 3 + 27 * 4 + 4 + 4);
  const Matrix<double> x = test::random_batch(50, 3, rng, 1e-3);
  const auto r = test::gradient_check(net, x, rng);
  CHECK(r.worst() < 1e-6);
  net.set_training(false);
  CHECK(!net.layer<1>().training());
  CHECK(!net.layer<5>().training());
  const auto re = test::gradient_check(net, x, rng);
  CHECK(re.worst() < 1e-6);
}

TEST_CASE("a bias before a training-mode BatchNorm gets no gradient") {
  using Net =
      nn::BasicSequential<double, nn::Input<2, 4, 4>, nn::Conv2D<2, 3, 3>, nn::BatchNorm, nn::Tanh>;
  Rng rng = make_stream(56, "bn-bias");
  Net net{nn::init::kaiming_normal, rng};
  const Matrix<double> x = test::random_batch(32, 4, rng);
  const Matrix<double> dy = test::random_batch(12, 4, rng);
  net.forward(x);
  net.zero_grad();
  net.backward(ConstBatchView<double>(dy.data(), 12, 4));
  const auto& conv = net.layer<0>().parameters();
  CHECK(conv[0].grad.norm() > 1e-3);
  CHECK(conv[1].grad.norm() < 1e-12 * conv[0].grad.norm());
}
