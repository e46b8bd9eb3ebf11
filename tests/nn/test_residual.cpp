#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/batchnorm.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/residual.hpp>
#include <edgescale/nn/sequential.hpp>

#include "nn/gradcheck.hpp"
#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace edgescale;

// The convolution before BatchNorm has no bias (BatchNorm would cancel it: zero gradient).
using Block = nn::Residual<nn::Conv2D<4, 4, 3, nn::Pad<1>, nn::NoBias>, nn::BatchNorm, nn::ReLU,
                           nn::Conv2D<4, 4, 3, nn::Pad<1>>>;

static_assert(nn::AcceptsInput<Block, float, Shape<4, 6, 6>>);
static_assert(nn::AcceptsInput<Block, double, Shape<4, 6, 6>>);
static_assert(std::is_same_v<Block::layer<float, Shape<4, 6, 6>>::output_shape, Shape<4, 6, 6>>);
static_assert(!nn::AcceptsInput<Block, float, Shape<3, 6, 6>>);  // the body refuses 3 channels
static_assert(!nn::AcceptsInput<Block, float, Shape<144>>);      // nor a flat input
// The body's output must have as many values as the input.
static_assert(
    !nn::AcceptsInput<nn::Residual<nn::Conv2D<4, 8, 3, nn::Pad<1>>>, float, Shape<4, 6, 6>>);
static_assert(!nn::AcceptsInput<nn::Residual<nn::Conv2D<4, 4, 3>>, float, Shape<4, 6, 6>>);
// Only the size must match: a body may end in another shape of the same size.
static_assert(
    nn::AcceptsInput<nn::Residual<nn::Flatten, nn::Dense<12, 12>>, float, Shape<3, 2, 2>>);
static_assert(nn::Layer<Block::layer<double, Shape<4, 6, 6>>>);
static_assert(HasTensorVisitor<Block::layer<double, Shape<4, 6, 6>>>);
static_assert(nn::HasTrainingMode<Block::layer<double, Shape<4, 6, 6>>>);
static_assert(nn::HasParameterOnlyBackward<Block::layer<double, Shape<4, 6, 6>>>);

TEST_CASE("Residual adds its body's output to its input") {
  using R = nn::Residual<nn::Dense<3, 3>>;
  R::layer<double, Shape<3>> block;
  std::vector<Parameter<double>*> tensors;
  block.for_each_tensor([&](std::string_view, Parameter<double>& p) { tensors.push_back(&p); });
  REQUIRE(tensors.size() == 2);
  tensors[0]->value << 1, 0, 0, 0, 2, 0, 0, 0, 3;  // diag(1, 2, 3)
  tensors[1]->value << 1, 1, 1;
  Matrix<double> x(3, 1);
  x << 1, 2, 3;
  const Matrix<double> y = block.forward(ConstBatchView<double>(x.data(), 3, 1));
  Matrix<double> expected(3, 1);
  expected << 1 + 1 + 1, 2 + 4 + 1, 3 + 9 + 1;
  CHECK(y == expected);
}

TEST_CASE("Residual gradients match finite differences") {
  Rng rng = make_stream(61, "residual");
  SUBCASE("conv body with BatchNorm, training") {
    Block::layer<double, Shape<4, 6, 6>> block;
    block.initialize(nn::init::kaiming_normal, rng);
    const Matrix<double> x = test::random_batch(4 * 36, 3, rng);
    const auto r = test::gradient_check(block, x, rng);
    CHECK(r.input_error < 1e-6);
    CHECK(r.names == std::vector<std::string>{"body.0.weight", "body.1.weight", "body.1.bias",
                                              "body.3.weight", "body.3.bias"});
    for (std::size_t i = 0; i < r.names.size(); ++i) {
      INFO(r.names[i]);
      CHECK(r.parameter_errors[i] < 1e-6);
    }
  }
  SUBCASE("conv body, eval") {
    Block::layer<double, Shape<4, 6, 6>> block;
    block.initialize(nn::init::kaiming_normal, rng);
    block.set_training(false);
    const Matrix<double> x = test::random_batch(4 * 36, 2, rng);
    const auto r = test::gradient_check(block, x, rng);
    CHECK(r.worst() < 1e-6);
  }
  SUBCASE("dense body") {
    nn::Residual<nn::Dense<8, 8>, nn::Tanh, nn::Dense<8, 8>>::layer<double, Shape<8>> block;
    block.initialize(nn::init::xavier_normal, rng);
    const Matrix<double> x = test::random_batch(8, 4, rng);
    const auto r = test::gradient_check(block, x, rng);
    CHECK(r.worst() < 1e-6);
    CHECK(r.parameter_errors.size() == 4);
  }
}

TEST_CASE("Residual in a network: qualified names, set_training, backward_parameters") {
  using Net = nn::BasicSequential<double, nn::Input<1, 8, 8>, nn::Conv2D<1, 4, 3, nn::Pad<1>>,
                                  nn::ReLU, nn::MaxPool2D<2>, Block, nn::ReLU, nn::AvgPool2D<2>,
                                  nn::Flatten, nn::Dense<16, 3>>;
  static_assert(std::is_same_v<Net::layer_type<3>::output_shape, Shape<4, 4, 4>>);
  Rng rng = make_stream(62, "residual-net");
  Net net{nn::init::kaiming_normal, rng};
  std::vector<std::string> names;
  net.for_each_tensor(
      [&](std::string_view name, const Parameter<double>&) { names.emplace_back(name); });
  CHECK(names ==
        std::vector<std::string>{"0.weight", "0.bias", "3.body.0.weight", "3.body.1.weight",
                                 "3.body.1.bias", "3.body.1.running_mean", "3.body.1.running_var",
                                 "3.body.3.weight", "3.body.3.bias", "7.weight", "7.bias"});
  net.set_training(false);
  CHECK(!net.layer<3>().training());
  CHECK(!net.layer<3>().body().layer<1>().training());
  net.set_training(true);

  const Matrix<double> x = test::random_batch(64, 3, rng);
  const auto r = test::gradient_check(net, x, rng);
  CHECK(r.input_error < 1e-6);
  for (std::size_t i = 0; i < r.names.size(); ++i) {
    INFO(r.names[i]);
    CHECK(r.parameter_errors[i] < 1e-6);
  }

  // backward_parameters gives the gradients of backward.
  const Matrix<double> dy = test::random_batch(3, 3, rng);
  const ConstBatchView<double> dyv(dy.data(), 3, 3);
  net.forward(x);
  net.zero_grad();
  net.backward(dyv);
  std::vector<Vector<double>> full;
  net.for_each_parameter(
      [&](std::string_view, const Parameter<double>& p) { full.push_back(p.grad); });
  net.zero_grad();
  net.backward_parameters(dyv);
  std::size_t i = 0;
  net.for_each_parameter([&](std::string_view, const Parameter<double>& p) {
    CHECK((p.grad - full[i]).norm() <= 1e-12 * (1 + full[i].norm()));
    ++i;
  });
}
