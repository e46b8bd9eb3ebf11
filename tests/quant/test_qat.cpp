// Quantization-aware training (quant/qat.hpp): the wrapped layers are Layers and their networks
// Networks; with every quantizer off a QAT network computes the float network bit for bit; with
// quantizers on, every gradient is the true derivative of the fake quantizers' surrogate (STE for
// values, LSQ for steps: round(v/s) − v/s held fixed) by finite differences; prepare_qat follows
// the integer network's fusion rule, the Precision (the 8-bit-ends scheme) and LSQ's initial
// steps, and its forward is the integer container's arithmetic; a 4-bit QAT network trains with
// nn::Trainer and nn::SGD; bad bit widths and NaN calibration data are refused.
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/nn/optim/sgd.hpp>
#include <edgescale/nn/overwrite.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/nn/train.hpp>
#include <edgescale/quant/fake_quant.hpp>
#include <edgescale/quant/qat.hpp>
#include <edgescale/quant/quantizer.hpp>

#include "nn/gradcheck.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace edgescale {

namespace {

using Mlp = nn::Sequential<nn::Dense<4, 8>, nn::ReLU, nn::Dense<8, 6>, nn::Dense<6, 5>, nn::ReLU,
                           nn::Dense<5, 3>>;
using ConvNet = nn::Sequential<nn::Input<1, 6, 6>, nn::Conv2D<1, 4, 3, nn::Pad<1>>, nn::ReLU,
                               nn::MaxPool2D<2>, nn::Flatten, nn::Dense<36, 3>>;
using QatMlp = quant::qat_network_t<Mlp>;
using QatConvNet = quant::qat_network_t<ConvNet>;

using QatDense = quant::QatLayer<nn::DenseLayer<float, 4, 8, true>>;
using QatConv = quant::QatLayer<nn::Conv2DLayer<float, Shape<1, 6, 6>, 4, 3, 1, 1, true>>;
static_assert(nn::Layer<QatDense> && nn::Layer<QatConv>);
static_assert(nn::Layer<quant::QatReluLayer<float, Shape<8>>>);
static_assert(nn::OverwritesGradients<QatDense> && nn::HasParameterOnlyBackward<QatConv>);
static_assert(nn::Network<QatMlp> && nn::Network<QatConvNet>);
static_assert(std::is_same_v<QatMlp::layer_type<0>, QatDense>);
static_assert(std::is_same_v<QatConvNet::layer_type<0>, QatConv>);
static_assert(quant::is_qat_relu_layer_v<QatMlp::layer_type<1>>);
static_assert(nn::is_max_pool_layer_v<QatConvNet::layer_type<2>>);  // left as it is
static_assert(quant::is_qat_layer_v<QatDense> &&
              !quant::is_qat_layer_v<nn::DenseLayer<float, 4, 8>>);
static_assert(QatConv::out_channels == 4 && QatConv::weights_per_channel == 9);
static_assert(QatDense::out_channels == 8 && QatDense::weights_per_channel == 4);

Matrix<float> random_matrix(Index rows, Index cols, Rng& rng, double scale = 1.0) {
  Matrix<float> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) {
    m(i) = static_cast<float>(scale * standard_normal(rng));
  }
  return m;
}

/// The tensor of x named `name` (a layer's local name or a network's qualified one).
template <class X>
Parameter<typename X::scalar_type>& tensor(X& x, std::string_view name) {
  Parameter<typename X::scalar_type>* found = nullptr;
  for_each_tensor(x, [&](std::string_view n, Parameter<typename X::scalar_type>& p) {
    if (n == name) {
      found = &p;
    }
  });
  REQUIRE(found != nullptr);
  return *found;
}

/// Every tensor of `a` equals, bit for bit, the tensor of `b` of the same name (values or grads).
template <class A, class B>
void check_same_tensors(const A& a, const B& b, bool gradients) {
  for_each_tensor(a, [&](std::string_view name, const auto& p) {
    CAPTURE(name);
    bool found = false;
    for_each_tensor(b, [&](std::string_view n, const auto& q) {
      if (n == name) {
        found = true;
        CHECK((gradients ? p.grad == q.grad : p.value == q.value));
      }
    });
    CHECK(found);
  });
}

