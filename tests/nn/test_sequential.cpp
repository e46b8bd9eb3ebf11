#include <edgescale/core/parameter_set.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/nn/transform.hpp>

#include "nn/gradcheck.hpp"
#include <doctest/doctest.h>

#include <limits>
#include <sstream>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

using Mlp = nn::Sequential<nn::Dense<784, 300>, nn::ReLU, nn::Dense<300, 100>, nn::ReLU,
                           nn::Dense<100, 10>>;
using SmallMlp = nn::BasicSequential<double, nn::Dense<12, 9>, nn::Tanh, nn::Dense<9, 7>, nn::ReLU,
                                     nn::Dense<7, 4>, nn::Sigmoid, nn::Dense<4, 3>>;

/// A user-written shape-agnostic layer spec: y = x³ (what a user would add, with no edgescale
/// internals beyond the Layer contract).
template <class T, class S>
class CubeLayer {
 public:
  using scalar_type = T;
  using input_shape = S;
  using output_shape = S;
  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    x_ = x;
    y_ = x.array().cube();
    return {y_.data(), y_.rows(), y_.cols()};
  }
  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    dx_ = 3 * x_.array().square() * dy.array();
    return {dx_.data(), dx_.rows(), dx_.cols()};
  }

 private:
  Matrix<T> x_, y_, dx_;
};
struct Cube {
  template <StaticShape S>
  static constexpr bool accepts = true;
  template <class T, StaticShape S>
  using layer = CubeLayer<T, S>;
};

/// A user-written concrete layer with a parameter: a per-feature scale, 5 features, double.
class Scale5 {
 public:
  using scalar_type = double;
  using input_shape = Shape<5>;
  using output_shape = Shape<5>;
  Scale5() { params_[0].value.setConstant(1.5); }
  ConstBatchView<double> forward(const ConstBatchView<double>& x) {
    x_ = x;
    y_ = params_[0].value.asDiagonal() * x;
    return {y_.data(), y_.rows(), y_.cols()};
  }
  ConstBatchView<double> backward(const ConstBatchView<double>& dy) {
    params_[0].grad += (dy.array() * x_.array()).rowwise().sum().matrix();
    dx_ = params_[0].value.asDiagonal() * dy;
    return {dx_.data(), dx_.rows(), dx_.cols()};
  }
  std::span<Parameter<double>> parameters() { return params_; }

 private:
  std::array<Parameter<double>, 1> params_{Parameter<double>("scale", {5}, ParameterRole::weight)};
  Matrix<double> x_, y_, dx_;
};

}  // namespace

// ---- compile-time shape checks, by requires expressions ----
template <class... Specs>
constexpr bool composes = requires {
  typename nn::Sequential<Specs...>;
};
template <class T, class... Specs>
constexpr bool composes_as = requires {
  typename nn::BasicSequential<T, Specs...>;
};

static_assert(composes<nn::Dense<784, 300>, nn::ReLU, nn::Dense<300, 10>>);
static_assert(!composes<nn::Dense<784, 300>, nn::ReLU, nn::Dense<200, 10>>);  // 300 != 200
static_assert(!composes<nn::ReLU, nn::Dense<10, 10>>);  // no input shape: needs Input<...>
static_assert(composes<nn::Input<10>, nn::ReLU, nn::Dense<10, 10>>);
static_assert(composes<nn::Input<2, 3, 4>, nn::Flatten, nn::Dense<24, 5>>);
static_assert(!composes<nn::Input<2, 3, 4>, nn::Flatten, nn::Dense<25, 5>>);
static_assert(std::is_same_v<Mlp::input_shape, Shape<784>>);
static_assert(std::is_same_v<Mlp::output_shape, Shape<10>>);
static_assert(Mlp::size == 5);
static_assert(nn::Network<Mlp>);
static_assert(nn::Layer<Mlp>);  // a network is a layer: networks nest
static_assert(composes<nn::Dense<4, 5>, Cube, nn::Dense<5, 2>>);
static_assert(composes_as<double, nn::Dense<4, 5>, Scale5>);
static_assert(!composes_as<float, nn::Dense<4, 5>, Scale5>);   // Scale5 is a double layer
static_assert(!composes_as<double, nn::Dense<4, 6>, Scale5>);  // 6 features into 5
static_assert(std::is_same_v<nn::rebind_scalar_t<Mlp, double>::scalar_type, double>);

TEST_CASE("an MLP's gradients match finite differences through Sequential") {
  Rng rng = make_stream(21, "mlp");
  SmallMlp net{nn::init::xavier_normal, rng};
  const auto x = test::random_batch(12, 5, rng);
  const auto r = test::gradient_check(net, x, rng);
  CHECK(r.input_error < 1e-6);
  REQUIRE(r.parameter_errors.size() == 8);
  for (std::size_t i = 0; i < r.names.size(); ++i) {
    INFO(r.names[i]);
    CHECK(r.parameter_errors[i] < 1e-6);
  }
}

