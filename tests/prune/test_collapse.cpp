// prune/collapse.hpp: reachability through hand-built masks. A dense network is connected; a
// Dense that keeps no weight from the units reaching it cuts the path (biases do not bridge it);
// dead ends lower `alive` without a collapse; Conv2D joins channels, pooling and Flatten pass them
// on; a Residual block's skip survives a collapsed body.
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/residual.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/prune/collapse.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/scorer.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace edgescale;

namespace {

using Mlp = nn::BasicSequential<double, nn::Input<6>, nn::Dense<6, 5>, nn::ReLU, nn::Dense<5, 4>,
                                nn::ReLU, nn::Dense<4, 3>>;
using ConvNet = nn::BasicSequential<double, nn::Input<1, 6, 6>, nn::Conv2D<1, 2, 3, nn::Pad<1>>,
                                    nn::ReLU, nn::MaxPool2D<2>, nn::Flatten, nn::Dense<18, 3>>;
using ResNet =
    nn::BasicSequential<double, nn::Input<4>, nn::Dense<4, 4>,
                        nn::Residual<nn::Dense<4, 4>, nn::ReLU, nn::Dense<4, 4>>, nn::Dense<4, 2>>;

/// A user's layer the report does not know: y_i = Σ_j x_j (every unit mixes every unit).
template <class T, class S>
class SumLayer {
 public:
  using scalar_type = T;
  using input_shape = S;
  using output_shape = S;
  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    y_.resize(S::size, x.cols()).rowwise() = x.colwise().sum();
    return y_.cview();
  }
  ConstBatchView<T> backward(const ConstBatchView<T>& dy) {
    dx_.resize(S::size, dy.cols()).rowwise() = dy.colwise().sum();
    return dx_.cview();
  }

 private:
  Workspace<T> y_, dx_;
};
struct Sum {
  template <StaticShape S>
  static constexpr bool accepts = true;
  template <class T, StaticShape S>
  using layer = SumLayer<T, S>;
};
using SumNet =
    nn::BasicSequential<double, nn::Input<3>, nn::Dense<3, 3>, Sum, nn::ReLU, nn::Dense<3, 2>>;

/// All-ones masks for `net`, to be edited entry by entry.
template <class Net>
ParameterSet<double> ones(const Net& net) {
  ParameterSet<double> m = prune::zero_scores(net);
  m.values().setOnes();
  return m;
}

/// Dense weight (out, in) row-major: entry (i, j).
void set(ParameterSet<double>& m, const char* tensor, Index in, Index i, Index j, double v) {
  m.tensor(tensor)[i * in + j] = v;
}

std::vector<std::string> paths(const prune::ConnectivityReport& r) {
  std::vector<std::string> p;
  for (const auto& l : r.layers) {
    p.push_back(l.path);
  }
  return p;
}

}  // namespace

TEST_CASE("a dense network is connected: every unit reachable and alive") {
  Rng rng = make_stream(31, "collapse");
  const Mlp net{nn::init::kaiming_normal, rng};
  const prune::ConnectivityReport r = prune::connectivity(net);
  CHECK(paths(r) == std::vector<std::string>{"0", "1", "2", "3", "4"});
  CHECK_FALSE(r.collapsed());
  CHECK(r.cut() == nullptr);
  CHECK(r.inputs == 6);
  CHECK(r.inputs_alive == 6);
  CHECK(r.outputs_reachable == 3);
  const std::vector<Index> units = {5, 5, 4, 4, 3};
  for (std::size_t k = 0; k < units.size(); ++k) {
    CAPTURE(k);
    CHECK(r.layers[k].units == units[k]);
    CHECK(r.layers[k].reachable == units[k]);
    CHECK(r.layers[k].alive == units[k]);
    CHECK(r.layers[k].density() == 1.0);
    CHECK_FALSE(r.layers[k].collapsed);
  }
  CHECK(r.layers[0].weights == 30);
  CHECK(r.layers[1].weights == 0);
}