/// With every quantizer off (a fresh QAT network), forward, backward and the overwriting
/// parameter backward of the QAT twin equal the float network's bit for bit.
template <class Net>
void check_disabled_is_float(Rng& rng) {
  Net net{nn::init::kaiming_normal, rng};
  quant::qat_network_t<Net> qat;
  copy_tensors(net, qat, TensorMatch::target_extra);
  const Matrix<float> x = random_matrix(Net::input_shape::size, 5, rng);
  const Matrix<float> dy = random_matrix(Net::output_shape::size, 5, rng);
  const Matrix<float> y_float = net.forward(x);
  const Matrix<float> y_qat = qat.forward(x);
  CHECK(y_float == y_qat);
  net.zero_grad();
  qat.zero_grad();
  const Matrix<float> dx_float = net.backward(batch_view(dy));
  const Matrix<float> dx_qat = qat.backward(batch_view(dy));
  CHECK(dx_float == dx_qat);
  check_same_tensors(net, qat, true);
  // the overwriting form, over gradients left from before
  (void)net.forward(x);
  (void)qat.forward(x);
  net.backward_parameters(batch_view(dy), nn::overwrite_gradients);
  qat.backward_parameters(batch_view(dy), nn::overwrite_gradients);
  check_same_tensors(net, qat, true);
  qat.for_each_tensor([](std::string_view name, const Parameter<float>& p) {
    if (name.ends_with("_step")) {
      CAPTURE(name);
      CHECK(p.grad.isZero());
    }
  });
}

// ---- surrogates: the fake quantizers with round(v/s) − v/s and the masks frozen ----

/// One fake quantizer frozen at a base point: q(v, s) = v + s·r inside, s·bound outside, with
/// r = round(v₀/s₀) − v₀/s₀ and the masks of v₀. Its true derivatives are the STE (∂/∂v) and
/// LSQ (∂/∂s) gradients, and at the base point it is the fake quantization.
class Frozen {
 public:
  Frozen() = default;
  Frozen(std::span<const double> v, const std::function<double(std::size_t)>& step,
         const quant::CodeRange& codes) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double x = v[i] / step(i);
      const bool in = x > -codes.qn && x < codes.qp;
      inside_.push_back(in);
      residual_.push_back(std::nearbyint(x) - x);
      bound_.push_back(x <= -codes.qn ? -codes.qn : codes.qp);
      clamped_ += in ? 0 : 1;
    }
  }
  [[nodiscard]] double operator()(std::size_t i, double v, double s) const {
    return inside_[i] ? v + s * residual_[i] : s * bound_[i];
  }
  [[nodiscard]] int clamped() const { return clamped_; }
  [[nodiscard]] std::size_t size() const { return inside_.size(); }

 private:
  std::vector<bool> inside_;
  std::vector<double> residual_;
  std::vector<double> bound_;
  int clamped_ = 0;
};

std::span<const double> values_of(const Matrix<double>& m) {
  return {m.data(), static_cast<std::size_t>(m.size())};
}
std::span<const double> values_of(const Vector<double>& v) {
  return {v.data(), static_cast<std::size_t>(v.size())};
}

/// Central differences of f at every entry of `at` (perturbed in place).
template <class F>
Vector<double> finite_differences(Vector<double>& at, F&& f, double h = 1e-6) {
  Vector<double> d(at.size());
  for (Index i = 0; i < at.size(); ++i) {
    const double v = at[i];
    at[i] = v + h;
    const double plus = f();
    at[i] = v - h;
    const double minus = f();
    at[i] = v;
    d[i] = (plus - minus) / (2 * h);
  }
  return d;
}