TEST_CASE("user-written layers compose like built-in ones, gradients included") {
  Rng rng = make_stream(22, "user");
  nn::BasicSequential<double, nn::Dense<4, 5>, Cube, Scale5, nn::Dense<5, 2>> net{
      nn::init::kaiming_normal, rng};
  const auto x = test::random_batch(4, 3, rng);
  const auto r = test::gradient_check(net, x, rng);
  CHECK(r.input_error < 1e-6);
  REQUIRE(r.names.size() == 5);
  CHECK(r.names[2] == "2.scale");
  CHECK(r.worst() < 1e-6);
}

TEST_CASE("tensors are named as PyTorch's nn.Sequential state_dict") {
  Mlp net;
  std::vector<std::string> names;
  std::vector<std::vector<Index>> shapes;
  net.for_each_tensor([&](std::string_view name, Parameter<float>& p) {
    names.emplace_back(name);
    shapes.push_back(p.shape);
  });
  CHECK(names ==
        std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"});
  CHECK(shapes[0] == std::vector<Index>{300, 784});
  CHECK(shapes[5] == std::vector<Index>{10});
  CHECK(net.parameter_count() == 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10);
}

TEST_CASE("a wrong number of input rows is a clear run-time error") {
  Mlp net;
  Matrix<float> x = Matrix<float>::Zero(783, 2);
  try {
    net.forward(x);
    FAIL("no exception");
  } catch (const shape_error& e) {
    CHECK(std::string(e.what()).find("783") != std::string::npos);
    CHECK(std::string(e.what()).find("784") != std::string::npos);
  }
  Matrix<float> dy = Matrix<float>::Zero(9, 2);
  CHECK_THROWS_AS(net.backward(ConstBatchView<float>(dy.data(), 9, 2)), shape_error);
}

TEST_CASE("extractor then head equals the whole network") {
  Rng rng = make_stream(23, "split");
  Mlp net{nn::init::kaiming_normal, rng};
  auto extractor = net.extractor<4>();  // Dense, ReLU, Dense, ReLU
  auto head = net.head<4>();            // Dense<100, 10>
  static_assert(std::is_same_v<decltype(extractor)::output_shape, Shape<100>>);
  static_assert(std::is_same_v<decltype(head)::input_shape, Shape<100>>);
  static_assert(decltype(head)::size == 1);
  Matrix<float> x = Matrix<float>::Random(784, 7);
  const Matrix<float> whole = net.forward(x);
  const Matrix<float> features = extractor.forward(x);
  const Matrix<float> split = head.forward(features);
  CHECK(whole.isApprox(split, 1e-6F));
  CHECK((whole - split).cwiseAbs().maxCoeff() == 0.0F);  // the same arithmetic, bit for bit

  // a head trained alone goes back into the network: only the bias differs here
  const Vector<float> old_bias = head.layer<0>().parameters()[1].value;
  head.layer<0>().parameters()[1].value.setConstant(3.0F);
  net.set_head<4>(head);
  const Matrix<float> replaced = net.forward(x);
  const Matrix<float> expected = split.colwise() + (Vector<float>::Constant(10, 3.0F) - old_bias);
  CHECK(replaced.isApprox(expected, 1e-5F));
  auto new_extractor = net.extractor<4>();
  CHECK(new_extractor.layer<0>().parameters()[0].value == net.layer<0>().parameters()[0].value);
}

TEST_CASE("copy_tensors carries a float network into its double twin") {
  Rng rng = make_stream(25, "copy");
  Mlp net{nn::init::kaiming_normal, rng};
  nn::rebind_scalar_t<Mlp, double> twin;
  copy_tensors(net, twin);
  Matrix<float> x = Matrix<float>::Random(784, 3);
  const Matrix<double> expected = net.forward(x).cast<double>();
  const Matrix<double> got = twin.forward(Matrix<double>(x.cast<double>()));
  CHECK((got - expected).cwiseAbs().maxCoeff() < 1e-4);
  CHECK(twin.layer<4>().parameters()[1].value ==
        net.layer<4>().parameters()[1].value.cast<double>());
}

TEST_CASE("the same seed gives the same network, another seed another") {
  Rng a = make_stream(1, "init");
  Rng b = make_stream(1, "init");
  Rng c = make_stream(2, "init");
  Mlp n1{nn::init::kaiming_normal, a};
  Mlp n2{nn::init::kaiming_normal, b};
  Mlp n3{nn::init::kaiming_normal, c};
  CHECK(n1.layer<0>().parameters()[0].value == n2.layer<0>().parameters()[0].value);
  CHECK(n1.layer<0>().parameters()[0].value != n3.layer<0>().parameters()[0].value);
  // Kaiming normal: variance 2 / fan_in
  const auto& w = n1.layer<0>().parameters()[0].value;
  const double var = w.cast<double>().squaredNorm() / static_cast<double>(w.size());
  CHECK(var == doctest::Approx(2.0 / 784).epsilon(0.02));
}
