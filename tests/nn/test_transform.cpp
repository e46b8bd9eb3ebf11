// Spec transforms: a user-written Wrap<Spec> that gives every Dense and Conv2D (inside Residual
// bodies too) an extra trained tensor; weights carried over by name; the wrapped network's
// gradients match finite differences and it trains. rebind_scalar_t is the scalar-only transform.
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/loss.hpp>
#include <edgescale/nn/optim/sgd.hpp>
#include <edgescale/nn/residual.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/nn/train.hpp>
#include <edgescale/nn/transform.hpp>

#include "nn/gradcheck.hpp"
#include <doctest/doctest.h>

#include <string>
#include <type_traits>
#include <vector>

using namespace edgescale;

namespace {

/// A user's layer wrapper: y = g ⊙ inner(x), with a trained gain g per output value, named "gain"
/// beside the inner layer's own tensors (which keep their names, so weights move over by name).
template <class T, class Inner>
class GainedLayer {
 public:
  using scalar_type = T;
  using input_shape = typename Inner::input_shape;
  using output_shape = typename Inner::output_shape;
  static constexpr Index size = output_shape::size;

  GainedLayer() { gain_.value.setOnes(); }

  template <class Scheme>
  void initialize(const Scheme& scheme, Rng& rng) {
    inner_.initialize(scheme, rng);
    gain_.value.setOnes();
  }
  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    h_ = inner_.forward(x);
    y_ = h_.array().colwise() * gain_.value.array();
    return batch_view(y_);
  }
  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    gain_.grad += (dy.array() * h_.array()).rowwise().sum().matrix();
    dh_ = dy.array().colwise() * gain_.value.array();
    return inner_.backward(batch_view(dh_));
  }
  template <class F>
  void for_each_tensor(F&& f) {
    edgescale::for_each_tensor(inner_, f);
    f("gain", gain_);
  }
  Inner& inner() { return inner_; }

 private:
  Inner inner_;
  Parameter<T> gain_{"gain", {size}, ParameterRole::scale};
  Matrix<T> h_, y_, dh_;
};

template <class Inner>
struct GainedInput {};
template <class Inner>
  requires requires {
    typename Inner::input_shape;
  }
struct GainedInput<Inner> {
  using input_shape = typename Inner::input_shape;
};

/// The spec of a gained layer: accepts what the inner spec accepts.
template <class Inner>
struct Gained : GainedInput<Inner> {
  template <StaticShape S>
  static constexpr bool accepts = Inner::template accepts<S>;
  template <class T, StaticShape S>
  using layer = GainedLayer<T, typename Inner::template layer<T, S>>;
};

/// The Wrap: Dense and Conv2D get a gain, everything else stays.
template <class Spec>
struct AddGain {
  using type = Spec;
};
template <int In, int Out, class... Options>
struct AddGain<nn::Dense<In, Out, Options...>> {
  using type = Gained<nn::Dense<In, Out, Options...>>;
};
template <int Cin, int Cout, int K, class... Options>
struct AddGain<nn::Conv2D<Cin, Cout, K, Options...>> {
  using type = Gained<nn::Conv2D<Cin, Cout, K, Options...>>;
};

template <class T>
using Plain = nn::BasicSequential<T, nn::Input<1, 6, 6>, nn::Conv2D<1, 2, 3>, nn::ReLU,
                                  nn::Residual<nn::Conv2D<2, 2, 3, nn::Pad<1>>, nn::Tanh>,
                                  nn::Flatten, nn::Dense<32, 3>>;
template <class T>
using Wrapped = nn::transform_specs_t<Plain<T>, AddGain>;

static_assert(std::is_same_v<Wrapped<float>::output_shape, Shape<3>>);
static_assert(!nn::is_conv2d_layer_v<Wrapped<float>::layer_type<0>>);
static_assert(
    nn::is_conv2d_layer_v<
        std::remove_cvref_t<decltype(std::declval<Wrapped<float>::layer_type<0>&>().inner())>>);
