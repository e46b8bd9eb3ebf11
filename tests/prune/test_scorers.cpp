// The scorers against PyTorch: scores of two small networks (an MLP and a conv net with max
// pooling) with closed-form parameters and inputs, computed in double by
// scripts/fixtures/make_pruning_fixtures.py (tests/fixtures/prune/), matched to 1e-10 relative.
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/prune/grasp.hpp>
#include <edgescale/prune/itersnip.hpp>
#include <edgescale/prune/magnitude.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/px.hpp>
#include <edgescale/prune/snip.hpp>
#include <edgescale/prune/synflow.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

using Mlp = nn::BasicSequential<double, nn::Input<6>, nn::Dense<6, 5>, nn::ReLU, nn::Dense<5, 4>,
                                nn::ReLU, nn::Dense<4, 3>>;
using ConvNet = nn::BasicSequential<double, nn::Input<1, 6, 6>, nn::Conv2D<1, 2, 3, nn::Pad<1>>,
                                    nn::ReLU, nn::MaxPool2D<2>, nn::Flatten, nn::Dense<18, 3>>;

static_assert(prune::PruningScorer<prune::Snip, Mlp>);
static_assert(prune::PruningScorer<prune::SynFlow, ConvNet>);
static_assert(prune::PruningScorer<prune::IterSnip, Mlp>);
static_assert(prune::PruningScorer<prune::Grasp, ConvNet>);

// The closed forms of the fixture script.
double value(int k, Index i) {
  return 0.5 * std::sin(1.3 * static_cast<double>(i) + 0.7 * k + 0.1) + 0.05;
}
double input_value(Index n, Index j, Index size) {
  return std::sin(0.37 * static_cast<double>(n * size + j) + 0.2);
}

template <class Net>
struct Case {
  Net net;
  Matrix<double> x;
  std::vector<std::int32_t> y;

  explicit Case(Index batch) : x(Net::input_shape::size, batch) {
    int k = 0;
    net.for_each_parameter([&](std::string_view, Parameter<double>& p) {
      for (Index i = 0; i < p.size(); ++i) {
        p.value[i] = value(k, i);
      }
      ++k;
    });
    for (Index n = 0; n < batch; ++n) {
      for (Index j = 0; j < x.rows(); ++j) {
        x(j, n) = input_value(n, j, x.rows());
      }
      y.push_back(static_cast<std::int32_t>(n % 3));
    }
  }
  [[nodiscard]] prune::PruningData<double> data() const {
    return {ConstBatchView<double>(x.data(), x.rows(), x.cols()), y};
  }

  /// The masked fixtures' rule: in every weight tensor the values at flat (row-major) indices
  /// i % 3 == 0 pruned (mask 0, value zeroed by apply_masks).
  void mask_every_third() {
    ParameterSet<double> masks = prune::zero_scores(net);
    for (const TensorSlot& t : masks.layout().tensors()) {
      auto m = masks.tensor(t.name);
      for (Index i = 0; i < t.size; ++i) {
        m[i] = i % 3 == 0 ? 0.0 : 1.0;
      }
    }
    prune::apply_masks(net, masks);
  }
};

std::map<std::string, std::vector<double>> read_fixture(const std::string& name) {
  std::ifstream in(std::string(EDGESCALE_TEST_DATA_DIR) + "/prune/" + name + ".txt");
  REQUIRE_MESSAGE(in.good(), "missing fixture " << name);
  std::map<std::string, std::vector<double>> tensors;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string tensor;
    s >> tensor;
    double v = 0;
    while (s >> v) {
      tensors[tensor].push_back(v);
    }
  }
  return tensors;
}

template <class Net, class Scorer>
void check_against_pytorch(Case<Net>& c, Scorer scorer, const std::string& fixture) {
  const auto expected = read_fixture(fixture);
  Rng rng = make_stream(1, "unused");
  const ParameterSet<double> scores = scorer.score(c.net, c.data(), rng);
  REQUIRE(scores.layout().tensors().size() == expected.size());
  for (const TensorSlot& t : scores.layout().tensors()) {
    CAPTURE(fixture);
    CAPTURE(t.name);
    REQUIRE(expected.count(t.name) == 1);
    const std::vector<double>& e = expected.at(t.name);
    REQUIRE(static_cast<Index>(e.size()) == t.size);
    const auto got = scores.tensor(t.name);
    for (Index i = 0; i < t.size; ++i) {
      CAPTURE(i);
      CHECK(std::abs(got[i] - e[static_cast<std::size_t>(i)]) <=
            1e-10 * std::abs(e[static_cast<std::size_t>(i)]) + 1e-300);
    }
  }
}

}  // namespace

TEST_CASE("Magnitude, SNIP and SynFlow match PyTorch to 1e-10 (double)") {
  Case<Mlp> mlp(4);
  Case<ConvNet> conv(3);
  SUBCASE("magnitude") {
    check_against_pytorch(mlp, prune::Magnitude{}, "mlp_magnitude");
    check_against_pytorch(conv, prune::Magnitude{}, "conv_magnitude");
  }
  SUBCASE("snip") {
    check_against_pytorch(mlp, prune::Snip{}, "mlp_snip");
    check_against_pytorch(conv, prune::Snip{}, "conv_snip");
  }
  SUBCASE("synflow") {
    check_against_pytorch(mlp, prune::SynFlow{}, "mlp_synflow");
    check_against_pytorch(conv, prune::SynFlow{}, "conv_synflow");
  }
}

TEST_CASE("IterSNIP and GraSP match PyTorch to 1e-10 (double)") {
  Case<Mlp> mlp(4);
  Case<ConvNet> conv(3);
  SUBCASE("itersnip") {
    check_against_pytorch(mlp, prune::IterSnip{}, "mlp_itersnip");
    check_against_pytorch(conv, prune::IterSnip{}, "conv_itersnip");
  }
  SUBCASE("grasp") {
    check_against_pytorch(mlp, prune::Grasp{}, "mlp_grasp");
    check_against_pytorch(conv, prune::Grasp{}, "conv_grasp");
  }
}

