// nn/overwrite.hpp: backward that writes the parameter gradients gives exactly the gradients of
// zero_grad() then the accumulating backward, whatever the gradients held before (NaN here, so a
// gradient that is read instead of written shows), for every layer kind: Dense (its own
// overloads, rank-1 at batch 1, a product above), Conv2D with each forward kernel, BatchNorm,
// pooling, Residual, and a user-written layer with neither overload (zeroed for it).
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/batchnorm.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/loss.hpp>
#include <edgescale/nn/optim/sgd.hpp>
#include <edgescale/nn/overwrite.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/residual.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/nn/train.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

using namespace edgescale;

namespace {

/// A user's layer with one parameter and only the accumulating backward: y = a ⊙ x per feature.
template <class T, int N>
struct ScaleLayer {
  using scalar_type = T;
  using input_shape = Shape<N>;
  using output_shape = Shape<N>;

  ScaleLayer() { params_[0].value.setLinSpaced(N, T(0.5), T(1.5)); }

  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    x_ = x;
    y_ = x.array().colwise() * params_[0].value.array();
    return {y_.data(), y_.rows(), y_.cols()};
  }
  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    params_[0].grad += (x_.array() * dy.array()).rowwise().sum().matrix();
    dx_ = dy.array().colwise() * params_[0].value.array();
    return {dx_.data(), dx_.rows(), dx_.cols()};
  }
  std::span<Parameter<T>> parameters() { return params_; }
  std::span<const Parameter<T>> parameters() const { return params_; }

  std::array<Parameter<T>, 1> params_{Parameter<T>("a", {N}, ParameterRole::scale)};
  Matrix<T> x_, y_, dx_;
};

template <int N>
struct Scale {
  template <class T, StaticShape In>
  using layer = ScaleLayer<T, N>;
  template <StaticShape In>
  static constexpr bool accepts = In::size == N;
};

static_assert(!nn::OverwritesGradients<ScaleLayer<double, 3>>);
static_assert(nn::OverwritesGradients<nn::DenseLayer<double, 3, 2, true>>);
static_assert(nn::OverwritesGradients<nn::DenseLayer<float, 3, 2, false>>);
static_assert(nn::OverwritesGradients<nn::Sequential<nn::Input<3>, nn::Dense<3, 2>>>);
static_assert(nn::OverwritesGradients<nn::Residual<nn::Dense<4, 4>>::layer<double, Shape<4>>>);

// Conv2D with each forward kernel (DirectRows, DirectChannels, im2col + GEMM for a 1x1), and
// BatchNorm, pooling, a Residual block and the user's layer, all in one network (no bias before
// BatchNorm, which would cancel it: a zero gradient).
using Net =
    nn::BasicSequential<double, nn::Input<2, 6, 6>, nn::Conv2D<2, 3, 3, nn::Pad<1>, nn::NoBias>,
                        nn::BatchNorm, nn::ReLU, nn::Conv2D<3, 4, 3>, nn::Conv2D<4, 4, 1>,
                        nn::MaxPool2D<2>, nn::Flatten,
                        nn::Residual<nn::Dense<16, 16>, nn::ReLU, nn::Dense<16, 16, nn::NoBias>>,
                        Scale<16>, nn::Dense<16, 5>>;

static_assert(nn::detail::conv_kernel<double>(2, 3, 3, 1, 8, 8) == nn::detail::ConvKernel::rows);
static_assert(nn::detail::conv_kernel<double>(3, 4, 3, 1, 6, 6) ==
              nn::detail::ConvKernel::channels);

void fill_gradients(Net& net, double value) {
  net.for_each_parameter(
      [&](std::string_view, Parameter<double>& p) { p.grad.setConstant(value); });
}

}  // namespace

