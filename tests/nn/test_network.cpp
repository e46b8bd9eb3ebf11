// Whole-network handles: layer visits with paths and types, forward hooks (an output-range
// observer), features without copies, scratch memory that copies leave behind and that can be
// released, and a SynFlow-style pass on |θ| checked against its closed form.
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/batchnorm.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/residual.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/nn/transform.hpp>

#include "nn/gradcheck.hpp"
#include <doctest/doctest.h>

#include <map>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using namespace edgescale;

namespace {

using ResNet =
    nn::BasicSequential<double, nn::Input<2, 6, 6>, nn::Conv2D<2, 3, 3, nn::Pad<1>>, nn::ReLU,
                        nn::Residual<nn::Conv2D<3, 3, 3, nn::Pad<1>>, nn::BatchNorm, nn::ReLU>,
                        nn::MaxPool2D<2>, nn::Flatten, nn::Dense<27, 4>>;
using Mlp = nn::Sequential<nn::Dense<784, 300>, nn::ReLU, nn::Dense<300, 100>, nn::ReLU,
                           nn::Dense<100, 10>>;

/// A forward hook: the smallest and largest output value of every layer, by path — what a
/// min-max quantization observer collects.
template <class T>
struct RangeObserver {
  std::map<std::string, std::pair<T, T>, std::less<>> ranges;
  std::vector<std::string> order;
  template <class L>
  void operator()(std::string_view path, const L& /*layer*/, const ConstBatchView<T>& out) {
    auto [it, fresh] = ranges.try_emplace(std::string(path), out.minCoeff(), out.maxCoeff());
    if (!fresh) {
      it->second = {std::min(it->second.first, out.minCoeff()),
                    std::max(it->second.second, out.maxCoeff())};
    }
    order.emplace_back(path);
  }
};

Matrix<double> random_input(Index rows, Index cols, Rng& rng) {
  Matrix<double> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) {
    x.data()[i] = standard_normal(rng);
  }
  return x;
}

}  // namespace

static_assert(nn::ForwardHook<RangeObserver<double>, double>);
static_assert(nn::HasSublayers<ResNet>);
static_assert(nn::HasSublayers<ResNet::layer_type<2>>);  // the residual block
static_assert(std::is_same_v<nn::features_shape_t<ResNet>, Shape<27>>);
static_assert(std::is_same_v<nn::features_shape_t<ResNet, 2>, Shape<3, 6, 6>>);

TEST_CASE("for_each_layer visits every layer in order with its path and static type") {
  ResNet net;
  std::vector<std::string> paths;
  int convolutions = 0;
  int relus = 0;
  nn::for_each_layer(net, [&](std::string_view path, auto& layer) {
    using L = std::remove_cvref_t<decltype(layer)>;
    paths.emplace_back(path);
    convolutions += nn::is_conv2d_layer_v<L> ? 1 : 0;
    relus += nn::is_relu_layer_v<L> ? 1 : 0;
  });
  CHECK(paths ==
        std::vector<std::string>{"0", "1", "2", "2.body.0", "2.body.1", "2.body.2", "3", "4", "5"});
  CHECK(convolutions == 2);
  CHECK(relus == 2);

  // the paths are the prefixes of the tensor names
  std::vector<std::string> names;
  net.for_each_parameter([&](std::string_view name, auto&) { names.emplace_back(name); });
  CHECK(names.at(2) == "2.body.0.weight");
  CHECK(names.at(4) == "2.body.1.weight");

  // a const network visits const layers
  const ResNet& cnet = net;
  int dense = 0;
  nn::for_each_layer(cnet, [&](std::string_view, const auto& layer) {
    dense += nn::is_dense_layer_v<std::remove_cvref_t<decltype(layer)>> ? 1 : 0;
  });
  CHECK(dense == 1);
}

