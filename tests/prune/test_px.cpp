// PX against an independent hand computation: for a Dense stack the scores are the per-layer outer
// products of DESIGN §3a (A_l = M_l ⊙ W_l², h_{l+1} = A_l h_l + b_l², δ_L = Σ_n z1[:, n],
// δ_l = A_lᵀ δ_{l+1}, score(W_l) = W_l² ⊙ M_l ⊙ δ_{l+1} h_lᵀ), written here with plain Eigen from
// the real network's gates; the PyTorch fixtures (test_scorers.cpp) check the conv nets.
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/prune/mask.hpp>
#include <edgescale/prune/px.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <limits>
#include <string>

using namespace edgescale;

namespace {

using Mlp = nn::BasicSequential<double, nn::Input<6>, nn::Dense<6, 5>, nn::ReLU, nn::Dense<5, 4>,
                                nn::ReLU, nn::Dense<4, 3>>;
static_assert(prune::PruningScorer<prune::Px, Mlp>);

/// Row-major (out, in) parameter memory as an Eigen matrix.
Matrix<double> as_matrix(const Parameter<double>& w) {
  Matrix<double> m(w.shape[0], w.shape[1]);
  for (Index i = 0; i < m.rows(); ++i) {
    for (Index j = 0; j < m.cols(); ++j) {
      m(i, j) = w.value[i * m.cols() + j];
    }
  }
  return m;
}
Matrix<double> mask_matrix(const Parameter<double>& w) {
  Matrix<double> m = Matrix<double>::Ones(w.shape[0], w.shape[1]);
  if (w.masked()) {
    for (Index i = 0; i < m.rows(); ++i) {
      for (Index j = 0; j < m.cols(); ++j) {
        m(i, j) = w.mask[i * m.cols() + j];
      }
    }
  }
  return m;
}

struct HandPx {
  std::array<Matrix<double>, 3> weight_scores;
  std::array<Matrix<double>, 3> weight_dr;  // ∂R/∂(W²) (unmasked)
  std::array<Vector<double>, 3> bias_dr;    // ∂R/∂(b²)
  Matrix<double> z1;
  Vector<double> z2;
  double r = 0;
};

HandPx by_hand(Mlp& net, const Matrix<double>& x) {
  std::array<Matrix<double>, 3> w;
  std::array<Matrix<double>, 3> m;
  std::array<Vector<double>, 3> b;
  int l = 0;
  nn::for_each_layer(net, [&](std::string_view, auto& layer) {
    if constexpr (nn::is_dense_layer_v<std::remove_cvref_t<decltype(layer)>>) {
      w[l] = as_matrix(layer.parameters()[0]);
      m[l] = mask_matrix(layer.parameters()[0]);
      b[l] = layer.parameters()[1].value;
      ++l;
    }
  });
  // the real network's gates
  const Matrix<double> pre1 = (w[0] * x).colwise() + b[0];
  const Matrix<double> a1 = (pre1.array() > 0).cast<double>();
  const Matrix<double> pre2 = (w[1] * pre1.cwiseMax(0.0)).colwise() + b[1];
  const Matrix<double> a2 = (pre2.array() > 0).cast<double>();
  // jvf
  const Matrix<double> x2 = x.cwiseAbs2();
  const Matrix<double> g1 =
      a1.cwiseProduct((m[0] * x2).array().matrix() + Matrix<double>::Ones(5, x.cols()));
  const Matrix<double> g2 = a2.cwiseProduct(m[1] * g1 + Matrix<double>::Ones(4, x.cols()));
  HandPx out;
  out.z1 = m[2] * g2 + Matrix<double>::Ones(3, x.cols());
  // pk, the outer products
  std::array<Matrix<double>, 3> a;
  std::array<Vector<double>, 4> h;
  h[0] = Vector<double>::Ones(6);
  for (int k = 0; k < 3; ++k) {
    a[k] = m[k].cwiseProduct(w[k].cwiseAbs2());
    h[k + 1] = a[k] * h[k] + b[k].cwiseAbs2();
  }
  out.z2 = h[3];
  std::array<Vector<double>, 4> delta;
  delta[3] = out.z1.rowwise().sum();
  for (int k = 2; k >= 0; --k) {
    delta[k] = a[k].transpose() * delta[k + 1];
  }
  for (int k = 0; k < 3; ++k) {
    out.weight_dr[k] = delta[k + 1] * h[k].transpose();
    out.weight_scores[k] = a[k].cwiseProduct(out.weight_dr[k]);
    out.bias_dr[k] = delta[k + 1];
  }
  out.r = delta[3].dot(out.z2);
  return out;
}

double relative(const Matrix<double>& got, const Matrix<double>& expected) {
  return (got - expected).cwiseAbs().maxCoeff() / expected.cwiseAbs().maxCoeff();
}

Mlp random_mlp(Rng& rng) {
  Mlp net{nn::init::kaiming_normal, rng};
  // biases of both signs, so gates and bias paths matter
  net.for_each_parameter([&](std::string_view, Parameter<double>& p) {
    if (p.role == ParameterRole::bias) {
      for (Index i = 0; i < p.size(); ++i) {
        p.value[i] = standard_normal<double>(rng) * 0.5;
      }
    }
  });
  return net;
}

Matrix<double> random_inputs(Index rows, Index cols, Rng& rng) {
  Matrix<double> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) {
    x.data()[i] = standard_normal<double>(rng);
  }
  return x;
}