/// A double QatLayer with input, weight and output quantizers on (steps shrunk so that some
/// values of each clamp; `shrink` scales the calibrated output step): its dx, dW, db, weight-step
/// and output-step gradients against finite differences of the surrogate J = Σ R ⊙
/// q_out(layer(q_w(W, s_w), b; q_in(x))) (step gradients divided by LSQ's scale g).
template <class Inner>
void check_layer_against_surrogate(Rng& rng, int weight_bits, int output_bits, double shrink) {
  using Layer = quant::QatLayer<Inner>;
  constexpr Index in_size = Layer::input_shape::size;
  constexpr Index out_size = Layer::output_shape::size;
  constexpr Index channels = Layer::out_channels;
  constexpr Index per_channel = Layer::weights_per_channel;
  const Index batch = 3;

  Layer layer;
  Rng init = make_stream(3, "qat surrogate init");
  layer.initialize(nn::init::kaiming_normal, init);
  Matrix<double> bias_values = random_matrix(channels, 1, rng, 0.3).template cast<double>();
  tensor(layer, "bias").value = bias_values.col(0);
  const Matrix<double> x = random_matrix(in_size, batch, rng).template cast<double>();

  // input: 4-bit affine over [−1, 1.5] (the N(0, 1) input clamps on both sides)
  const quant::ActivationParams input =
      quant::ActivationParams::from_quantizer(quant::Affine<4>::from_range(-1.0F, 1.5F));
  layer.enable_input_quantization(input);
  layer.enable_weight_quantization(weight_bits);
  layer.initialize_weight_steps();
  tensor(layer, "weight_step").value *= 0.5;  // some weights clamp
  layer.enable_output_quantization(output_bits);
  layer.set_calibrating(true);
  (void)layer.forward(batch_view(x));
  layer.set_calibrating(false);
  tensor(layer, "output_step").value *= shrink;  // some outputs clamp

  // the analytic gradients
  const Matrix<double> r = random_matrix(out_size, batch, rng).template cast<double>();
  for_each_parameter(layer, [](std::string_view, Parameter<double>& p) { p.zero_grad(); });
  (void)layer.forward(batch_view(x));
  const Matrix<double> dx = layer.backward(batch_view(r));
  // the overwriting backward and the parameter-only backwards give the same gradients
  std::vector<Vector<double>> accumulated;
  for_each_parameter(layer, [&](std::string_view, Parameter<double>& p) {
    accumulated.push_back(p.grad);
    p.grad.setConstant(7.0);
  });
  const auto check_gradients = [&] {
    std::size_t i = 0;
    for_each_parameter(layer, [&](std::string_view name, Parameter<double>& p) {
      CAPTURE(name);
      CHECK(p.grad == accumulated[i++]);
      p.grad.setConstant(7.0);
    });
  };
  (void)layer.forward(batch_view(x));
  CHECK(Matrix<double>(layer.backward(batch_view(r), nn::overwrite_gradients)) == dx);
  check_gradients();
  (void)layer.forward(batch_view(x));
  layer.backward_parameters(batch_view(r), nn::overwrite_gradients);
  check_gradients();
  for_each_parameter(layer, [](std::string_view, Parameter<double>& p) { p.zero_grad(); });
  (void)layer.forward(batch_view(x));
  layer.backward_parameters(batch_view(r));
  check_gradients();
  std::size_t restored = 0;
  for_each_parameter(
      layer, [&](std::string_view, Parameter<double>& p) { p.grad = accumulated[restored++]; });

  // the surrogate, frozen at the base point
  Vector<double> w = tensor(layer, "weight").value;
  Vector<double> b = tensor(layer, "bias").value;
  Vector<double> sw = tensor(layer, "weight_step").value;
  Vector<double> so = tensor(layer, "output_step").value;
  Vector<double> xv = x.reshaped();
  const auto s_in = static_cast<double>(input.scale);
  const quant::CodeRange w_codes = quant::narrow_codes(weight_bits);
  const quant::CodeRange o_codes = quant::signed_codes(output_bits);
  const Frozen frozen_x(
      values_of(xv), [&](std::size_t) { return s_in; }, quant::codes_of(input));
  const Frozen frozen_w(
      values_of(w), [&](std::size_t k) { return sw[static_cast<Index>(k) / per_channel]; },
      w_codes);
  Inner reference;
  const auto pre_activation = [&] {
    Matrix<double> x_hat(in_size, batch);
    for (Index i = 0; i < x_hat.size(); ++i) {
      x_hat(i) = frozen_x(static_cast<std::size_t>(i), xv[i], s_in);
    }
    auto own = reference.parameters();
    for (Index k = 0; k < w.size(); ++k) {
      own[0].value[k] = frozen_w(static_cast<std::size_t>(k), w[k], sw[k / per_channel]);
    }
    own[1].value = b;
    return Matrix<double>(reference.forward(batch_view(x_hat)));
  };
  const Matrix<double> v0 = pre_activation();
  const Frozen frozen_v(
      values_of(v0), [&](std::size_t) { return so[0]; }, o_codes);
  const auto objective = [&] {
    const Matrix<double> v = pre_activation();
    double j = 0;
    for (Index i = 0; i < v.size(); ++i) {
      j += r(i) * frozen_v(static_cast<std::size_t>(i), v(i), so[0]);
    }
    return j;
  };
  // each quantizer both passes and clamps something
  CHECK(frozen_x.clamped() > 0);
  CHECK(frozen_x.clamped() < static_cast<int>(frozen_x.size()));
  CHECK(frozen_w.clamped() > 0);
  CHECK(frozen_w.clamped() < static_cast<int>(frozen_w.size()));
  CHECK(frozen_v.clamped() > 0);
  CHECK(frozen_v.clamped() < static_cast<int>(frozen_v.size()));
  // at the base point the surrogate is the layer
  const Matrix<double> y = layer.forward(batch_view(x));
  double j_layer = 0;
  for (Index i = 0; i < y.size(); ++i) {
    j_layer += r(i) * y(i);
  }
  CHECK(objective() == doctest::Approx(j_layer).epsilon(1e-9));
  (void)layer.forward(batch_view(x));  // as backward saw it

  const double g_w = quant::lsq_gradient_scale<double>(per_channel, w_codes);
  const double g_o = quant::lsq_gradient_scale<double>(out_size, o_codes);
  CHECK(test::relative_error(dx.reshaped(), finite_differences(xv, objective)) < 1e-6);
  CHECK(test::relative_error(tensor(layer, "weight").grad, finite_differences(w, objective)) <
        1e-6);
  CHECK(test::relative_error(tensor(layer, "bias").grad, finite_differences(b, objective)) < 1e-6);
  CHECK(test::relative_error(tensor(layer, "weight_step").grad / g_w,
                             finite_differences(sw, objective)) < 1e-6);
  CHECK(test::relative_error(tensor(layer, "output_step").grad / g_o,
                             finite_differences(so, objective)) < 1e-6);
}