static_assert(
    std::is_same_v<nn::transform_specs_t<Plain<float>, std::type_identity>, Plain<float>>);
static_assert(std::is_same_v<nn::rebind_scalar_t<Plain<float>, double>, Plain<double>>);
static_assert(nn::Network<Wrapped<double>>);

std::vector<std::string> names_of(const auto& net) {
  std::vector<std::string> names;
  for_each_tensor(net, [&](std::string_view n, const auto&) { names.emplace_back(n); });
  return names;
}

}  // namespace

TEST_CASE("transform_specs_t wraps every Dense and Conv2D, inside Residual bodies too") {
  const Wrapped<float> wrapped;
  CHECK(names_of(wrapped) ==
        std::vector<std::string>{"0.weight", "0.bias", "0.gain", "2.body.0.weight", "2.body.0.bias",
                                 "2.body.0.gain", "4.weight", "4.bias", "4.gain"});
}

TEST_CASE("weights move to the wrapped network by name; the added tensors are left to it") {
  Rng rng = make_stream(1, "wrap");
  Plain<double> plain{nn::init::kaiming_normal, rng};
  Wrapped<double> wrapped;
  copy_tensors(plain, wrapped, TensorMatch::target_extra);
  const Matrix<double> x = test::random_batch(36, 4, rng);
  CHECK((wrapped.forward(x) - plain.forward(x)).cwiseAbs().maxCoeff() < 1e-14);  // gains are 1
  CHECK_THROWS_AS(copy_tensors(plain, wrapped), shape_error);  // exact: the gains have no source

  // and back: the wrapped network's weights, without its gains
  Plain<double> back;
  CHECK_THROWS_AS(copy_tensors(wrapped, back, TensorMatch::target_extra), shape_error);
  copy_tensors(wrapped, back, TensorMatch::source_extra);
  CHECK(back.forward(x) == plain.forward(x));
}

TEST_CASE("the wrapped network's gradients match finite differences, gains included") {
  Rng rng = make_stream(2, "wrap grad");
  Wrapped<double> net{nn::init::kaiming_normal, rng};
  for_each_parameter(net, [&](std::string_view name, Parameter<double>& p) {
    if (name.ends_with("gain")) {
      for (Index i = 0; i < p.size(); ++i) {
        p.value[i] = 0.5 + uniform01(rng);
      }
    }
  });
  const Matrix<double> x = test::random_batch(36, 3, rng, 0.05);
  const auto r = test::gradient_check(net, x, rng);
  CHECK(r.input_error < 1e-6);
  REQUIRE(r.names.size() == 9);
  CHECK(r.names[2] == "0.gain");
  for (std::size_t i = 0; i < r.names.size(); ++i) {
    INFO(r.names[i]);
    CHECK(r.parameter_errors[i] < 1e-6);
  }
}

TEST_CASE("the wrapped network trains") {
  Rng rng = make_stream(3, "wrap train");
  Wrapped<float> net{nn::init::kaiming_normal, rng};
  Matrix<float> x(36, 24);
  std::vector<std::int32_t> y(24);
  for (Index n = 0; n < 24; ++n) {
    const auto label = static_cast<std::int32_t>(n % 3);
    y[static_cast<std::size_t>(n)] = label;
    for (Index i = 0; i < 36; ++i) {
      x(i, n) = static_cast<float>(0.3 * standard_normal(rng) + (i % 3 == label ? 1.0 : 0.0));
    }
  }
  nn::Trainer trainer{net};
  nn::SGD opt{{.learning_rate = 0.05, .momentum = 0.9}};
  const float first = trainer.step(opt, batch_view(x), nn::Labels(y));
  float last = first;
  for (int step = 0; step < 60; ++step) {
    last = trainer.step(opt, batch_view(x), nn::Labels(y));
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.1F * first);
  // the gains moved: they are trained like any parameter
  const ParameterSet<float> set(net);
  CHECK(!set.tensor("4.gain").isOnes());
}
