// prune/post_training.hpp: magnitude pruning of a trained network (global and per tensor, against
// a sort), the cubic schedule of Zhu & Gupta 2017 against its closed form, gradual pruning through
// nn::fit's on_step_end (sparsity at each pruning step, masks only growing, pruned weights exactly
// zero through training), and bad arguments.
#include <edgescale/data/dataset.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/optim/sgd.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/nn/train.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/post_training.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

using Mlp = nn::BasicSequential<double, nn::Input<6>, nn::Dense<6, 5>, nn::ReLU, nn::Dense<5, 4>,
                                nn::ReLU, nn::Dense<4, 3>>;

static_assert(nn::StepEndCallback<prune::GradualMagnitudePruning, Mlp>);
static_assert(nn::FitCallback<prune::GradualMagnitudePruning, Mlp>);

/// Oracle: 1 for the entries of |v| above the k-th smallest, k = ⌊s·N⌋ computed as the library
/// does, through the density 1 − s.
Vector<double> keep_largest(const Vector<double>& v, double sparsity) {
  const Index n = v.size();
  const auto k = static_cast<Index>(std::floor((1.0 - (1.0 - sparsity)) * static_cast<double>(n)));
  Vector<double> mask = Vector<double>::Ones(n);
  if (k < 1) {
    return mask;
  }
  std::vector<double> sorted(n);
  for (Index i = 0; i < n; ++i) {
    sorted[static_cast<std::size_t>(i)] = std::abs(v[i]);
  }
  std::sort(sorted.begin(), sorted.end());
  for (Index i = 0; i < n; ++i) {
    mask[i] = std::abs(v[i]) <= sorted[static_cast<std::size_t>(k - 1)] ? 0.0 : 1.0;
  }
  return mask;
}

/// Weights kept after pruning n weights to sparsity s (the library's rounding).
Index kept_after(Index n, double s) {
  return n - static_cast<Index>(std::floor((1.0 - (1.0 - s)) * static_cast<double>(n)));
}

data::Dataset<double> blobs(Index n, Rng& rng) {
  data::Dataset<double> d;
  d.name = "blobs";
  d.classes = 3;
  d.sample_shape = {1, 1, 6};
  d.features.resize(6, n);
  for (Index i = 0; i < n; ++i) {
    const auto label = static_cast<std::int32_t>(i % 3);
    d.labels.push_back(label);
    for (Index j = 0; j < 6; ++j) {
      d.features(j, i) = standard_normal<double>(rng) + (j % 3 == label ? 2.0 : 0.0);
    }
  }
  return d;
}

/// Runs after GradualMagnitudePruning in fit's callback pack: at every step, the masked weights
/// are zero, masks only lost entries since the step before, and each tensor (or the whole network)
/// keeps what the last pruning step's target says.
struct ScheduleChecker {
  const prune::GradualMagnitudePruning* gradual;
  Vector<double> previous_mask;
  long steps = 0;
  long prunings = 0;

  void on_step_end(Mlp& net) {
    const long t = steps++;
    const ParameterSet<double> now(net, TensorSelection::prunable);
    if (t < gradual->options().start_step) {
      CHECK_FALSE(now.has_mask());
      return;
    }
    REQUIRE(now.has_mask());
    CHECK((now.values().array() * (1.0 - now.mask().array()) == 0.0).all());
    if (previous_mask.size() != 0) {
      CHECK((now.mask().array() <= previous_mask.array()).all());
      if (!gradual->prunes_at(t)) {
        CHECK(now.mask() == previous_mask);
      }
    }
    previous_mask = now.mask();
    prunings += gradual->prunes_at(t) ? 1 : 0;
    const double s = gradual->sparsity();
    CHECK(s == gradual->sparsity_at(t - (t - gradual->options().start_step) %
                                            gradual->options().interval));
    const prune::DensityReport r = prune::density(net);
    if (gradual->options().scope == prune::Scope::layer) {
      for (const prune::TensorDensity& d : r.tensors) {
        CAPTURE(d.name);
        CAPTURE(t);
        CHECK(d.kept == kept_after(d.size, s));
      }
    } else {
      CHECK(r.kept == kept_after(r.size, s));
    }
  }
};

}  // namespace

