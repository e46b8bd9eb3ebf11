// Optimizers against PyTorch trajectories (scripts/fixtures/make_optimizer_fixtures.py) and the
// masking contract.
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/loss.hpp>
#include <edgescale/nn/optim/adam.hpp>
#include <edgescale/nn/optim/schedule.hpp>
#include <edgescale/nn/optim/sgd.hpp>
#include <edgescale/nn/sequential.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

/// The smallest thing an optimizer steps: one tensor.
struct OneTensor {
  using scalar_type = double;
  Parameter<double> p{"weight", {6}, ParameterRole::weight};
  template <class F>
  void for_each_parameter(F&& f) {
    f("weight", p);
  }
};

double initial(int i) {
  return 0.5 * std::sin(1.0 + i) + (i % 2 ? 0.25 : -0.25);
}
double gradient(int i, int t, double p) {
  return std::cos(0.7 * i + 1.3 * t) + 0.3 * p;
}

std::vector<std::vector<double>> read_fixture(const std::string& name) {
  std::ifstream in(std::string(EDGESCALE_TEST_DATA_DIR) + "/optim/" + name + ".txt");
  REQUIRE_MESSAGE(in.good(), "missing fixture " << name);
  std::vector<std::vector<double>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    rows.emplace_back();
    double v = 0;
    while (s >> v)
      rows.back().push_back(v);
  }
  return rows;
}

template <class Opt>
void check_against_pytorch(Opt opt, const std::string& name) {
  const auto expected = read_fixture(name);
  REQUIRE(expected.size() == 6);
  OneTensor net;
  for (int i = 0; i < 6; ++i)
    net.p.value[i] = initial(i);
  for (int t = 1; t <= 6; ++t) {
    for (int i = 0; i < 6; ++i)
      net.p.grad[i] = gradient(i, t, net.p.value[i]);
    opt.step(net);
    for (int i = 0; i < 6; ++i) {
      INFO(name << " step " << t << " index " << i);
      CHECK(net.p.value[i] ==
            doctest::Approx(expected[static_cast<std::size_t>(t - 1)][static_cast<std::size_t>(i)])
                .epsilon(1e-12));
    }
  }
}

}  // namespace

TEST_CASE("SGD matches torch.optim.SGD") {
  check_against_pytorch(nn::SGD{{.learning_rate = 0.1}}, "sgd_plain");
  check_against_pytorch(nn::SGD{{.learning_rate = 0.1, .momentum = 0.9, .weight_decay = 0.01}},
                        "sgd_momentum_wd");
  check_against_pytorch(
      nn::SGD{{.learning_rate = 0.05, .momentum = 0.8, .nesterov = true, .weight_decay = 0.1}},
      "sgd_nesterov_wd");
}

TEST_CASE("Adam and AdamW match torch.optim") {
  check_against_pytorch(nn::Adam{{.learning_rate = 0.01}}, "adam");
  check_against_pytorch(nn::Adam{{.learning_rate = 0.02,
                                  .beta1 = 0.8,
                                  .beta2 = 0.99,
                                  .epsilon = 1e-6,
                                  .weight_decay = 0.1}},
                        "adam_wd");
  check_against_pytorch(nn::AdamW{{.learning_rate = 0.01, .weight_decay = 0.05}}, "adamw");
}

TEST_CASE("a bad learning rate is rejected") {
  CHECK_THROWS_AS(nn::SGD({.learning_rate = -1.0}), argument_error);
  CHECK_THROWS_AS(nn::Adam({.learning_rate = std::nan("")}), argument_error);
  nn::SGD opt{{.learning_rate = 0.1}};
  CHECK_THROWS_AS(opt.set_learning_rate(-0.5), argument_error);  // e.g. from a bad schedule
  CHECK_THROWS_AS(opt.set_learning_rate(std::nan("")), argument_error);
  CHECK(opt.learning_rate() == 0.1);
}

TEST_CASE_TEMPLATE("masked weights stay exactly zero through training", Opt, nn::SGD, nn::Adam,
                   nn::AdamW) {
  using Net = nn::BasicSequential<double, nn::Dense<8, 6>, nn::ReLU, nn::Dense<6, 3>>;
  Rng rng = make_stream(5, "mask");
  Net net{nn::init::kaiming_normal, rng};
  // mask every other weight of the first layer, a third of the second
  int k = 0;
  net.for_each_parameter([&](std::string_view name, Parameter<double>& p) {
    if (name.ends_with("weight")) {
      p.mask = Vector<double>::Ones(p.size());
      for (Index i = 0; i < p.size(); ++i) {
        if ((i + k) % (k == 0 ? 2 : 3) == 0)
          p.mask[i] = 0;
      }
      ++k;
    }
  });
  typename Opt::options_type options;
  options.learning_rate = 0.05;
  options.weight_decay = 0.01;
  if constexpr (requires { options.momentum; })
    options.momentum = 0.9;
  Opt opt{options};
  // weights start unmasked (non-zero): the first step must zero them and keep them zero
  Matrix<double> x = Matrix<double>::Random(8, 16);
  std::vector<std::int32_t> y(16);
  for (int n = 0; n < 16; ++n)
    y[static_cast<std::size_t>(n)] = n % 3;
  nn::SoftmaxCrossEntropy loss;
  Matrix<double> g(3, 16);
  for (int step = 0; step < 50; ++step) {
    net.zero_grad();
    const auto out = net.forward(x);
    BatchView<double> gv(g.data(), 3, 16);
    loss.value_and_gradient(out, nn::Labels(y), gv);
    net.backward_parameters(ConstBatchView<double>(g.data(), 3, 16));
    opt.step(net);
  }
  Index masked = 0;
  net.for_each_parameter([&](std::string_view, Parameter<double>& p) {
    if (!p.masked())
      return;
    for (Index i = 0; i < p.size(); ++i) {
      if (p.mask[i] == 0) {
        CHECK(p.value[i] == 0.0);
        ++masked;
      } else {
        CHECK(p.value[i] != 0.0);
      }
    }
  });
  CHECK(masked == 8 * 6 / 2 + 6);
}

