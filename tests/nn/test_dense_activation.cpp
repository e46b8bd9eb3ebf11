#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/init.hpp>

#include "nn/gradcheck.hpp"
#include <doctest/doctest.h>

using namespace edgescale;

TEST_CASE("Dense forward is W x + b in PyTorch's weight layout") {
  nn::DenseLayer<double, 3, 2> dense;
  auto params = dense.parameters();
  // weight (out=2, in=3) row-major: [[1, 2, 3], [4, 5, 6]]; bias [10, 20]
  params[0].value << 1, 2, 3, 4, 5, 6;
  params[1].value << 10, 20;
  Matrix<double> x(3, 2);
  x << 1, 0, 1, 1, 2, -1;  // columns (1, 1, 2) and (0, 1, -1)
  const Matrix<double> y = dense.forward(ConstBatchView<double>(x.data(), 3, 2));
  CHECK(y(0, 0) == doctest::Approx(1 + 2 + 6 + 10));
  CHECK(y(1, 0) == doctest::Approx(4 + 5 + 12 + 20));
  CHECK(y(0, 1) == doctest::Approx(0 + 2 - 3 + 10));
  CHECK(y(1, 1) == doctest::Approx(0 + 5 - 6 + 20));
}

TEST_CASE("Dense gradients match finite differences") {
  Rng rng = make_stream(11, "dense");
  nn::DenseLayer<double, 7, 5> dense;
  dense.initialize(nn::init::kaiming_normal, rng);
  for (auto& p : dense.parameters()) {
    for (Index i = 0; i < p.size(); ++i)
      p.value[i] = standard_normal(rng);
  }
  const auto x = test::random_batch(7, 4, rng);
  const auto r = test::gradient_check(dense, x, rng);
  CHECK(r.input_error < 1e-6);
  REQUIRE(r.parameter_errors.size() == 2);
  CHECK(r.parameter_errors[0] < 1e-6);
  CHECK(r.parameter_errors[1] < 1e-6);
}

// At batch 1 the weight gradient is a rank-1 update (ger), at larger batches a product: both
// accumulate x dyᵀ into the gradient, sample by sample the same sums.
TEST_CASE("Dense weight gradient at batch 1 (outer product) equals the batched product") {
  Rng rng = make_stream(13, "dense-rank1");
  nn::DenseLayer<double, 9, 6> dense;
  dense.initialize(nn::init::kaiming_normal, rng);
  const auto x = test::random_batch(9, 3, rng);
  const auto dy = test::random_batch(6, 3, rng);
  dense.forward(ConstBatchView<double>(x.data(), 9, 3));
  dense.backward_parameters(ConstBatchView<double>(dy.data(), 6, 3));
  const Vector<double> batched = dense.parameters()[0].grad;
  const Vector<double> batched_bias = dense.parameters()[1].grad;
  for (auto& p : dense.parameters())
    p.zero_grad();
  for (Index n = 0; n < 3; ++n) {  // accumulates over three batch-1 steps
    dense.forward(ConstBatchView<double>(x.col(n).data(), 9, 1));
    dense.backward_parameters(ConstBatchView<double>(dy.col(n).data(), 6, 1));
  }
  CHECK((dense.parameters()[0].grad - batched).norm() < 1e-12 * (1 + batched.norm()));
  CHECK((dense.parameters()[1].grad - batched_bias).norm() < 1e-12 * (1 + batched_bias.norm()));
  // dW[o, i] = Σ_n dy[o, n] x[i, n], PyTorch's (out, in) layout
  const Matrix<double> expected = dy * x.transpose();
  for (Index o = 0; o < 6; ++o) {
    for (Index i = 0; i < 9; ++i)
      CHECK(dense.parameters()[0].grad[o * 9 + i] == doctest::Approx(expected(o, i)));
  }
}

TEST_CASE("Dense without bias has one tensor and matching gradients") {
  Rng rng = make_stream(12, "dense");
  nn::DenseLayer<double, 4, 3, false> dense;
  dense.initialize(nn::init::xavier_uniform, rng);
  const auto x = test::random_batch(4, 3, rng);
  const auto r = test::gradient_check(dense, x, rng);
  CHECK(r.parameter_errors.size() == 1);
  CHECK(r.worst() < 1e-6);
}

TEST_CASE_TEMPLATE("activation gradients match finite differences", Spec, nn::ReLU, nn::LeakyReLU<>,
                   nn::LeakyReLU<1, 5>, nn::Tanh, nn::Sigmoid) {
  Rng rng = make_stream(13, "act");
  typename Spec::template layer<double, Shape<2, 3, 4>> act;
  const auto x = test::random_batch(24, 5, rng, 1e-3);  // away from the ReLU kink
  const auto r = test::gradient_check(act, x, rng);
  CHECK(r.input_error < 1e-6);
}

TEST_CASE("activations compute their formulas") {
  Matrix<double> x(4, 1);
  x << -2, -0.5, 0.5, 3;
  const ConstBatchView<double> xv(x.data(), 4, 1);
  nn::ReLU::layer<double, Shape<4>> relu;
  nn::LeakyReLU<1, 10>::layer<double, Shape<4>> leaky;
  nn::Tanh::layer<double, Shape<4>> tanh_layer;
  nn::Sigmoid::layer<double, Shape<4>> sigmoid;
  const Matrix<double> a = relu.forward(xv);
  const Matrix<double> b = leaky.forward(xv);
  const Matrix<double> c = tanh_layer.forward(xv);
  const Matrix<double> d = sigmoid.forward(xv);
  for (Index i = 0; i < 4; ++i) {
    CHECK(a(i) == doctest::Approx(std::max(0.0, x(i))));
    CHECK(b(i) == doctest::Approx(x(i) > 0 ? x(i) : 0.1 * x(i)));
    CHECK(c(i) == doctest::Approx(std::tanh(x(i))));
    CHECK(d(i) == doctest::Approx(1.0 / (1.0 + std::exp(-x(i)))));
  }
  // Sigmoid stays finite and saturates for huge inputs.
  Matrix<double> big(2, 1);
  big << -1000, 1000;
  nn::Sigmoid::layer<double, Shape<2>> s2;
  const Matrix<double> e = s2.forward(ConstBatchView<double>(big.data(), 2, 1));
  CHECK(e(0) == 0.0);
  CHECK(e(1) == 1.0);
}

TEST_CASE("Flatten moves no data") {
  nn::Flatten::layer<float, Shape<2, 3, 4>> flat;
  static_assert(std::is_same_v<decltype(flat)::output_shape, Shape<24>>);
  Matrix<float> x = Matrix<float>::Random(24, 3);
  const ConstBatchView<float> xv(x.data(), 24, 3);
  CHECK(flat.forward(xv).data() == x.data());
  CHECK(flat.backward(xv).data() == x.data());
}