void check_against_hand(Mlp& net, const Matrix<double>& x) {
  const HandPx hand = by_hand(net, x);
  const prune::PruningData<double> data{batch_view(x), {}};
  const prune::PxTerms t = prune::px_terms(net, data);
  CHECK(relative(t.z1, hand.z1) < 1e-13);
  REQUIRE(t.z2.cols() == 1);
  CHECK(relative(t.z2, hand.z2) < 1e-13);
  CHECK(std::abs(t.r - hand.r) <= 1e-13 * hand.r);
  Rng rng = make_stream(0, "unused");
  const ParameterSet<double> s = prune::Px{}.score(net, data, rng);
  const std::array<std::string, 3> names{"0", "2", "4"};
  for (int k = 0; k < 3; ++k) {
    CAPTURE(k);
    const auto got = s.tensor(names[k] + ".weight");
    const auto dr = t.dr_dsquare.tensor(names[k] + ".weight");
    const Matrix<double>& e = hand.weight_scores[k];
    for (Index i = 0; i < e.rows(); ++i) {
      for (Index j = 0; j < e.cols(); ++j) {
        CHECK(std::abs(got[i * e.cols() + j] - e(i, j)) <= 1e-13 * e.cwiseAbs().maxCoeff());
        CHECK(std::abs(dr[i * e.cols() + j] - hand.weight_dr[k](i, j)) <=
              1e-13 * hand.weight_dr[k].cwiseAbs().maxCoeff());
      }
    }
    const auto db = t.dr_dsquare.tensor(names[k] + ".bias");
    CHECK(relative(Vector<double>(db), hand.bias_dr[k]) < 1e-13);
  }
}

}  // namespace

TEST_CASE("PX on a Dense stack is the per-layer outer product of DESIGN §3a") {
  Rng rng = make_stream(1, "px");
  for (int trial = 0; trial < 10; ++trial) {
    CAPTURE(trial);
    Mlp net = random_mlp(rng);
    const Matrix<double> x = random_inputs(6, 1 + trial % 5, rng);
    check_against_hand(net, x);
  }
}