TEST_CASE("backward with overwrite_gradients equals zero_grad then backward, for every layer") {
  static_assert(nn::OverwritesGradients<Net>);
  Rng rng = make_stream(17, "overwrite");
  Net net{nn::init::kaiming_normal, rng};
  net.set_training(true);
  for (const Index batch : {Index{1}, Index{4}}) {
    CAPTURE(batch);
    const Matrix<double> x = Matrix<double>::Random(Net::input_shape::size, batch);
    const Matrix<double> dy = Matrix<double>::Random(Net::output_shape::size, batch);
    const ConstBatchView<double> xv(x.data(), x.rows(), x.cols());
    const ConstBatchView<double> dyv(dy.data(), dy.rows(), dy.cols());

    Net reference = net;
    reference.forward(xv);
    reference.zero_grad();
    const Matrix<double> dx_expected = reference.backward(dyv);

    SUBCASE("backward") {
      net.forward(xv);
      fill_gradients(net, std::numeric_limits<double>::quiet_NaN());
      const Matrix<double> dx = net.backward(dyv, nn::overwrite_gradients);
      CHECK(dx == dx_expected);
    }
    SUBCASE("backward_parameters") {
      net.forward(xv);
      fill_gradients(net, std::numeric_limits<double>::quiet_NaN());
      net.backward_parameters(dyv, nn::overwrite_gradients);
    }
    // The same values, bit for bit (the first contribution written where it was added to 0).
    std::vector<std::string> names;
    net.for_each_parameter([&](std::string_view name, Parameter<double>& p) {
      names.emplace_back(name);
      const Parameter<double>* q = nullptr;
      reference.for_each_parameter([&](std::string_view other, Parameter<double>& r) {
        if (other == name) {
          q = &r;
        }
      });
      REQUIRE(q != nullptr);
      CAPTURE(name);
      CHECK(p.grad.allFinite());
      CHECK(p.grad == q->grad);
      CHECK(p.grad.norm() > 0.0);
    });
    CHECK(names.size() == 13);  // conv 1 + 2 + 2, BatchNorm 2, residual 2 + 1, scale 1, Dense 2
  }
}

TEST_CASE("a second overwriting backward replaces the first; the plain one still accumulates") {
  using Small = nn::BasicSequential<double, nn::Input<3>, nn::Dense<3, 2>>;
  Small net;
  auto p = net.layer<0>().parameters();
  p[0].value << 1, 2, 3, 4, 5, 6;
  Matrix<double> x(3, 1);
  x << 1, -1, 2;
  Matrix<double> dy(2, 1);
  dy << 0.5, -2;
  const ConstBatchView<double> xv(x.data(), 3, 1);
  const ConstBatchView<double> dyv(dy.data(), 2, 1);
  net.forward(xv);
  // dW = dy xᵀ (PyTorch's (out, in) layout, stored column-major as W's transpose: in x out).
  Matrix<double> dw(3, 2);
  dw << 0.5, -2, -0.5, 2, 1, -4;
  net.backward_parameters(dyv, nn::overwrite_gradients);
  net.backward_parameters(dyv, nn::overwrite_gradients);
  CHECK(Eigen::Map<const Matrix<double>>(p[0].grad.data(), 3, 2) == dw);
  CHECK(p[1].grad == Vector<double>(dy.col(0)));
  net.backward_parameters(dyv);
  CHECK(Eigen::Map<const Matrix<double>>(p[0].grad.data(), 3, 2) == 2 * dw);
}

TEST_CASE("Trainer::step ignores whatever the gradients held before") {
  // A network whose gradients hold NaN before each step trains exactly as one stepped by hand
  // (zero_grad, forward, loss, backward, SGD) from the same start.
  Rng rng = make_stream(5, "overwrite-trainer");
  using Mlp = nn::Sequential<nn::Input<6>, nn::Dense<6, 8>, nn::ReLU, nn::Dense<8, 3>>;
  Mlp net{nn::init::kaiming_normal, rng};
  Mlp manual = net;
  nn::Trainer trainer{net};
  nn::SGD opt{{.learning_rate = 0.1, .momentum = 0.9}};
  nn::SGD manual_opt{{.learning_rate = 0.1, .momentum = 0.9}};
  const nn::SoftmaxCrossEntropy loss;
  Matrix<float> grad(3, 4);
  for (int step = 0; step < 3; ++step) {
    const Matrix<float> x = Matrix<float>::Random(6, 4);
    const std::vector<std::int32_t> y = {0, 2, 1, 2};
    const ConstBatchView<float> xv(x.data(), 6, 4);
    net.for_each_parameter([](std::string_view, Parameter<float>& p) {
      p.grad.setConstant(std::numeric_limits<float>::quiet_NaN());
    });
    const float l = trainer.step(opt, xv, y);

    manual.zero_grad();
    const ConstBatchView<float> out = manual.forward(xv);
    BatchView<float> gv(grad.data(), 3, 4);
    const float expected = loss.value_and_gradient(out, y, gv);
    manual.backward_parameters(ConstBatchView<float>(grad.data(), 3, 4));
    manual_opt.step(manual);
    CHECK(l == expected);
  }
  std::vector<Vector<float>> a, b;
  net.for_each_parameter([&](std::string_view, Parameter<float>& p) { a.push_back(p.value); });
  manual.for_each_parameter([&](std::string_view, Parameter<float>& p) { b.push_back(p.value); });
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].allFinite());
    CHECK(a[i] == b[i]);
  }
}