TEST_CASE("forward hooks observe every layer's output; the hooked forward computes the same") {
  Rng rng = make_stream(1, "hooks");
  ResNet net{nn::init::kaiming_normal, rng};
  net.set_training(false);
  const Matrix<double> x = random_input(72, 5, rng);
  const Matrix<double> plain = net.forward(x);

  RangeObserver<double> observer;
  int calls = 0;
  auto counter = [&](std::string_view, const auto&, const ConstBatchView<double>&) { ++calls; };
  const Matrix<double> hooked = net.forward(x, observer, counter);
  CHECK(hooked == plain);  // bit for bit
  CHECK(calls == 9);
  // post-order: a container after its layers
  CHECK(observer.order ==
        std::vector<std::string>{"0", "1", "2.body.0", "2.body.1", "2.body.2", "2", "3", "4", "5"});
  // each range equals the layer output computed directly
  for (std::size_t k = 0; k <= 5; ++k) {
    const std::string path = std::to_string(k);
    Matrix<double> out;
    switch (k) {
      case 0:
        out = nn::features<1>(net, x);
        break;
      case 1:
        out = nn::features<2>(net, x);
        break;
      case 2:
        out = nn::features<3>(net, x);
        break;
      case 3:
        out = nn::features<4>(net, x);
        break;
      case 4:
        out = nn::features<5>(net, x);
        break;
      default:
        out = net.forward(x);
        break;
    }
    INFO(path);
    CHECK(observer.ranges.at(path).first == out.minCoeff());
    CHECK(observer.ranges.at(path).second == out.maxCoeff());
  }
  CHECK(observer.ranges.at("2.body.2").first >= 0);  // after a ReLU
}

TEST_CASE("features runs a prefix in place and equals the extractor's output") {
  Rng rng = make_stream(2, "features");
  Mlp net{nn::init::kaiming_normal, rng};
  Matrix<float> x = Matrix<float>::Random(784, 6);
  const ConstBatchView<float> psi = nn::features(net, x);  // layers [0, 4): 100 features
  CHECK(psi.rows() == 100);
  CHECK(psi.data() == net.layer<3>()
                          .forward(net.layer<2>().forward(
                              net.layer<1>().forward(net.layer<0>().forward(batch_view(x)))))
                          .data());
  const Matrix<float> direct = nn::features(net, x);
  const Matrix<float> copied = net.extractor<4>().forward(x);
  CHECK(direct == copied);
  const Matrix<float> h = nn::features<2>(net, x);
  CHECK(h.rows() == 300);
  CHECK(h.minCoeff() >= 0);
  CHECK_THROWS_AS(nn::features(net, Matrix<float>(Matrix<float>::Zero(783, 2))), shape_error);
}

TEST_CASE("copies leave scratch memory behind, and release_workspaces frees it") {
  Rng rng = make_stream(3, "workspaces");
  ResNet net{nn::init::kaiming_normal, rng};
  const Matrix<double> x = random_input(72, 64, rng);
  const Matrix<double> y = net.forward(x);
  const std::size_t used = nn::workspace_bytes(net);
  CHECK(used >= static_cast<std::size_t>(64 * 72 * 3) * sizeof(double));  // at least the outputs

  ResNet copy = net;  // parameters only
  CHECK(nn::workspace_bytes(copy) == 0);
  CHECK(copy.forward(x) == y);

  nn::release_workspaces(net);
  CHECK(nn::workspace_bytes(net) == 0);
  CHECK(net.forward(x) == y);  // allocates again as needed
  CHECK(nn::workspace_bytes(net) > 0);
}