// ---- what prepare_qat sets ----

/// One layer's quantizers as prepare_qat should set them.
struct Expected {
  std::string path;
  bool input = false;
  int weight_bits = 0;  // 0: not a Dense/Conv2D
  int output_bits = 0;  // 0: output not quantized
};

template <class QatNet>
void check_plan(const QatNet& qat, const std::vector<Expected>& expected) {
  std::size_t i = 0;
  nn::for_each_layer(qat, [&](std::string_view path, const auto& layer) {
    using L = std::remove_cvref_t<decltype(layer)>;
    REQUIRE(i < expected.size());
    const Expected& e = expected[i++];
    CAPTURE(path);
    CHECK(path == e.path);
    if constexpr (quant::is_qat_layer_v<L>) {
      CHECK(layer.quantizes_weights());
      CHECK(layer.weight_bits() == e.weight_bits);
      CHECK(layer.quantizes_input() == e.input);
    } else {
      CHECK(e.weight_bits == 0);
    }
    if constexpr (quant::is_qat_layer_v<L> || quant::is_qat_relu_layer_v<L>) {
      CHECK(layer.quantizes_output() == (e.output_bits != 0));
      if (e.output_bits != 0) {
        CHECK(layer.output_bits() == e.output_bits);
        const quant::ActivationParams p = layer.output_params();
        CHECK_NOTHROW(p.check("output"));
        CHECK(p.bits == e.output_bits);
        // signed codes for a Dense/Conv2D's own output, unsigned (zero point −128) after a ReLU
        CHECK(p.zero_point == (quant::is_qat_layer_v<L> ? 0 : -128));
      }
    } else {
      CHECK(e.output_bits == 0);
    }
  });
  CHECK(i == expected.size());
}

