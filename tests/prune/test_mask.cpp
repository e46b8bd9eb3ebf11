// prune/mask.hpp, prune/schedule.hpp, Random and Magnitude: the reference threshold rule against
// hand-worked cases and a sort-based oracle, masks onto networks (checked by name, atomic), the
// density report, the exponential schedule, and bad input.
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/batchnorm.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/optim/sgd.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/nn/train.hpp>
#include <edgescale/prune/magnitude.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/random.hpp>
#include <edgescale/prune/schedule.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

using Mlp = nn::BasicSequential<double, nn::Input<6>, nn::Dense<6, 5>, nn::ReLU, nn::Dense<5, 4>,
                                nn::ReLU, nn::Dense<4, 3>>;
using ConvNet = nn::BasicSequential<double, nn::Input<1, 6, 6>, nn::Conv2D<1, 2, 3, nn::NoBias>,
                                    nn::BatchNorm, nn::ReLU, nn::Flatten, nn::Dense<32, 3>>;

/// A set in a one-tensor-per-entry layout built from a network, with the given values.
ParameterSet<double> scores_of(const Mlp& net, const std::vector<double>& values) {
  ParameterSet<double> s = prune::zero_scores(net);
  REQUIRE(static_cast<std::size_t>(s.values().size()) == values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    s.values()[static_cast<Index>(i)] = values[i];
  }
  return s;
}

/// Oracle: the reference rule by a full sort.
Vector<double> oracle(const Vector<double>& scores, double density) {
  const Index n = scores.size();
  const auto k = static_cast<Index>(std::floor((1.0 - density) * static_cast<double>(n)));
  Vector<double> mask = Vector<double>::Ones(n);
  if (k < 1) {
    return mask;
  }
  std::vector<double> sorted(scores.data(), scores.data() + n);
  std::sort(sorted.begin(), sorted.end());
  for (Index i = 0; i < n; ++i) {
    if (scores[i] <= sorted[static_cast<std::size_t>(k - 1)]) {
      mask[i] = 0.0;
    }
  }
  return mask;
}

/// A scorer that needs data (to test the batch checks): scores every weight 1.
struct NeedsData {
  static constexpr bool needs_data = true;
  template <class Net, class Data>
  ParameterSet<double> score(const Net& net, const Data& /*data*/, Rng& /*rng*/) const {
    ParameterSet<double> s = prune::zero_scores(net);
    s.values().setOnes();
    return s;
  }
};

static_assert(prune::PruningScorer<prune::Magnitude, Mlp>);
static_assert(prune::PruningScorer<prune::Random, Mlp>);
static_assert(prune::PruningScorer<NeedsData, ConvNet>);

}  // namespace

TEST_CASE("scores cover the prunable tensors only: no bias, no BatchNorm scale or buffer") {
  ConvNet net;
  const ParameterSet<double> s = prune::zero_scores(net);
  const std::vector<std::string_view> names = s.layout().names();
  REQUIRE(names.size() == 2);
  CHECK(names[0] == "0.weight");
  CHECK(names[1] == "4.weight");
  CHECK(s.values().size() == 2 * 9 + 32 * 3);
}