TEST_CASE("a Dense keeping no weight from the reachable units cuts the network") {
  Rng rng = make_stream(32, "collapse");
  Mlp net{nn::init::kaiming_normal, rng};
  ParameterSet<double> m = ones(net);
  // Layer 0 feeds hidden units 0 and 1 only; layer 2 reads hidden units 3 and 4 only.
  for (Index i = 2; i < 5; ++i) {
    for (Index j = 0; j < 6; ++j) {
      set(m, "0.weight", 6, i, j, 0.0);
    }
  }
  for (Index i = 0; i < 4; ++i) {
    for (Index j = 0; j < 3; ++j) {
      set(m, "2.weight", 5, i, j, 0.0);
    }
  }
  prune::apply_masks(net, m);
  const prune::ConnectivityReport r = prune::connectivity(net);
  CHECK(r.collapsed());
  REQUIRE(r.cut() != nullptr);
  CHECK(r.cut()->path == "2");
  CHECK(r.layers[0].reachable == 2);
  CHECK(r.layers[0].density() == doctest::Approx(12.0 / 30.0));
  CHECK(r.layers[1].reachable == 2);  // ReLU passes units through
  CHECK(r.layers[2].reachable == 0);
  CHECK(r.layers[2].collapsed);
  CHECK_FALSE(r.layers[4].collapsed);  // nothing reached it: not the cut
  CHECK(r.outputs_reachable == 0);
  CHECK(r.inputs_alive == 0);
  for (const auto& l : r.layers) {
    CHECK(l.alive == 0);
  }
}

TEST_CASE("biases do not keep a unit alive: a fully masked Dense collapses the network") {
  Rng rng = make_stream(33, "collapse");
  Mlp net{nn::init::kaiming_normal, rng};
  net.layer<4>().parameters()[1].value.setConstant(1.0);  // output biases stay, non-zero
  ParameterSet<double> m = ones(net);
  m.tensor("4.weight").setZero();
  prune::apply_masks(net, m);
  const prune::ConnectivityReport r = prune::connectivity(net);
  CHECK(r.collapsed());
  REQUIRE(r.cut() != nullptr);
  CHECK(r.cut()->path == "4");
  CHECK(r.layers[3].reachable == 4);
  CHECK(r.layers[3].alive == 0);  // reachable, but no path on
  CHECK(r.layers[4].density() == 0.0);
}

TEST_CASE("dead ends lower alive units without a collapse") {
  Rng rng = make_stream(34, "collapse");
  Mlp net{nn::init::kaiming_normal, rng};
  ParameterSet<double> m = prune::zero_scores(net);  // all pruned, then keep a few
  set(m, "0.weight", 6, 0, 0, 1.0);                  // input 0 -> hidden 0
  set(m, "0.weight", 6, 1, 1, 1.0);                  // input 1 -> hidden 1 (dead end)
  set(m, "0.weight", 6, 2, 1, 1.0);                  // input 1 -> hidden 2 (dead end)
  set(m, "2.weight", 5, 3, 0, 1.0);                  // hidden 0 -> hidden' 3
  set(m, "2.weight", 5, 0, 4, 1.0);                  // hidden 4 (unreachable) -> hidden' 0
  set(m, "4.weight", 4, 2, 3, 1.0);                  // hidden' 3 -> output 2
  set(m, "4.weight", 4, 1, 0, 1.0);                  // hidden' 0 -> output 1
  prune::apply_masks(net, m);
  const prune::ConnectivityReport r = prune::connectivity(net);
  CHECK_FALSE(r.collapsed());
  CHECK(r.cut() == nullptr);
  CHECK(r.layers[0].reachable == 3);
  CHECK(r.layers[0].alive == 1);
  CHECK(r.layers[2].reachable == 1);
  CHECK(r.layers[2].alive == 1);
  CHECK(r.layers[4].reachable == 1);
  CHECK(r.layers[4].alive == 1);
  CHECK(r.outputs_reachable == 1);
  CHECK(r.inputs_alive == 1);
}

