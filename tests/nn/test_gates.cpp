// Gate capture and imposition: one network's ReLU gates recorded by a forward hook and imposed on
// a twin whose ReLUs are GatedReLUs; the twin's output checked against a hand computation (PX's
// jvf pass: weights and biases 1, input x², real gates).
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/gates.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/residual.hpp>
#include <edgescale/nn/sequential.hpp>

#include "nn/gradcheck.hpp"
#include <doctest/doctest.h>

#include <type_traits>

using namespace edgescale;

namespace {
using Net = nn::BasicSequential<double, nn::Dense<3, 4>, nn::ReLU, nn::Dense<4, 5>, nn::ReLU,
                                nn::Dense<5, 2>>;
using Twin = nn::gated_twin_t<Net>;
static_assert(nn::is_gated_relu_layer_v<Twin::layer_type<1>>);
static_assert(nn::is_dense_layer_v<Twin::layer_type<2>>);
static_assert(!nn::is_relu_layer_v<Twin::layer_type<3>>);

/// W x + b by plain loops, W in PyTorch's (out, in) row-major memory.
Matrix<double> affine(const Parameter<double>& w, const Parameter<double>& b,
                      const Matrix<double>& x) {
  const Index out = w.shape[0];
  const Index in = w.shape[1];
  Matrix<double> y(out, x.cols());
  for (Index n = 0; n < x.cols(); ++n) {
    for (Index i = 0; i < out; ++i) {
      double s = b.value[i];
      for (Index j = 0; j < in; ++j) {
        s += w.value[i * in + j] * x(j, n);
      }
      y(i, n) = s;
    }
  }
  return y;
}
}  // namespace

TEST_CASE("a gate-imposed twin computes the hand-computed path sums under the real gates") {
  Rng rng = make_stream(1, "gates");
  Net net{nn::init::kaiming_normal, rng};
  const Matrix<double> x = test::random_batch(3, 7, rng);

  nn::GateRecorder<double> gates;
  const Matrix<double> real = net.forward(x, gates);
  REQUIRE(gates.gates().size() == 2);
  CHECK(gates.gate("1").rows() == 4);
  CHECK(gates.gate("3").cols() == 7);
  CHECK(real == net.forward(x));

  // The jvf twin: every weight and bias 1, input x², the real network's gates.
  Twin twin;
  for_each_tensor(twin, [](std::string_view, Parameter<double>& p) { p.value.setOnes(); });
  nn::impose_gates(twin, gates);
  const Matrix<double> x2 = x.array().square().matrix();
  const Matrix<double> z1 = twin.forward(x2);

  // By hand: the gates from the real pre-activations, then the all-ones network.
  const auto& p0 = net.layer<0>().parameters();
  const auto& p2 = net.layer<2>().parameters();
  const Matrix<double> a1 = (affine(p0[0], p0[1], x).array() > 0).cast<double>();
  const Matrix<double> real_h1 = (affine(p0[0], p0[1], x).array().max(0.0)).matrix();
  const Matrix<double> a2 = (affine(p2[0], p2[1], real_h1).array() > 0).cast<double>();
  Parameter<double> ones1("w", {4, 3}, ParameterRole::weight);
  Parameter<double> ones1b("b", {4}, ParameterRole::bias);
  Parameter<double> ones2("w", {5, 4}, ParameterRole::weight);
  Parameter<double> ones2b("b", {5}, ParameterRole::bias);
  Parameter<double> ones3("w", {2, 5}, ParameterRole::weight);
  Parameter<double> ones3b("b", {2}, ParameterRole::bias);
  for (auto* p : {&ones1, &ones1b, &ones2, &ones2b, &ones3, &ones3b}) {
    p->value.setOnes();
  }
  const Matrix<double> g1 = (a1.array() * affine(ones1, ones1b, x2).array()).matrix();
  const Matrix<double> g2 = (a2.array() * affine(ones2, ones2b, g1).array()).matrix();
  const Matrix<double> expected = affine(ones3, ones3b, g2);
  CHECK((z1 - expected).cwiseAbs().maxCoeff() < 1e-12);
  CHECK(a1.minCoeff() == 0);  // some gates really are off
  CHECK(a1.maxCoeff() == 1);

  // with the real weights and the real input, the gated twin is the real network
  Twin same;
  copy_tensors(net, same);
  nn::impose_gates(same, gates);
  CHECK((same.forward(x) - real).cwiseAbs().maxCoeff() < 1e-14);

  // gradients through imposed gates match finite differences (the twin is linear in its input)
  const auto r = test::gradient_check(twin, x2, rng);
  CHECK(r.worst() < 1e-6);
}