TEST_CASE("the reference threshold: k = floor((1 - d) N), prune every score <= the k-th smallest") {
  Mlp net;
  const Index n = prune::zero_scores(net).values().size();  // 30 + 20 + 12 = 62
  REQUIRE(n == 62);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i] = static_cast<double>((i * 37) % 62);  // a permutation of 0..61
  }
  const ParameterSet<double> scores = scores_of(net, v);
  SUBCASE("hand-worked: density 0.5 keeps the 31 largest (k = 31 pruned: 0..30)") {
    const ParameterSet<double> m = prune::masks_from_scores(scores, 0.5);
    for (Index i = 0; i < n; ++i) {
      CHECK(m.values()[i] == (scores.values()[i] > 30.0 ? 1.0 : 0.0));
    }
    CHECK(m.values().sum() == 31.0);
  }
  SUBCASE("floor: density 0.1 prunes floor(0.9 * 62) = 55, keeps 7") {
    CHECK(prune::masks_from_scores(scores, 0.1).values().sum() == 7.0);
  }
  SUBCASE("k = 0 prunes nothing (density 0.99 of 62: floor(0.62) = 0)") {
    CHECK(prune::masks_from_scores(scores, 0.99).values().sum() == 62.0);
    CHECK(prune::masks_from_scores(scores, 1.0).values().sum() == 62.0);
  }
  SUBCASE("ties at the threshold over-prune, as the reference does") {
    std::vector<double> tied(v.size(), 1.0);
    tied[0] = 2.0;
    const ParameterSet<double> m = prune::masks_from_scores(scores_of(net, tied), 0.5);
    CHECK(m.values().sum() == 1.0);  // all 61 ties go, though k = 31
  }
  SUBCASE("random scores, global and per tensor, against a sort") {
    Rng rng = make_stream(3, "mask");
    for (int trial = 0; trial < 20; ++trial) {
      ParameterSet<double> r = prune::zero_scores(net);
      for (double& x : r.values()) {
        x = std::round(standard_normal<double>(rng) * 4.0);  // ties happen
      }
      const double d = uniform<double>(rng, 0.01, 1.0);
      CHECK(prune::masks_from_scores(r, d).values() == oracle(r.values(), d));
      const ParameterSet<double> local = prune::masks_from_scores(r, d, prune::Scope::layer);
      for (const TensorSlot& t : r.layout().tensors()) {
        CAPTURE(t.name);
        CHECK(Vector<double>(local.values().segment(t.offset, t.size)) ==
              oracle(r.values().segment(t.offset, t.size), d));
      }
    }
  }
}