TEST_CASE("the cubic schedule is Zhu & Gupta's closed form on t_0 + kΔt, s_f after, 0 before") {
  const prune::GradualOptions o{.initial_sparsity = 0.1,
                                .final_sparsity = 0.8,
                                .start_step = 5,
                                .interval = 3,
                                .pruning_steps = 4};
  const prune::GradualMagnitudePruning g(o);
  auto closed_form = [&](double t) {
    return 0.8 + (0.1 - 0.8) * std::pow(1.0 - (t - 5.0) / (4.0 * 3.0), 3.0);
  };
  for (const long t : {5L, 8L, 11L, 14L, 17L, 6L, 13L}) {
    CAPTURE(t);
    CHECK(g.sparsity_at(t) == doctest::Approx(closed_form(static_cast<double>(t))).epsilon(1e-14));
  }
  CHECK(g.sparsity_at(5) == doctest::Approx(0.1));  // s_i at t_0
  CHECK(g.sparsity_at(8) == doctest::Approx(0.8 - 0.7 * 0.421875));
  CHECK(g.sparsity_at(17) == doctest::Approx(0.8));  // s_f at t_0 + nΔt
  CHECK(g.sparsity_at(100) == 0.8);
  CHECK(g.sparsity_at(4) == 0.0);
  CHECK(g.sparsity_at(0) == 0.0);
  // Non-decreasing: masks can only grow.
  for (long t = 0; t < 30; ++t) {
    CHECK(g.sparsity_at(t + 1) >= g.sparsity_at(t));
  }
  std::vector<long> at;
  for (long t = 0; t < 30; ++t) {
    if (g.prunes_at(t)) {
      at.push_back(t);
    }
  }
  CHECK(at == std::vector<long>{5, 8, 11, 14, 17});  // n + 1 pruning steps
}

TEST_CASE("gradual schedules are validated with messages that name the parameter") {
  using O = prune::GradualOptions;
  CHECK_THROWS_WITH_AS(prune::GradualMagnitudePruning(O{.final_sparsity = 1.0}),
                       "gradual pruning: final sparsity s_f must be in [0, 1), got 1.000000",
                       argument_error);
  CHECK_THROWS_WITH_AS(prune::GradualMagnitudePruning(O{.initial_sparsity = -0.1}),
                       "gradual pruning: initial sparsity s_i must be in [0, 1), got -0.100000",
                       argument_error);
  CHECK_THROWS_AS(
      prune::GradualMagnitudePruning(O{.final_sparsity = std::numeric_limits<double>::quiet_NaN()}),
      argument_error);
  CHECK_THROWS_WITH_AS(
      prune::GradualMagnitudePruning(O{.initial_sparsity = 0.5, .final_sparsity = 0.3}),
      "gradual pruning: initial sparsity s_i = 0.500000 must not exceed the final sparsity s_f = "
      "0.300000",
      argument_error);
  CHECK_THROWS_WITH_AS(prune::GradualMagnitudePruning(O{.interval = 0}),
                       "gradual pruning: interval Δt must be at least 1 step, got 0",
                       argument_error);
  CHECK_THROWS_WITH_AS(prune::GradualMagnitudePruning(O{.pruning_steps = 0}),
                       "gradual pruning: the number of pruning steps n must be at least 1, got 0",
                       argument_error);
  CHECK_THROWS_WITH_AS(prune::GradualMagnitudePruning(O{.start_step = -1}),
                       "gradual pruning: start step t_0 must be >= 0, got -1", argument_error);
  // s_i = s_f and s_i = 0 are schedules.
  CHECK_NOTHROW(prune::GradualMagnitudePruning(O{.initial_sparsity = 0.5, .final_sparsity = 0.5}));
  CHECK_NOTHROW(prune::GradualMagnitudePruning(O{.initial_sparsity = 0.0, .final_sparsity = 0.0}));
}