TEST_CASE("an ungated GatedReLU is a ReLU; missing or mis-sized gates are clear errors") {
  Rng rng = make_stream(2, "gates");
  Net net{nn::init::kaiming_normal, rng};
  Twin twin;
  copy_tensors(net, twin);
  const Matrix<double> x = test::random_batch(3, 4, rng);
  CHECK((twin.forward(x) - net.forward(x)).cwiseAbs().maxCoeff() < 1e-14);

  nn::GateRecorder<double> empty;
  CHECK_THROWS_AS(nn::impose_gates(twin, empty), argument_error);
  CHECK(!twin.layer<1>().gated());  // unchanged

  nn::GateRecorder<double> gates;
  net.forward(x, gates);
  nn::impose_gates(twin, gates);
  const Matrix<double> wrong_batch = test::random_batch(3, 5, rng);
  CHECK_THROWS_AS(twin.forward(wrong_batch), shape_error);

  // gates recorded on another architecture do not fit
  nn::BasicSequential<double, nn::Dense<3, 6>, nn::ReLU, nn::Dense<6, 5>, nn::ReLU, nn::Dense<5, 2>>
      wide{nn::init::kaiming_normal, rng};
  nn::GateRecorder<double> wide_gates;
  wide.forward(x, wide_gates);
  Twin fresh;
  CHECK_THROWS_AS(nn::impose_gates(fresh, wide_gates), shape_error);
  CHECK(!fresh.layer<1>().gated());
}

TEST_CASE("gates inside a residual block are recorded and imposed by path") {
  using Res = nn::BasicSequential<double, nn::Dense<4, 4>, nn::ReLU,
                                  nn::Residual<nn::Dense<4, 4>, nn::ReLU>, nn::Dense<4, 2>>;
  Rng rng = make_stream(3, "residual gates");
  Res net{nn::init::kaiming_normal, rng};
  const Matrix<double> x = test::random_batch(4, 3, rng);
  nn::GateRecorder<double> gates;
  const Matrix<double> real = net.forward(x, gates);
  CHECK(gates.gates().count("2.body.1") == 1);
  nn::gated_twin_t<Res> twin;
  copy_tensors(net, twin);
  nn::impose_gates(twin, gates);
  CHECK(twin.layer<2>().body().layer<1>().gated());
  CHECK((twin.forward(x) - real).cwiseAbs().maxCoeff() < 1e-14);
}

TEST_CASE("max pooling choices are recorded and imposed by path: routed, the twin is the net") {
  using Conv = nn::BasicSequential<double, nn::Input<2, 6, 6>, nn::Conv2D<2, 3, 3, nn::Pad<1>>,
                                   nn::ReLU, nn::MaxPool2D<2>, nn::Flatten, nn::Dense<27, 2>>;
  using ConvTwin = nn::gated_twin_t<Conv>;
  static_assert(nn::is_routed_max_pool_layer_v<ConvTwin::layer_type<2>>);
  Rng rng = make_stream(4, "pool routes");
  Conv net{nn::init::kaiming_normal, rng};
  const Matrix<double> x = test::random_batch(72, 3, rng);
  nn::GateRecorder<double> gates;
  const Matrix<double> real = net.forward(x, gates);
  REQUIRE(gates.route("2").rows() == 27);
  REQUIRE(gates.route("2").cols() == 3);
  CHECK(gates.route("2").minCoeff() >= 0);
  CHECK(gates.route("2").maxCoeff() <= 3);

  ConvTwin twin;
  copy_tensors(net, twin);
  CHECK((twin.forward(x) - real).cwiseAbs().maxCoeff() < 1e-14);  // unrouted: a max pooling

  // Routed through the real choices under the real gates: the real network again, value and
  // input gradient.
  nn::impose_gates(twin, gates);
  nn::impose_routes(twin, gates);
  CHECK((twin.forward(x) - real).cwiseAbs().maxCoeff() < 1e-14);
  const Matrix<double> dy = test::random_batch(2, 3, rng);
  const Matrix<double> dx_real = net.backward(batch_view(dy));
  CHECK((twin.backward(batch_view(dy)) - dx_real).cwiseAbs().maxCoeff() < 1e-14);

  // With other weights the routed pooling no longer takes the maximum: it is a fixed selection,
  // linear in its input (finite differences agree everywhere, also where a max would switch).
  for_each_tensor(twin, [](std::string_view, Parameter<double>& p) { p.value.setOnes(); });
  const Matrix<double> x2 = x.array().square().matrix();
  const auto r = test::gradient_check(twin, x2, rng);
  CHECK(r.worst() < 1e-6);

  // A route of another size, or a position outside the window, is refused.
  nn::RoutedMaxPool2DLayer<double, Shape<3, 6, 6>, 2> pool;
  CHECK_THROWS_AS(pool.set_route(nn::PoolRoute::Zero(26, 1)), shape_error);
  CHECK_THROWS_AS(pool.set_route(nn::PoolRoute::Constant(27, 1, 4)), argument_error);
  nn::GateRecorder<double> none;
  ConvTwin fresh;
  CHECK_THROWS_AS(nn::impose_routes(fresh, none), argument_error);
}