/// Weights carried over, weight steps by LSQ's rule from them, the input quantizer by min-max,
/// and every activation step by LSQ's rule from the values its quantizer saw in a forward of the
/// calibration batch; and each layer's output is exactly the integer container's round trip of
/// what it computes with Ŵ (recomputed here with a fresh float layer).
template <class QatNet, class Net>
void check_prepared(QatNet& qat, const Net& net, const Matrix<float>& calibration) {
  check_same_tensors(net, qat, false);
  const quant::ActivationParams input = quant::ActivationParams::from_quantizer(
      quant::Affine<8>::from_range(calibration.minCoeff(), calibration.maxCoeff()));

  std::map<std::string, Matrix<float>, std::less<>> outputs;
  (void)qat.forward(calibration,
                    [&](std::string_view path, const auto&, const ConstBatchView<float>& y) {
                      outputs[std::string(path)] = y;
                    });
  Matrix<float> previous = calibration;
  int quantized_outputs = 0;
  nn::for_each_layer(qat, [&](std::string_view path, const auto& layer) {
    using L = std::remove_cvref_t<decltype(layer)>;
    CAPTURE(path);
    const Matrix<float>& y = outputs.at(std::string(path));
    if constexpr (quant::is_qat_layer_v<L>) {
      // weight steps: 2·mean|W[c]| / √Q_P, over the kept weights of a pruned layer
      const Parameter<float>& weight = layer.inner().parameters()[0];
      const Vector<float>& w = weight.value;
      const quant::CodeRange codes = quant::narrow_codes(layer.weight_bits());
      for (Index c = 0; c < L::out_channels; ++c) {
        double sum = 0;
        double kept = 0;
        for (Index k = c * L::weights_per_channel; k < (c + 1) * L::weights_per_channel; ++k) {
          const bool pruned = weight.masked() && weight.mask[k] == 0.0F;
          sum += pruned ? 0.0 : std::abs(double{w[k]});
          kept += pruned ? 0.0 : 1.0;
        }
        CHECK(layer.weight_steps()[static_cast<std::size_t>(c)] ==
              doctest::Approx(2 * sum / kept / std::sqrt(double(codes.qp))).epsilon(1e-5));
      }
      Matrix<float> x_hat = previous;
      if (layer.quantizes_input()) {
        CHECK(layer.input_params().scale == input.scale);
        CHECK(layer.input_params().zero_point == input.zero_point);
        CHECK(layer.input_params().qmin == input.qmin);
        CHECK(layer.input_params().qmax == input.qmax);
        x_hat = x_hat.unaryExpr([&](float v) { return input.dequantize(input.quantize(v)); });
      }
      typename L::inner_type reference = layer.inner();
      quant::fake_quantize_channels<float>(
          {w.data(), static_cast<std::size_t>(w.size())}, layer.weight_steps(), codes,
          {reference.parameters()[0].value.data(), static_cast<std::size_t>(w.size())});
      const Matrix<float> v = reference.forward(batch_view(x_hat));
      if (layer.quantizes_output()) {
        ++quantized_outputs;
        const quant::ActivationParams p = layer.output_params();
        CHECK(layer.output_step() ==
              doctest::Approx(
                  quant::lsq_initial_step<double>(v.cwiseAbs().mean(), quant::signed_codes(p.bits)))
                  .epsilon(1e-5));
        CHECK(y == v.unaryExpr([&](float a) { return p.dequantize(p.quantize(a)); }));
      } else {
        CHECK(y == v);
      }
    } else if constexpr (quant::is_qat_relu_layer_v<L>) {
      const Matrix<float> relu = previous.cwiseMax(0.0F);
      if (layer.quantizes_output()) {
        ++quantized_outputs;
        const quant::ActivationParams p = layer.output_params();
        CHECK(layer.output_step() ==
              doctest::Approx(quant::lsq_initial_step<double>(relu.cwiseAbs().mean(),
                                                              quant::unsigned_codes(p.bits)))
                  .epsilon(1e-5));
        CHECK(y == relu.unaryExpr([&](float a) { return p.dequantize(p.quantize(a)); }));
      } else {
        CHECK(y == relu);
      }
    }
    previous = y;
  });
  CHECK(quantized_outputs > 0);
}

/// Three Gaussian blobs in 2-D, n samples.
struct Blobs {
  Matrix<float> x;
  std::vector<std::int32_t> labels;
};
Blobs make_blobs(Index n, Rng& rng) {
  Blobs b{Matrix<float>(2, n), std::vector<std::int32_t>(static_cast<std::size_t>(n))};
  const double cx[3] = {-2.0, 2.0, 0.0};
  const double cy[3] = {-1.5, -1.5, 2.0};
  for (Index i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i % 3);
    b.labels[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(k);
    b.x(0, i) = static_cast<float>(cx[k] + 0.6 * standard_normal(rng));
    b.x(1, i) = static_cast<float>(cy[k] + 0.6 * standard_normal(rng));
  }
  return b;
}

template <class Net>
double accuracy(Net& net, const Blobs& data) {
  const Matrix<float> out = net.forward(data.x);
  Index correct = 0;
  for (Index i = 0; i < out.cols(); ++i) {
    Index k = 0;
    out.col(i).maxCoeff(&k);
    correct += k == data.labels[static_cast<std::size_t>(i)] ? 1 : 0;
  }
  return static_cast<double>(correct) / static_cast<double>(out.cols());
}

}  // namespace

TEST_CASE("qat layers: with every quantizer off the network is the float network, bit for bit") {
  Rng rng = make_stream(11, "qat disabled");
  check_disabled_is_float<Mlp>(rng);
  check_disabled_is_float<ConvNet>(rng);
}