TEST_CASE("Conv2D joins channels through any kept tap; pooling and Flatten pass them on") {
  Rng rng = make_stream(35, "collapse");
  ConvNet net{nn::init::kaiming_normal, rng};
  ParameterSet<double> m = ones(net);
  m.tensor("0.weight").head(9).setZero();  // output channel 0 loses its whole kernel
  m.tensor("0.weight").tail(9).setZero();
  m.tensor("0.weight")[9 + 4] = 1.0;  // channel 1 keeps its centre tap
  // The Dense reads the flattened channel 0 (units 0..8) only.
  m.tensor("4.weight").setZero();
  for (Index i = 0; i < 3; ++i) {
    for (Index j = 0; j < 9; ++j) {
      set(m, "4.weight", 18, i, j, 1.0);
    }
  }
  prune::apply_masks(net, m);
  prune::ConnectivityReport r = prune::connectivity(net);
  CHECK(r.inputs == 1);  // one input channel
  CHECK(r.layers[0].units == 2);
  CHECK(r.layers[0].reachable == 1);
  CHECK(r.layers[2].units == 2);
  CHECK(r.layers[2].reachable == 1);  // pooling passes the channel
  CHECK(r.layers[3].units == 18);
  CHECK(r.layers[3].reachable == 9);  // Flatten: channel 1's 3 x 3 values
  CHECK(r.collapsed());
  REQUIRE(r.cut() != nullptr);
  CHECK(r.cut()->path == "4");

  // One kept weight from a value of channel 1 reconnects.
  set(m, "4.weight", 18, 2, 13, 1.0);
  prune::apply_masks(net, m);
  r = prune::connectivity(net);
  CHECK_FALSE(r.collapsed());
  CHECK(r.layers[0].alive == 1);
  CHECK(r.layers[3].alive == 1);  // the one flattened value read
  CHECK(r.layers[4].reachable == 1);
  CHECK(r.inputs_alive == 1);
}

TEST_CASE("a Residual block's skip survives a collapsed body; a cut before it does not") {
  Rng rng = make_stream(36, "collapse");
  ResNet net{nn::init::kaiming_normal, rng};
  ParameterSet<double> m = ones(net);
  m.tensor("1.body.0.weight").setZero();
  prune::apply_masks(net, m);
  prune::ConnectivityReport r = prune::connectivity(net);
  CHECK(paths(r) == std::vector<std::string>{"0", "1", "1.body.0", "1.body.1", "1.body.2", "2"});
  CHECK(r.layers[1].depth == 0);
  CHECK(r.layers[2].depth == 1);
  CHECK(r.layers[2].collapsed);  // the body is cut ...
  CHECK(r.layers[4].reachable == 0);
  CHECK(r.layers[1].reachable == 4);  // ... the block is not
  CHECK(r.layers[1].weights == 32);
  CHECK(r.layers[1].kept == 16);
  CHECK_FALSE(r.collapsed());
  CHECK(r.cut() == nullptr);
  CHECK(r.layers[3].alive == 0);  // ReLU in the body: reachable from nowhere

  m.tensor("0.weight").setZero();
  prune::apply_masks(net, m);
  r = prune::connectivity(net);
  CHECK(r.collapsed());
  REQUIRE(r.cut() != nullptr);
  CHECK(r.cut()->path == "0");
}

TEST_CASE("a layer the report does not know joins every unit to every unit (no false collapse)") {
  Rng rng = make_stream(37, "collapse");
  SumNet net{nn::init::kaiming_normal, rng};
  ParameterSet<double> m = prune::zero_scores(net);
  set(m, "0.weight", 3, 0, 0, 1.0);  // input 0 -> unit 0 only
  set(m, "3.weight", 3, 1, 2, 1.0);  // unit 2 -> output 1 only: joined through the sum
  prune::apply_masks(net, m);
  const prune::ConnectivityReport r = prune::connectivity(net);
  CHECK(r.layers[0].reachable == 1);
  CHECK(r.layers[1].reachable == 3);
  CHECK(r.layers[1].alive == 1);
  CHECK_FALSE(r.collapsed());
  CHECK(r.outputs_reachable == 1);
}