TEST_CASE("SNIP, IterSNIP and GraSP on a masked MLP match PyTorch (pruned weights score 0)") {
  Case<Mlp> c(4);
  c.mask_every_third();
  check_against_pytorch(c, prune::Snip{}, "mlp_masked_snip");
  check_against_pytorch(c, prune::IterSnip{}, "mlp_masked_itersnip");
  check_against_pytorch(c, prune::Grasp{}, "mlp_masked_grasp");
}

TEST_CASE("PX matches PyTorch to 1e-10 (double): both max-pooling routings, and masked") {
  Case<Mlp> mlp(4);
  Case<ConvNet> conv(3);
  check_against_pytorch(mlp, prune::Px{}, "mlp_px");
  check_against_pytorch(conv, prune::Px{}, "conv_px");
  check_against_pytorch(conv, prune::Px{.pooling = prune::PoolRouting::real}, "conv_px_consistent");
  mlp.mask_every_third();
  check_against_pytorch(mlp, prune::Px{}, "mlp_masked_px");
}

TEST_CASE("SNIP scores a weight whose mask is 0 but whose value is not; IterSNIP gives it 0") {
  Case<Mlp> c(4);
  auto& w = c.net.layer<0>().parameters()[0];
  w.mask = Vector<double>::Ones(w.size());
  w.mask[1] = 0.0;  // masked, value left as it was: the reference's state between rounds
  Rng rng = make_stream(5, "revival");
  const ParameterSet<double> snip = prune::Snip{}.score(c.net, c.data(), rng);
  const ParameterSet<double> iter = prune::IterSnip{}.score(c.net, c.data(), rng);
  CHECK(snip.tensor("0.weight")[1] > 0.0);
  CHECK(iter.tensor("0.weight")[1] == 0.0);
  CHECK(iter.values().sum() == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("GraSP: signed scores, the reference's sign, normalised by |sum|") {
  Case<Mlp> c(4);
  c.net.set_training(true);
  const ParameterSet<double> before(c.net, TensorSelection::all);
  Rng rng = make_stream(6, "grasp");
  const ParameterSet<double> s = prune::Grasp{}.score(c.net, c.data(), rng);
  // θ ⊙ Hg, not its negation: both signs occur and the scores sum to Σ/(|Σ| + 1e-10), just under
  // +1 here (Σ ≈ 1e-5 > 0), where −θ ⊙ Hg would sum to about −1.
  CHECK((s.values().array() > 0.0).any());
  CHECK((s.values().array() < 0.0).any());
  CHECK(s.values().sum() > 0.999);
  CHECK(s.values().sum() < 1.0);
  CHECK(ParameterSet<double>(c.net, TensorSelection::all).values() == before.values());
  CHECK(c.net.training());
  c.net.for_each_parameter(
      [](std::string_view, const Parameter<double>& p) { CHECK(p.grad.isZero(0.0)); });
}

TEST_CASE("GraSP needs labels and a nonempty batch") {
  Case<ConvNet> c(3);
  Rng rng = make_stream(7, "grasp-errors");
  prune::PruningData<double> no_labels{ConstBatchView<double>(c.x.data(), 36, 3), {}};
  CHECK_THROWS_WITH_AS(prune::Grasp{}.score(c.net, no_labels, rng),
                       "GraSP: 0 labels for 3 pruning samples", shape_error);
  prune::PruningData<double> empty{ConstBatchView<double>(c.x.data(), 36, 0), {}};
  CHECK_THROWS_WITH_AS(prune::Grasp{}.score(c.net, empty, rng), "GraSP: the pruning batch is empty",
                       argument_error);
}

TEST_CASE("SNIP leaves the network as it was: values, mode, zero gradients") {
  Case<Mlp> c(4);
  c.net.set_training(true);
  const ParameterSet<double> before(c.net, TensorSelection::all);
  Rng rng = make_stream(2, "snip");
  const ParameterSet<double> s = prune::Snip{}.score(c.net, c.data(), rng);
  CHECK(s.values().sum() == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(ParameterSet<double>(c.net, TensorSelection::all).values() == before.values());
  CHECK(c.net.training());
  c.net.for_each_parameter(
      [](std::string_view, const Parameter<double>& p) { CHECK(p.grad.isZero(0.0)); });
}

TEST_CASE("SNIP needs labels, one per sample") {
  Case<Mlp> c(4);
  Rng rng = make_stream(3, "snip-labels");
  prune::PruningData<double> no_labels{ConstBatchView<double>(c.x.data(), 6, 4), {}};
  CHECK_THROWS_WITH_AS(prune::Snip{}.score(c.net, no_labels, rng),
                       "SNIP: 0 labels for 4 pruning samples", shape_error);
}

TEST_CASE("SynFlow does not touch the network, and pruned weights score 0") {
  Case<ConvNet> c(1);
  c.net.layer<4>().parameters()[0].mask = Vector<double>::Ones(54);
  c.net.layer<4>().parameters()[0].mask[5] = 0.0;
  c.net.layer<4>().parameters()[0].apply_mask();
  const ParameterSet<double> before(c.net, TensorSelection::all);
  Rng rng = make_stream(4, "synflow");
  const ParameterSet<double> s = prune::SynFlow{}.score(c.net, c.data(), rng);
  CHECK(s.tensor("4.weight")[5] == 0.0);
  CHECK((s.values().array() >= 0.0).all());
  CHECK(ParameterSet<double>(c.net, TensorSelection::all).values() == before.values());
}
