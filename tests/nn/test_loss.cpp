// Losses: values against their definitions, gradients against finite differences, bad input.
#include <edgescale/nn/loss.hpp>

#include "nn/gradcheck.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

using namespace edgescale;

static_assert(nn::TrainingLoss<nn::SoftmaxCrossEntropy, float>);
static_assert(nn::TrainingLoss<nn::MeanSquaredError, double>);
static_assert(nn::TrainingLoss<nn::TemperedSoftmaxCrossEntropy, float>);
static_assert(std::is_same_v<nn::SoftmaxCrossEntropy::target_type<float>, nn::Labels>);
static_assert(std::is_same_v<nn::MeanSquaredError::target_type<double>, ConstBatchView<double>>);

TEST_CASE("losses: values and gradients against finite differences") {
  Rng rng = make_stream(24, "loss");
  Matrix<double> z = test::random_batch(5, 4, rng);
  z(0, 0) = 800;  // a huge logit must not overflow
  const std::vector<std::int32_t> y{0, 3, 4, 1};
  Matrix<double> t = test::random_batch(5, 4, rng);
  nn::SoftmaxCrossEntropy ce;
  nn::MeanSquaredError mse;
  Matrix<double> g(5, 4);
  BatchView<double> gv(g.data(), 5, 4);
  const ConstBatchView<double> tv(t.data(), 5, 4);
  auto view = [](const Matrix<double>& m) {
    return ConstBatchView<double>(m.data(), m.rows(), m.cols());
  };

  // CE value by its definition (log-sum-exp written independently)
  double expected = 0;
  for (Index n = 0; n < 4; ++n) {
    const double m = z.col(n).maxCoeff();
    double s = 0;
    for (Index k = 0; k < 5; ++k)
      s += std::exp(z(k, n) - m);
    expected += m + std::log(s) - z(y[static_cast<std::size_t>(n)], n);
  }
  CHECK(ce.value(view(z), nn::Labels(y)) == doctest::Approx(expected / 4));
  CHECK(std::isfinite(ce.value(view(z), nn::Labels(y))));

  for (int which = 0; which < 2; ++which) {
    z(0, 0) = 0.3;
    auto value = [&](const Matrix<double>& zz) {
      return which == 0 ? ce.value(view(zz), nn::Labels(y)) : mse.value(view(zz), tv);
    };
    const double v = which == 0 ? ce.value_and_gradient(view(z), nn::Labels(y), gv)
                                : mse.value_and_gradient(view(z), tv, gv);
    CHECK(v == doctest::Approx(value(z)));
    Vector<double> numeric(z.size());
    Vector<double> analytic = Eigen::Map<Vector<double>>(g.data(), g.size());
    for (Index i = 0; i < z.size(); ++i) {
      Matrix<double> zp = z, zm = z;
      zp(i) += 1e-6;
      zm(i) -= 1e-6;
      numeric[i] = (value(zp) - value(zm)) / 2e-6;
    }
    CHECK(test::relative_error(analytic, numeric) < 1e-6);
  }
  // MSE is PyTorch's mean over every element
  CHECK(mse.value(view(z), tv) == doctest::Approx((z - t).squaredNorm() / 20));
}

TEST_CASE("tempered cross-entropy: CE of z / tau, its gradient against finite differences") {
  Rng rng = make_stream(25, "loss");
  const Matrix<double> z = test::random_batch(5, 3, rng);
  const std::vector<std::int32_t> y{2, 0, 4};
  auto view = [](const Matrix<double>& m) {
    return ConstBatchView<double>(m.data(), m.rows(), m.cols());
  };
  nn::SoftmaxCrossEntropy ce;
  for (const double tau : {1.0, 0.1, 3.0}) {
    CAPTURE(tau);
    const nn::TemperedSoftmaxCrossEntropy tempered{.temperature = tau};
    const Matrix<double> scaled = z / tau;
    CHECK(tempered.value(view(z), nn::Labels(y)) ==
          doctest::Approx(ce.value(view(scaled), nn::Labels(y))).epsilon(1e-13));
    Matrix<double> g(5, 3);
    BatchView<double> gv(g.data(), 5, 3);
    tempered.value_and_gradient(view(z), nn::Labels(y), gv);
    Vector<double> numeric(z.size());
    for (Index i = 0; i < z.size(); ++i) {
      Matrix<double> zp = z, zm = z;
      zp(i) += 1e-6;
      zm(i) -= 1e-6;
      numeric[i] =
          (tempered.value(view(zp), nn::Labels(y)) - tempered.value(view(zm), nn::Labels(y))) /
          2e-6;
    }
    CHECK(test::relative_error(Eigen::Map<Vector<double>>(g.data(), g.size()), numeric) < 1e-6);
  }
  CHECK_THROWS_AS((nn::TemperedSoftmaxCrossEntropy{.temperature = 0}.value(view(z), nn::Labels(y))),
                  argument_error);
}

TEST_CASE("losses reject bad labels and shapes") {
  Matrix<double> z = Matrix<double>::Zero(3, 2);
  const ConstBatchView<double> zv(z.data(), 3, 2);
  nn::SoftmaxCrossEntropy ce;
  const std::vector<std::int32_t> bad{0, 3};
  const std::vector<std::int32_t> negative{-1, 0};
  const std::vector<std::int32_t> short_labels{0};
  CHECK_THROWS_AS(ce.value(zv, nn::Labels(bad)), argument_error);
  CHECK_THROWS_AS(ce.value(zv, nn::Labels(negative)), argument_error);
  CHECK_THROWS_AS(ce.value(zv, nn::Labels(short_labels)), shape_error);
  Matrix<double> t = Matrix<double>::Zero(2, 2);
  CHECK_THROWS_AS(nn::MeanSquaredError{}.value(zv, ConstBatchView<double>(t.data(), 2, 2)),
                  shape_error);
}