TEST_CASE("qat layers: gradients are the surrogate's by finite differences (STE and LSQ)") {
  Rng rng = make_stream(12, "qat surrogate");
  SUBCASE("Dense, 4-bit weights, 8-bit output") {
    check_layer_against_surrogate<nn::DenseLayer<double, 6, 5, true>>(rng, 4, 8, 0.08);
  }
  SUBCASE("Dense, 3-bit weights, 3-bit output") {
    check_layer_against_surrogate<nn::DenseLayer<double, 6, 5, true>>(rng, 3, 3, 0.5);
  }
  SUBCASE("Conv2D with padding, 4-bit weights, 5-bit output") {
    check_layer_against_surrogate<nn::Conv2DLayer<double, Shape<2, 5, 5>, 3, 3, 1, 1, true>>(
        rng, 4, 5, 0.3);
  }
}

TEST_CASE("qat layers: the ReLU's unsigned quantizer against its surrogate") {
  Rng rng = make_stream(13, "qat relu");
  quant::QatReluLayer<double, Shape<12>> relu;
  const Matrix<double> x = test::random_batch(12, 4, rng, 0.05);
  relu.enable_output_quantization(3);  // Q_P = 7
  relu.set_calibrating(true);
  (void)relu.forward(batch_view(x));
  relu.set_calibrating(false);
  const double mean = x.cwiseMax(0.0).mean();
  CHECK(relu.output_step() == doctest::Approx(2 * mean / std::sqrt(7.0)));
  tensor(relu, "output_step").value *= 0.6;
  const Matrix<double> r = test::random_batch(12, 4, rng);
  tensor(relu, "output_step").zero_grad();
  (void)relu.forward(batch_view(x));
  const Matrix<double> dx = relu.backward(batch_view(r));

  Vector<double> xv = x.reshaped();
  Vector<double> s = tensor(relu, "output_step").value;
  const quant::CodeRange codes = quant::unsigned_codes(3);
  const Vector<double> relu0 = xv.cwiseMax(0.0);
  const Frozen frozen(
      values_of(relu0), [&](std::size_t) { return s[0]; }, codes);
  CHECK(frozen.clamped() > 0);
  const auto objective = [&] {
    double j = 0;
    for (Index i = 0; i < xv.size(); ++i) {
      j += r(i) * frozen(static_cast<std::size_t>(i), std::max(xv[i], 0.0), s[0]);
    }
    return j;
  };
  const double g = quant::lsq_gradient_scale<double>(12, codes);
  CHECK(test::relative_error(dx.reshaped(), finite_differences(xv, objective)) < 1e-6);
  CHECK(test::relative_error(tensor(relu, "output_step").grad / g,
                             finite_differences(s, objective)) < 1e-6);
  CHECK_THROWS_AS(relu.enable_output_quantization(1), argument_error);
  CHECK_THROWS_AS(relu.enable_output_quantization(9), argument_error);
}

TEST_CASE("qat prepare: an MLP, by the fusion rule, with 8-bit ends and 4 bits elsewhere") {
  Rng rng = make_stream(14, "qat prepare mlp");
  Mlp net{nn::init::kaiming_normal, rng};
  // layer 2 pruned: every other weight (the mask carries over; its steps count kept weights)
  Parameter<float>& pruned = net.layer<2>().parameters()[0];
  pruned.mask = Vector<float>::NullaryExpr(pruned.size(), [](Index k) { return float(k % 2); });
  pruned.apply_mask();
  const Matrix<float> calibration = random_matrix(4, 32, rng, 2.0);
  const quant::Precision precision = quant::eight_bit_ends(net, 4);
  CHECK(precision.input_bits == 8);
  CHECK(precision.weight_bits == 4);
  CHECK(precision.activation_bits == 4);
  REQUIRE(precision.layers.size() == 2);
  CHECK(precision.layers[0].layer == "0");
  CHECK(precision.layers[0].weight_bits == 8);
  CHECK(!precision.layers[0].activation_bits);
  CHECK(precision.layers[1].layer == "5");
  CHECK(precision.layers[1].weight_bits == 8);
  CHECK(precision.layers[1].activation_bits == 8);

  QatMlp qat;
  quant::prepare_qat(qat, net, calibration, precision);
  // 0 Dense (input, 8-bit weights; output after ReLU 1), 2 Dense followed by a Dense (its own
  // signed output), 3 Dense (output after ReLU 4), 5 the last Dense (8-bit weights and logits)
  check_plan(qat, {{"0", true, 8, 0},
                   {"1", false, 0, 4},
                   {"2", false, 4, 4},
                   {"3", false, 4, 0},
                   {"4", false, 0, 4},
                   {"5", false, 8, 8}});
  check_prepared(qat, net, calibration);
  const Parameter<float>& carried = qat.layer<2>().inner().parameters()[0];
  CHECK(carried.mask == pruned.mask);
  // a training step keeps the pruned weights at 0 (the optimizer enforces the carried mask)
  nn::Trainer trainer{qat};
  nn::SGD opt{{.learning_rate = 0.1}};
  const std::vector<std::int32_t> labels(32, 1);
  (void)trainer.step(opt, batch_view(calibration), labels);
  CHECK((carried.value.array() * (1.0F - carried.mask.array())).isZero(0.0F));
  CHECK(!carried.value.isZero());

  // preparing again with other bits reconfigures every quantizer
  quant::prepare_qat(qat, net, calibration,
                     {.input_bits = 6,
                      .weight_bits = 5,
                      .activation_bits = 7,
                      .layers = {{.layer = "3", .weight_bits = {}, .activation_bits = 2}}});
  check_plan(qat, {{"0", true, 5, 0},
                   {"1", false, 0, 7},
                   {"2", false, 5, 7},
                   {"3", false, 5, 0},
                   {"4", false, 0, 2},
                   {"5", false, 5, 7}});
  CHECK(qat.layer<0>().input_params().bits == 6);
  CHECK(qat.layer<0>().input_params().qmax - qat.layer<0>().input_params().qmin == 63);
}