TEST_CASE("a SynFlow-style pass on |θ| (copy, abs, ones input, gradient) gives the closed form") {
  // SynFlow (Tanaka et al. 2020): R = 1ᵀ f_{|θ|}(1), score = |θ ⊙ ∂R/∂θ|. With every parameter
  // non-negative and the input all ones, no ReLU is ever off, so f is linear in each weight:
  // for the first layer, ∂R/∂|W1[i,j]| = (1ᵀ |W3| |W2|)_i · 1 — the closed form checked here.
  Rng rng = make_stream(4, "synflow");
  using Net = nn::BasicSequential<double, nn::Dense<5, 4>, nn::ReLU, nn::Dense<4, 3>, nn::ReLU,
                                  nn::Dense<3, 2>>;
  Net net{nn::init::kaiming_normal, rng};
  for_each_parameter(net, [&](std::string_view, Parameter<double>& p) {
    for (Index i = 0; i < p.size(); ++i) {
      p.value[i] = standard_normal(rng);  // signed biases too
    }
  });

  Net abs_net;  // the copy, through a parameter set: abs on the flat vector
  ParameterSet<double> theta(net);
  theta.values() = theta.values().cwiseAbs();
  theta.write(abs_net);
  abs_net.zero_grad();
  const Matrix<double> ones = Matrix<double>::Ones(5, 1);
  const Matrix<double> out = abs_net.forward(ones);
  abs_net.backward_parameters(batch_view(Matrix<double>(Matrix<double>::Ones(2, 1))));
  ParameterSet<double> grad = theta.zeros_like();
  grad.read_gradients(abs_net);
  const Vector<double> scores = (theta.values().array() * grad.values().array()).abs().matrix();

  const Matrix<double> w1 = Eigen::Map<const Matrix<double>>(theta.tensor("0.weight").data(), 5, 4)
                                .transpose();  // (out, in)
  const Matrix<double> w2 =
      Eigen::Map<const Matrix<double>>(theta.tensor("2.weight").data(), 4, 3).transpose();
  const Matrix<double> w3 =
      Eigen::Map<const Matrix<double>>(theta.tensor("4.weight").data(), 3, 2).transpose();
  const Vector<double> b1 = theta.tensor("0.bias");
  const Vector<double> b2 = theta.tensor("2.bias");
  const Vector<double> b3 = theta.tensor("4.bias");
  const Eigen::RowVectorXd upstream = Eigen::RowVectorXd::Ones(2) * w3 * w2;  // 1ᵀ|W3||W2|
  const Eigen::Map<const Matrix<double>> s1(scores.data(), 5, 4);             // (in, out) memory
  for (Index i = 0; i < 4; ++i) {
    for (Index j = 0; j < 5; ++j) {
      CHECK(s1(j, i) == doctest::Approx(w1(i, j) * upstream(i)).epsilon(1e-12));
    }
  }
  // R itself: 1ᵀ(|W3|(|W2|(|W1| 1 + |b1|) + |b2|) + |b3|)
  const double r = (w3 * (w2 * (w1 * Vector<double>::Ones(5) + b1) + b2) + b3).sum();
  CHECK(out.sum() == doctest::Approx(r).epsilon(1e-12));
}

TEST_CASE("extractor and head come in the network's mode") {
  ResNet net;
  net.set_training(false);
  auto e = net.extractor<3>();
  auto h = net.head<3>();
  CHECK(!e.training());
  CHECK(!h.training());
  CHECK(!e.layer<2>().body().layer<1>().training());  // the BatchNorm inside
  net.set_training(true);
  CHECK(net.extractor<3>().training());
}

TEST_CASE("ModeScope sets a mode for a scope and restores the old one, after an exception too") {
  nn::Sequential<nn::Input<3>, nn::Dense<3, 2>> net;
  net.set_training(true);
  {
    const nn::ModeScope evaluation(net, false);
    CHECK_FALSE(net.training());
  }
  CHECK(net.training());
  try {
    const nn::ModeScope evaluation(net, false);
    throw std::runtime_error("inside");
  } catch (const std::runtime_error&) {
  }
  CHECK(net.training());
  nn::DenseLayer<float, 3, 2, true> layer;  // no modes: nothing to set
  const nn::ModeScope nothing(layer, false);
}