TEST_CASE("PX on a masked Dense stack: pruned weights score 0, paths through them are gone") {
  Rng rng = make_stream(2, "px-masked");
  Mlp net = random_mlp(rng);
  net.for_each_parameter([&](std::string_view, Parameter<double>& p) {
    if (p.prunable()) {
      p.mask = Vector<double>::Ones(p.size());
      for (Index i = 0; i < p.size(); i += 3) {
        p.mask[i] = 0.0;
      }
      p.apply_mask();
    }
  });
  const Matrix<double> x = random_inputs(6, 4, rng);
  check_against_hand(net, x);
  Rng unused = make_stream(0, "unused");
  const ParameterSet<double> s =
      prune::Px{}.score(net, prune::PruningData<double>{batch_view(x), {}}, unused);
  CHECK(s.tensor("2.weight")[0] == 0.0);
  CHECK(s.tensor("2.weight")[3] == 0.0);
  CHECK(s.tensor("2.weight")[1] > 0.0);
}

TEST_CASE("PX leaves the network as it was and needs no labels; routing is moot without pooling") {
  Rng rng = make_stream(3, "px-untouched");
  Mlp net = random_mlp(rng);
  net.set_training(true);
  const ParameterSet<double> before(net, TensorSelection::all);
  const Matrix<double> x = random_inputs(6, 3, rng);
  const prune::PruningData<double> data{batch_view(x), {}};
  const ParameterSet<double> a = prune::Px{}.score(net, data, rng);
  const ParameterSet<double> b =
      prune::Px{.pooling = prune::PoolRouting::real}.score(net, data, rng);
  CHECK((a.values() - b.values()).cwiseAbs().maxCoeff() <= 1e-13 * a.values().maxCoeff());
  CHECK(ParameterSet<double>(net, TensorSelection::all).values() == before.values());
  CHECK(net.training());
  CHECK((a.values().array() >= 0.0).all());
  // real routing: z2 is per sample, identical columns here
  const prune::PxTerms t = prune::px_terms(net, data, prune::PoolRouting::real);
  CHECK(t.z2.cols() == 3);
}

TEST_CASE("PX refuses an empty, mis-shaped or non-finite pruning batch") {
  Rng rng = make_stream(4, "px-errors");
  Mlp net = random_mlp(rng);
  const Matrix<double> none(6, 0);
  CHECK_THROWS_WITH_AS(prune::Px{}.score(net, {batch_view(none), {}}, rng),
                       "PX: the pruning batch is empty", argument_error);
  const Matrix<double> wrong(5, 2);
  CHECK_THROWS_AS(prune::Px{}.score(net, {batch_view(wrong), {}}, rng), shape_error);
  Matrix<double> nan = Matrix<double>::Ones(6, 2);
  nan(3, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(prune::Px{}.score(net, {batch_view(nan), {}}, rng),
                       "PX: the pruning batch has a NaN or infinite input", argument_error);
}

TEST_CASE("a Px keeps its auxiliary copy between rounds: the scores of a fresh one every time") {
  Rng rng = make_stream(5, "px-cache");
  Mlp net = random_mlp(rng);
  const Matrix<double> x = random_inputs(6, 4, rng);
  const prune::PruningData<double> data{batch_view(x), {}};
  prune::Px kept;
  for (const double density : {0.8, 0.5, 0.3}) {
    CAPTURE(density);
    const ParameterSet<double> reused = kept.score(net, data, rng);
    const ParameterSet<double> fresh = prune::Px{}.score(net, data, rng);
    CHECK(reused.values() == fresh.values());
    prune::apply_masks(net, prune::masks_from_scores(reused, density));
  }
  // a copy starts without the kept twin, and another network type gets its own
  prune::Px copy = kept;
  CHECK(copy.score(net, data, rng).values() == kept.score(net, data, rng).values());
  nn::BasicSequential<double, nn::Input<6>, nn::Dense<6, 3>> other{nn::init::kaiming_normal, rng};
  CHECK(kept.score(other, data, rng).values() == prune::Px{}.score(other, data, rng).values());
  CHECK(kept.score(net, data, rng).values() == prune::Px{}.score(net, data, rng).values());
}