TEST_CASE("qat prepare: a conv net; pooling and flatten pass codes through") {
  Rng rng = make_stream(15, "qat prepare conv");
  const ConvNet net{nn::init::kaiming_normal, rng};
  const Matrix<float> calibration = random_matrix(36, 16, rng);
  QatConvNet qat;
  quant::prepare_qat(qat, net, calibration, quant::eight_bit_ends(net, 4));
  check_plan(qat, {{"0", true, 8, 0},
                   {"1", false, 0, 4},
                   {"2", false, 0, 0},
                   {"3", false, 0, 0},
                   {"4", false, 8, 8}});
  check_prepared(qat, net, calibration);
  // the converter's view: tensors by name, one weight step per output channel
  CHECK(qat.layer<0>().weight_steps().size() == 4);
  CHECK(qat.layer<4>().weight_steps().size() == 3);
  std::vector<std::string> names;
  qat.for_each_tensor(
      [&](std::string_view name, const Parameter<float>&) { names.emplace_back(name); });
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "0.weight_step", "0.output_step",
                                          "1.output_step", "4.weight", "4.bias", "4.weight_step",
                                          "4.output_step"});
  CHECK(tensor(qat, "0.weight_step").role == ParameterRole::scale);
  // a one-layer network: its only layer is first and last
  using Single = nn::Sequential<nn::Dense<36, 3>>;
  const Single single{nn::init::kaiming_normal, rng};
  const quant::Precision p = quant::eight_bit_ends(single, 3);
  REQUIRE(p.layers.size() == 1);
  CHECK(p.layers[0].weight_bits == 8);
  CHECK(p.layers[0].activation_bits == 8);
}

TEST_CASE("qat train: a 4-bit QAT network learns with nn::Trainer and nn::SGD, steps move") {
  Rng rng = make_stream(16, "qat train");
  using Net =
      nn::Sequential<nn::Dense<2, 16>, nn::ReLU, nn::Dense<16, 16>, nn::ReLU, nn::Dense<16, 3>>;
  const Net net{nn::init::kaiming_normal, rng};
  const Blobs data = make_blobs(150, rng);
  quant::qat_network_t<Net> qat;
  quant::prepare_qat(qat, net, data.x, {.input_bits = 8, .weight_bits = 4, .activation_bits = 4});
  const ParameterSet<float> before(qat);
  const double accuracy_before = accuracy(qat, data);

  nn::Trainer trainer{qat};
  nn::SGD opt{{.learning_rate = 0.05, .momentum = 0.9}};
  double first_loss = 0;
  double last_loss = 0;
  for (int step = 0; step < 150; ++step) {
    const float loss = trainer.step(opt, batch_view(data.x), data.labels);
    (step == 0 ? first_loss : last_loss) = loss;
  }
  const double accuracy_after = accuracy(qat, data);
  MESSAGE("4-bit QAT accuracy " << accuracy_before << " -> " << accuracy_after << ", loss "
                                << first_loss << " -> " << last_loss);
  CHECK(last_loss < 0.5 * first_loss);
  CHECK(accuracy_after > 0.9);
  CHECK(accuracy_after > accuracy_before + 0.2);
  const ParameterSet<float> after(qat);
  int moved_steps = 0;
  for (const TensorSlot& slot : after.layout().tensors()) {
    if (slot.name.ends_with("_step")) {
      CAPTURE(slot.name);
      const bool moved = after.tensor(slot.name) != before.tensor(slot.name);
      moved_steps += moved ? 1 : 0;
    }
  }
  CHECK(moved_steps >= 5);  // 3 weight steps, 2 ReLU outputs and the logits' step all learn
  nn::for_each_layer(qat, [](std::string_view, const auto& layer) {
    if constexpr (quant::is_qat_layer_v<std::remove_cvref_t<decltype(layer)>>) {
      CHECK(layer.weight_bits() == 4);
      for (const float s : layer.weight_steps()) {
        CHECK(s > 0);
      }
    }
  });
}