TEST_CASE("gradual magnitude pruning through fit reaches s_f after n steps, pruned weights at 0") {
  Rng rng = make_stream(11, "gradual");
  const data::Dataset<double> train = blobs(24, rng);
  data::BatchSampler<double> batches(train, 4);  // 6 steps per epoch
  for (const prune::Scope scope : {prune::Scope::layer, prune::Scope::global}) {
    CAPTURE(static_cast<int>(scope));
    Mlp net{nn::init::kaiming_normal, rng};
    nn::Trainer trainer{net};
    nn::SGD opt{{.learning_rate = 0.05, .momentum = 0.9}};
    prune::GradualMagnitudePruning gradual({.initial_sparsity = 0.2,
                                            .final_sparsity = 0.75,
                                            .start_step = 2,
                                            .interval = 3,
                                            .pruning_steps = 4,
                                            .scope = scope});
    ScheduleChecker checker{&gradual, {}};
    const ParameterSet<double> start(net, TensorSelection::prunable);
    nn::fit(trainer, opt, batches, nn::no_evaluation, {.epochs = 4}, nn::ConstantSchedule{0.05},
            rng, gradual, checker);
    CHECK(gradual.steps() == 24);
    CHECK(gradual.done());
    CHECK(checker.prunings == 5);
    CHECK(gradual.sparsity() == 0.75);

    const prune::DensityReport r = prune::density(net);
    if (scope == prune::Scope::layer) {
      REQUIRE(r.tensors.size() == 3);
      CHECK(r.tensors[0].kept == 30 - 22);  // ⌊0.75 · 30⌋ = 22 pruned
      CHECK(r.tensors[1].kept == 20 - 15);
      CHECK(r.tensors[2].kept == 12 - 9);
    } else {
      CHECK(r.kept == 62 - 46);  // ⌊0.75 · 62⌋ = 46 pruned
    }
    // Trained after the last pruning: the kept weights moved, the pruned ones stayed 0.
    const ParameterSet<double> end(net, TensorSelection::prunable);
    CHECK((end.values().array() * (1.0 - end.mask().array()) == 0.0).all());
    CHECK(((end.values() - start.values()).array() * end.mask().array()).abs().maxCoeff() > 0.0);
  }
}

TEST_CASE("post-training magnitude pruning keeps the largest |θ|, globally or per tensor") {
  Rng rng = make_stream(12, "post-training");
  const Mlp trained{nn::init::kaiming_normal, rng};
  const ParameterSet<double> w(trained, TensorSelection::prunable);

  SUBCASE("global") {
    Mlp net = trained;
    const prune::DensityReport r = prune::prune_by_magnitude(net, 0.7);
    const ParameterSet<double> after(net, TensorSelection::prunable);
    CHECK(after.mask() == keep_largest(w.values(), 0.7));
    CHECK(r.kept == kept_after(62, 0.7));
    CHECK((after.values().array() == w.values().array() * after.mask().array()).all());
  }
  SUBCASE("per tensor") {
    Mlp net = trained;
    prune::prune_by_magnitude(net, 0.5, prune::Scope::layer);
    const ParameterSet<double> after(net, TensorSelection::prunable);
    for (const TensorSlot& t : w.layout().tensors()) {
      CAPTURE(t.name);
      CHECK(Vector<double>(after.mask().segment(t.offset, t.size)) ==
            keep_largest(w.values().segment(t.offset, t.size), 0.5));
    }
  }
  SUBCASE("weights pruned before stay pruned, even at a lower sparsity") {
    Mlp net = trained;
    prune::prune_by_magnitude(net, 0.6, prune::Scope::layer);
    const Vector<double> first = ParameterSet<double>(net, TensorSelection::prunable).mask();
    const prune::DensityReport r = prune::prune_by_magnitude(net, 0.2);
    const Vector<double> second = ParameterSet<double>(net, TensorSelection::prunable).mask();
    CHECK((second.array() <= first.array()).all());
    CHECK(r.kept == static_cast<Index>(first.sum()));  // nothing more to prune at 20 %
  }
  SUBCASE("sparsity 0 prunes nothing") {
    Mlp net = trained;
    CHECK(prune::prune_by_magnitude(net, 0.0).kept == 62);
  }
  SUBCASE("bad arguments change nothing") {
    Mlp net = trained;
    for (const double s : {1.0, -0.1, std::numeric_limits<double>::quiet_NaN()}) {
      CAPTURE(s);
      CHECK_THROWS_AS(prune::prune_by_magnitude(net, s), argument_error);
    }
    CHECK_THROWS_WITH_AS(prune::prune_by_magnitude(net, 1.0),
                         "prune_by_magnitude: sparsity must be in [0, 1), got 1.000000",
                         argument_error);
    net.layer<0>().parameters()[0].value[2] = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH_AS(prune::prune_by_magnitude(net, 0.5),
                         "prune_by_magnitude: tensor '0.weight' has a NaN or infinite value",
                         argument_error);
    CHECK_FALSE(ParameterSet<double>(net, TensorSelection::prunable).has_mask());
  }
}
