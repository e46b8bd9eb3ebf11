#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/loss.hpp>
#include <edgescale/nn/optim/sgd.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/nn/train.hpp>

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
  nn::copy_tensors(net, twin);
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

namespace {
struct Blobs {
  Matrix<float> features;
  std::vector<std::int32_t> labels;
};
/// Three Gaussian blobs in 2-D, well separated.
Blobs make_blobs(Index n, Rng& rng) {
  Blobs b{Matrix<float>(2, n), std::vector<std::int32_t>(static_cast<std::size_t>(n))};
  const double cx[3] = {-3, 3, 0};
  const double cy[3] = {-2, -2, 3};
  for (Index i = 0; i < n; ++i) {
    const int k = static_cast<int>(i % 3);
    b.labels[static_cast<std::size_t>(i)] = k;
    b.features(0, i) = static_cast<float>(cx[k] + 0.5 * standard_normal(rng));
    b.features(1, i) = static_cast<float>(cy[k] + 0.5 * standard_normal(rng));
  }
  return b;
}
struct CountingCallback {
  int begins = 0;
  int ends = 0;
  long batches = 0;
  void on_epoch_begin(int, int) { ++begins; }
  void on_batch_end(Index, Index, double) { ++batches; }
  bool on_epoch_end(const nn::EpochReport& r) {
    ++ends;
    return r.epoch < 3;  // stop after the 4th epoch
  }
};
}  // namespace

TEST_CASE("fit learns separable blobs, reproducibly, and callbacks can stop it") {
  auto run = [](std::uint64_t seed, CountingCallback& cb) {
    Rng data_rng = make_stream(seed, "data");
    const Blobs train = make_blobs(300, data_rng);
    const Blobs test = make_blobs(150, data_rng);
    Rng init = make_stream(seed, "init");
    nn::Sequential<nn::Dense<2, 16>, nn::ReLU, nn::Dense<16, 3>> net{nn::init::kaiming_normal,
                                                                     init};
    nn::Trainer trainer{net};
    nn::SGD opt{{.learning_rate = 0.1, .momentum = 0.9}};
    Rng shuffle = make_stream(seed, "shuffle");
    std::ostringstream log;
    return nn::fit(trainer, opt, train, test, {.epochs = 10, .batch_size = 32},
                   nn::ConstantSchedule{0.1}, shuffle, cb, nn::ProgressDisplay{log});
  };
  CountingCallback cb1, cb2;
  const auto h1 = run(5, cb1);
  const auto h2 = run(5, cb2);
  REQUIRE(h1.size() == 4);  // stopped by the callback
  CHECK(cb1.begins == 4);
  CHECK(cb1.ends == 4);
  CHECK(cb1.batches == 4 * 10);  // ceil(300 / 32) = 10 batches an epoch
  CHECK(h1.back().test.accuracy > 0.97);
  CHECK(h1.back().test.accuracy == h2.back().test.accuracy);
  CHECK(h1.back().train_loss == h2.back().train_loss);
}

TEST_CASE("fit rejects a data set of the wrong sample size") {
  Rng rng = make_stream(6, "data");
  const Blobs train = make_blobs(30, rng);
  nn::Sequential<nn::Dense<3, 3>> net;
  nn::Trainer trainer{net};
  nn::SGD opt{{.learning_rate = 0.1}};
  CHECK_THROWS_AS(nn::fit(trainer, opt, train, train, {.epochs = 1, .batch_size = 8},
                          nn::ConstantSchedule{0.1}, rng),
                  shape_error);
}

TEST_CASE("a non-finite loss stops training before the step and leaves the network unchanged") {
  Rng rng = make_stream(7, "nan");
  nn::Sequential<nn::Dense<4, 3>, nn::ReLU, nn::Dense<3, 2>> net{nn::init::kaiming_normal, rng};
  nn::Trainer trainer{net};
  nn::SGD opt{{.learning_rate = 0.1, .momentum = 0.9}};
  Matrix<float> x = Matrix<float>::Random(4, 3);
  x(2, 1) = std::numeric_limits<float>::quiet_NaN();
  const std::vector<std::int32_t> y{0, 1, 0};
  std::vector<Vector<float>> before;
  net.for_each_tensor(
      [&](std::string_view, const Parameter<float>& p) { before.push_back(p.value); });
  CHECK_THROWS_AS(trainer.step(opt, ConstBatchView<float>(x.data(), 4, 3), nn::Labels(y)), error);
  std::size_t i = 0;
  net.for_each_tensor([&](std::string_view, const Parameter<float>& p) {
    CHECK(p.value == before[i++]);  // bit for bit: no update reached the weights
  });
  CHECK(opt.steps() == 0);
}