TEST_CASE("qat errors: bit widths outside 2..8, bad overrides, NaN calibration, negative steps") {
  Rng rng = make_stream(17, "qat errors");
  const Mlp net{nn::init::kaiming_normal, rng};
  const Matrix<float> calibration = random_matrix(4, 8, rng);
  QatMlp qat;
  const auto message = [&](const quant::Precision& p) -> std::string {
    try {
      quant::prepare_qat(qat, net, calibration, p);
    } catch (const argument_error& e) {
      return e.what();
    }
    return "no error";
  };
  CHECK(message({.input_bits = 8, .weight_bits = 9, .activation_bits = 8, .layers = {}}) !=
        "no error");
  CHECK(message({.input_bits = 1, .weight_bits = 8, .activation_bits = 8, .layers = {}}) !=
        "no error");
  CHECK(message({.input_bits = 8, .weight_bits = 8, .activation_bits = 0, .layers = {}}) !=
        "no error");
  const std::string bad_layer =
      message({.input_bits = 8,
               .weight_bits = 8,
               .activation_bits = 8,
               .layers = {{.layer = "2", .weight_bits = 1, .activation_bits = {}}}});
  CHECK(bad_layer.find("'2'") != std::string::npos);
  CHECK(bad_layer.find("bits") != std::string::npos);
  CHECK(message({.input_bits = 8,
                 .weight_bits = 8,
                 .activation_bits = 8,
                 .layers = {{.layer = "3", .weight_bits = {}, .activation_bits = 12}}})
            .find("'3'") != std::string::npos);
  CHECK(message({.input_bits = 8,
                 .weight_bits = 8,
                 .activation_bits = 8,
                 .layers = {{.layer = "1", .weight_bits = 4, .activation_bits = {}}}})
            .find("not a Dense or Conv2D") != std::string::npos);
  CHECK(message({.input_bits = 8,
                 .weight_bits = 8,
                 .activation_bits = 8,
                 .layers = {{.layer = "9", .weight_bits = 4, .activation_bits = {}}}})
            .find("'9'") != std::string::npos);
  CHECK(message({.input_bits = 8,
                 .weight_bits = 8,
                 .activation_bits = 8,
                 .layers = {{.layer = "0", .weight_bits = 4, .activation_bits = {}},
                            {.layer = "0", .weight_bits = 5, .activation_bits = {}}}})
            .find("twice") != std::string::npos);
  CHECK_THROWS_AS((void)quant::eight_bit_ends(net, 9), argument_error);
  CHECK_THROWS_AS(qat.layer<0>().enable_weight_quantization(9), argument_error);
  CHECK_THROWS_AS(qat.layer<0>().enable_output_quantization(1), argument_error);
  // nothing above changed the network: every quantizer is still off
  CHECK(!qat.layer<0>().quantizes_weights());
  CHECK(!qat.layer<1>().quantizes_output());

  Matrix<float> with_nan = calibration;
  with_nan(2, 3) = std::nanf("");
  CHECK_THROWS_WITH_AS(quant::prepare_qat(qat, net, with_nan), doctest::Contains("1 NaN"),
                       argument_error);
  CHECK_THROWS_AS(quant::prepare_qat(qat, net, Matrix<float>(3, 8)), shape_error);
  CHECK(!qat.layer<0>().quantizes_weights());

  // a step pushed below zero (a too large learning rate) stops the next forward
  quant::prepare_qat(qat, net, calibration);
  tensor(qat, "2.weight_step").value[1] = -0.01F;
  CHECK_THROWS_AS((void)qat.forward(calibration), error);
  quant::prepare_qat(qat, net, calibration);
  tensor(qat, "1.output_step").value[0] = 0.0F;
  CHECK_THROWS_AS((void)qat.forward(calibration), error);
}

}  // namespace edgescale