TEST_CASE("schedules follow their closed forms") {
  const nn::StepSchedule step{.base = 0.1, .step = 3, .gamma = 0.5};
  CHECK(step(0) == doctest::Approx(0.1));
  CHECK(step(2) == doctest::Approx(0.1));
  CHECK(step(3) == doctest::Approx(0.05));
  CHECK(step(7) == doctest::Approx(0.025));
  const nn::CosineSchedule cosine{.base = 0.2, .epochs = 4, .minimum = 0.0};
  CHECK(cosine(0) == doctest::Approx(0.2));
  CHECK(cosine(2) == doctest::Approx(0.1));
  CHECK(cosine(4) == doctest::Approx(0.0));
  static_assert(nn::LearningRateSchedule<nn::CosineSchedule>);
}

TEST_CASE("optimizer state is reachable in the network's layout, by name") {
  // A stateful client: train two steps, park the momentum as a ParameterSet, restore it into a
  // fresh optimizer: the third step equals the third step of one optimizer that never stopped.
  using Net = nn::BasicSequential<double, nn::Dense<4, 3>, nn::ReLU, nn::Dense<3, 2>>;
  Rng rng = make_stream(30, "state");
  Net a{nn::init::kaiming_normal, rng};
  Net b = a;
  Matrix<double> x(4, 5);
  for (Index i = 0; i < x.size(); ++i) {
    x.data()[i] = standard_normal(rng);
  }
  const std::vector<std::int32_t> y{0, 1, 1, 0, 1};
  nn::SoftmaxCrossEntropy ce;
  Matrix<double> g(2, 5);
  BatchView<double> gv(g.data(), 2, 5);
  auto gradient_step = [&](Net& net, nn::SGD& opt) {
    net.zero_grad();
    ce.value_and_gradient(net.forward(x), nn::Labels(y), gv);
    net.backward_parameters(batch_view(g));
    opt.step(net);
  };
  const auto layout = ParameterSet<double>(a).shared_layout();
  nn::SGD continuous{{.learning_rate = 0.1, .momentum = 0.9}};
  // before any step the velocity is zero
  CHECK(continuous.state<double>("velocity", layout).values().isZero());
  gradient_step(a, continuous);
  // after the first step the velocity is the first gradient (PyTorch's b = g)
  ParameterSet<double> first_grad(a);
  first_grad.read_gradients(a);
  CHECK(continuous.state<double>("velocity", layout).values() == first_grad.values());
  gradient_step(a, continuous);

  nn::SGD first{{.learning_rate = 0.1, .momentum = 0.9}};
  gradient_step(b, first);
  gradient_step(b, first);
  const ParameterSet<double> parked = first.state<double>("velocity", layout);
  nn::SGD resumed{{.learning_rate = 0.1, .momentum = 0.9}};
  resumed.set_state("velocity", parked);
  gradient_step(a, continuous);
  gradient_step(b, resumed);
  CHECK(ParameterSet<double>(b).values() == ParameterSet<double>(a).values());

  // Adam's two moments; unknown fields and foreign layouts are clear errors
  nn::Adam adam{{.learning_rate = 0.01}};
  Net c = a;
  c.zero_grad();
  ce.value_and_gradient(c.forward(x), nn::Labels(y), gv);
  c.backward_parameters(batch_view(g));
  adam.step(c);
  ParameterSet<double> grad(c);
  grad.read_gradients(c);
  CHECK((adam.state<double>("m", layout).values() - 0.1 * grad.values()).norm() < 1e-14);
  CHECK((adam.state<double>("v", layout).values() - 0.001 * grad.values().cwiseAbs2()).norm() <
        1e-14);
  CHECK_THROWS_AS(adam.state<double>("velocity", layout), argument_error);
  CHECK_THROWS_AS(continuous.state<double>("m", layout), argument_error);
  nn::BasicSequential<double, nn::Dense<4, 3>> other;
  const auto other_layout = ParameterSet<double>(other).shared_layout();
  CHECK_THROWS_AS(continuous.state<double>("velocity", other_layout), shape_error);
  CHECK_THROWS_AS(continuous.set_state("velocity", ParameterSet<double>(other)), shape_error);
}