TEST_CASE("masks_from_scores refuses a density outside (0, 1] and NaN scores") {
  Mlp net;
  ParameterSet<double> s = prune::zero_scores(net);
  for (const double d : {0.0, -0.5, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    CAPTURE(d);
    CHECK_THROWS_AS(prune::masks_from_scores(s, d), argument_error);
  }
  s.values()[3] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(prune::masks_from_scores(s, 0.5), "prune: a score is NaN or infinite",
                       argument_error);
}

TEST_CASE("apply_masks sets masks by name and zeroes pruned values; the optimizer keeps them 0") {
  Rng rng = make_stream(4, "apply");
  Mlp net{nn::init::kaiming_normal, rng};
  ParameterSet<double> m = prune::zero_scores(net);
  for (Index i = 0; i < m.values().size(); ++i) {
    m.values()[i] = i % 3 == 0 ? 0.0 : 1.0;
  }
  prune::apply_masks(net, m);
  const ParameterSet<double> after(net, TensorSelection::prunable);
  CHECK(after.has_mask());
  CHECK(after.mask() == m.values());
  CHECK((after.values().array() * (1.0 - m.values().array()) == 0.0).all());
  // Biases keep no mask.
  net.for_each_parameter(
      [](std::string_view, const Parameter<double>& p) { CHECK(p.masked() == p.prunable()); });
  const prune::DensityReport r = prune::density(net);
  CHECK(r.size == 62);
  CHECK(r.kept == static_cast<Index>(m.values().sum()));
  REQUIRE(r.tensors.size() == 3);
  CHECK(r.tensors[0].name == "0.weight");
  CHECK(r.tensors[0].size == 30);

  // A training step leaves the pruned weights exactly zero.
  nn::Trainer trainer{net};
  nn::SGD opt{{.learning_rate = 0.1, .momentum = 0.9}};
  const Matrix<double> x = Matrix<double>::Random(6, 4);
  const std::vector<std::int32_t> y = {0, 1, 2, 1};
  for (int step = 0; step < 3; ++step) {
    trainer.step(opt, ConstBatchView<double>(x.data(), 6, 4), y);
  }
  const ParameterSet<double> trained(net, TensorSelection::prunable);
  CHECK((trained.values().array() * (1.0 - m.values().array()) == 0.0).all());
  CHECK(trained.values() != after.values());
}

TEST_CASE("apply_masks refuses other layouts and non-binary entries, changing nothing") {
  Rng rng = make_stream(5, "apply-bad");
  Mlp net{nn::init::kaiming_normal, rng};
  const ParameterSet<double> before(net, TensorSelection::prunable);
  ConvNet other;
  CHECK_THROWS_AS(prune::apply_masks(net, prune::zero_scores(other)), shape_error);
  ParameterSet<double> m = prune::zero_scores(net);
  m.values().setOnes();
  m.values()[7] = 0.5;
  CHECK_THROWS_WITH_AS(prune::apply_masks(net, m),
                       "prune::apply_masks: mask entries must be 0 or 1", argument_error);
  const ParameterSet<double> after(net, TensorSelection::prunable);
  CHECK(after.values() == before.values());
  CHECK_FALSE(after.has_mask());
}

TEST_CASE("Magnitude one-shot keeps the largest |θ|; 100 rounds of it end at the same mask") {
  Rng rng = make_stream(6, "magnitude");
  const Mlp start{nn::init::kaiming_normal, rng};
  const ParameterSet<double> w(start, TensorSelection::prunable);
  const Vector<double> expected = oracle(w.values().cwiseAbs(), 0.2);

  Mlp one = start;
  prune::Magnitude scorer;
  const prune::DensityReport r =
      prune::prune_at_init(one, scorer, prune::PruningData<double>{}, {.sparsity = 0.8}, rng);
  CHECK(ParameterSet<double>(one, TensorSelection::prunable).mask() == expected);
  CHECK(r.kept == static_cast<Index>(expected.sum()));
  CHECK(r.kept == 62 - static_cast<Index>(std::floor(0.8 * 62)));  // no ties among |θ|

  // Each round prunes the smallest of what is left (pruned weights score 0), so the exponential
  // schedule reaches the one-shot mask.
  Mlp iterated = start;
  prune::prune_at_init(iterated, scorer, prune::PruningData<double>{},
                       {.sparsity = 0.8, .rounds = 100}, rng);
  CHECK(ParameterSet<double>(iterated, TensorSelection::prunable).mask() == expected);
}

TEST_CASE("the schedule keeps d^((r+1)/R) after round r") {
  CHECK(prune::scheduled_density(0.01, 0, 2) == doctest::Approx(0.1));
  CHECK(prune::scheduled_density(0.01, 1, 2) == doctest::Approx(0.01));
  CHECK(prune::scheduled_density(0.5, 0, 1) == 0.5);
}

TEST_CASE("Random: seeded, redrawn at each call, global density even across tensors") {
  Mlp net;
  prune::Random scorer;
  Rng a = make_stream(7, "random");
  Rng b = make_stream(7, "random");
  const ParameterSet<double> s1 = scorer.score(net, prune::PruningData<double>{}, a);
  const ParameterSet<double> s2 = scorer.score(net, prune::PruningData<double>{}, a);
  CHECK(s1.values() == scorer.score(net, prune::PruningData<double>{}, b).values());
  CHECK(s1.values() != s2.values());
  // Mean and spread of the draws (62 standard normal values: loose, but it fails for a constant
  // or uniform scorer).
  CHECK(std::abs(s1.values().mean()) < 0.5);
  const double var = (s1.values().array() - s1.values().mean()).square().mean();
  CHECK(var > 0.5);
  CHECK(var < 1.6);
}

TEST_CASE("a weight revived by a later round comes back with its initial value (Random, R = 100)") {
  // The reference keeps the stored weights while pruning and multiplies them by the mask in the
  // forward, so iterated Random ends as one-shot Random at the final density: every kept weight
  // holds its initial value. Revived as zeros instead, the network would train from dead weights.
  Rng rng = make_stream(9, "revival");
  Mlp net{nn::init::kaiming_normal, rng};
  const ParameterSet<double> initial(net, TensorSelection::prunable);
  prune::Random random;
  const prune::DensityReport r =
      prune::prune_at_init(net, random, {}, {.sparsity = 0.5, .rounds = 100}, rng);
  CHECK(r.kept == r.size - static_cast<Index>(std::floor(0.5 * static_cast<double>(r.size))));
  Index revived = 0;
  net.for_each_parameter([&](std::string_view name, const Parameter<double>& p) {
    if (!p.prunable()) {
      return;
    }
    const auto v0 = initial.tensor(std::string(name));
    for (Index i = 0; i < p.size(); ++i) {
      CHECK(p.value[i] == v0[i] * p.mask[i]);  // kept: initial value; pruned: 0
      revived += p.mask[i] == 1.0 ? 1 : 0;
    }
  });
  CHECK(revived == r.kept);
}

TEST_CASE("prune_at_init refuses bad input before changing anything") {
  Rng rng = make_stream(8, "bad");
  Mlp net{nn::init::kaiming_normal, rng};
  const ParameterSet<double> before(net, TensorSelection::all);
  prune::Magnitude magnitude;
  const prune::PruningData<double> none{};
  for (const double s : {0.0, 1.0, -0.1, 1.2, std::numeric_limits<double>::quiet_NaN()}) {
    CAPTURE(s);
    CHECK_THROWS_AS(prune::prune_at_init(net, magnitude, none, {.sparsity = s}, rng),
                    argument_error);
  }
  CHECK_THROWS_WITH_AS(prune::prune_at_init(net, magnitude, none, {.rounds = 0}, rng),
                       "prune: rounds must be at least 1, got 0", argument_error);

  NeedsData needs;
  CHECK_THROWS_WITH_AS(prune::prune_at_init(net, needs, none, {}, rng),
                       "prune: the pruning batch is empty", argument_error);
  const Matrix<double> x = Matrix<double>::Random(5, 2);  // 5 values per sample, the net takes 6
  CHECK_THROWS_AS(
      prune::prune_at_init(
          net, needs, prune::PruningData<double>{ConstBatchView<double>(x.data(), 5, 2)}, {}, rng),
      shape_error);
  Matrix<double> nan_x = Matrix<double>::Random(6, 2);
  nan_x(1, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(
      prune::prune_at_init(net, needs,
                           prune::PruningData<double>{ConstBatchView<double>(nan_x.data(), 6, 2)},
                           {}, rng),
      "prune: the pruning batch has a NaN or infinite input", argument_error);

  net.layer<2>().parameters()[0].value[4] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(prune::prune_at_init(net, magnitude, none, {}, rng),
                       "prune: tensor '2.weight' has a NaN or infinite value", argument_error);
  net.layer<2>().parameters()[0].value[4] = before.tensor("2.weight")[4];
  const ParameterSet<double> after(net, TensorSelection::all);
  CHECK(after.values() == before.values());
  CHECK_FALSE(after.has_mask());
}

namespace {
// docs/concepts.md, "PruningScorer": a user's scorer, as written there.
struct Gaussian {  // a scorer of yours: |θ| plus noise
  static constexpr bool needs_data = false;
  template <class Net, class Data>
  ParameterSet<double> score(const Net& net, const Data&, Rng& rng) const {
    ParameterSet<double> s(net, TensorSelection::prunable);
    s.set_mask({});
    for (double& v : s.values()) {
      v = std::abs(v) + 0.01 * standard_normal<double>(rng);
    }
    return s;
  }
};
}  // namespace

TEST_CASE("docs: a user's scorer runs through prune_at_init") {
  using FloatMlp = nn::Sequential<nn::Input<6>, nn::Dense<6, 5>, nn::ReLU, nn::Dense<5, 3>>;
  static_assert(prune::PruningScorer<Gaussian, FloatMlp>);
  Rng rng = make_stream(9, "docs-scorer");
  FloatMlp net{nn::init::kaiming_normal, rng};
  Gaussian scorer;
  prune::DensityReport r = prune::prune_at_init(net, scorer, prune::PruningData<float>{},
                                                {.sparsity = 0.98, .rounds = 100}, rng);
  CHECK(r.size == 45);
  CHECK(r.kept == 45 - static_cast<Index>(std::floor(0.98 * 45)));  // 1 weight left
}

TEST_CASE("the threshold's selection finds the k-th smallest, as std::nth_element") {
  Rng rng = make_stream(31, "radix select");
  std::vector<double> scratch;
  for (int trial = 0; trial < 200; ++trial) {
    CAPTURE(trial);
    const auto n = static_cast<std::size_t>(1 + uniform_index(rng, trial < 100 ? 3000 : 200000));
    std::vector<double> v(n);
    for (double& x : v) {
      switch (uniform_index(rng, 6)) {
        case 0:
          x = 0.0;
          break;  // pruned weights score exactly 0
        case 1:
          x = -0.0;
          break;
        case 2:
          x = standard_normal<double>(rng);
          break;  // GraSP's signed scores
        case 3:
          x = std::ldexp(uniform01<double>(rng), -1060);
          break;  // subnormal
        case 4:
          x = static_cast<double>(uniform_index(rng, 4));
          break;  // ties
        default:
          x = uniform01<double>(rng) * 1e300;
          break;
      }
    }
    const auto k = static_cast<Index>(1 + uniform_index(rng, n));
    std::vector<double> sorted = v;
    std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end());
    const double got = prune::detail::kth_smallest(v, k, scratch);
    CHECK(got == sorted[static_cast<std::size_t>(k - 1)]);  // -0.0 == 0.0 as well
  }
}
