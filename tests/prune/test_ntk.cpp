// The exact empirical NTK (prune/ntk.hpp) against central finite differences, and PX's bound
// chain ‖Θ‖_F ≤ Tr Θ ≤ Σ_j ∂R/∂(θ_j²) ≤ ‖J_v f‖²_F·‖J_θ v‖²_F (DESIGN §3a) on 100 random ReLU
// networks, with the path sums checked against a brute-force walk over every path
// (path_enumeration.hpp).
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/prune/ntk.hpp>
#include <edgescale/prune/px.hpp>

#include <Eigen/Eigenvalues>

#include "prune/path_enumeration.hpp"
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

using namespace edgescale;

namespace {

// ---- the networks: Dense stacks of 1 to 4 hidden layers of widths 1 to 6, and conv nets ----

template <class... Specs>
using Net = nn::BasicSequential<double, Specs...>;
using nn::Dense;
using nn::ReLU;

using Dense1x1 = Net<nn::Input<3>, Dense<3, 1>, ReLU, Dense<1, 2>>;
using Dense2 = Net<nn::Input<4>, Dense<4, 3>, ReLU, Dense<3, 5>, ReLU, Dense<5, 2>>;
using Dense3 = Net<nn::Input<5>, Dense<5, 6, nn::NoBias>, ReLU, Dense<6, 6>, ReLU, Dense<6, 4>,
                   ReLU, Dense<4, 3>>;
using Dense4Wide = Net<nn::Input<6>, Dense<6, 5>, ReLU, Dense<5, 4>, ReLU, Dense<4, 6>, ReLU,
                       Dense<6, 5>, ReLU, Dense<5, 3>>;
using ConvAvg = Net<nn::Input<1, 4, 4>, nn::Conv2D<1, 2, 3, nn::Pad<1>>, ReLU, nn::AvgPool2D<2>,
                    nn::Flatten, Dense<8, 3>>;
using ConvConvAvg = Net<nn::Input<2, 5, 5>, nn::Conv2D<2, 3, 3>, ReLU, nn::Conv2D<3, 2, 2>, ReLU,
                        nn::AvgPool2D<2>, nn::Flatten, Dense<2, 2>>;
using ConvMax = Net<nn::Input<1, 6, 6>, nn::Conv2D<1, 2, 3, nn::Pad<1>>, ReLU, nn::MaxPool2D<2>,
                    nn::Flatten, Dense<18, 4>, ReLU, Dense<4, 2>>;
using ConvStridedMaxOverlap =
    Net<nn::Input<1, 5, 5>, nn::Conv2D<1, 2, 3, nn::Stride<2>, nn::Pad<1>>, ReLU,
        nn::MaxPool2D<2, 1>, nn::Flatten, Dense<8, 2>>;

/// Draws every trained value: weights uniform in ±scale, biases all positive, all negative or
/// mixed, and (when mask_fraction > 0) that fraction of the weights masked and zeroed.
template <class N>
void randomize(N& net, Rng& rng, double scale, int bias_sign, double mask_fraction) {
  net.for_each_parameter([&](std::string_view, Parameter<double>& p) {
    for (Index i = 0; i < p.size(); ++i) {
      if (p.role == ParameterRole::bias) {
        const double b = uniform<double>(rng, 0.0, 0.5 * scale);
        p.value[i] = bias_sign > 0 ? b : bias_sign < 0 ? -b : uniform<double>(rng, -b, b);
      } else {
        p.value[i] = uniform<double>(rng, -scale, scale);
      }
    }
    if (p.prunable() && mask_fraction > 0) {
      p.mask.resize(p.size());
      for (Index i = 0; i < p.size(); ++i) {
        p.mask[i] = uniform01<double>(rng) < mask_fraction ? 0.0 : 1.0;
      }
      p.apply_mask();
    }
  });
}

Matrix<double> random_inputs(Index rows, Index cols, Rng& rng) {
  Matrix<double> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) {
    x(i) = uniform<double>(rng, -1.0, 1.0);
  }
  return x;
}

/// a ≤ b up to rounding: a relative slack of 1e-12, never more.
bool at_most(double a, double b) {
  return a <= b + 1e-12 * std::abs(b);
}

/// J by central differences of the network's forward: column j is (f(θ + h e_j) − f(θ − h e_j))
/// / 2h, rows sample-major as empirical_ntk's. Masked values are not parameters: their columns
/// are left zero.
template <class N>
Matrix<double> finite_difference_jacobian(N& net, const Matrix<double>& x, double h = 1e-6) {
  constexpr Index outputs = N::output_shape::size;
  ParameterSet<double> theta(net, TensorSelection::trained);
  const Vector<double> mask = theta.has_mask() ? theta.mask() : Vector<double>::Ones(theta.size());
  auto outputs_at = [&](const ParameterSet<double>& at) {
    at.write(net);
    const Matrix<double> y = net.forward(x);
    return Vector<double>(Eigen::Map<const Vector<double>>(y.data(), outputs * x.cols()));
  };
  Matrix<double> j = Matrix<double>::Zero(outputs * x.cols(), theta.size());
  ParameterSet<double> moved = theta;
  for (Index i = 0; i < theta.size(); ++i) {
    if (mask[i] == 0) {
      continue;
    }
    moved.values()[i] = theta.values()[i] + h;
    const Vector<double> plus = outputs_at(moved);
    moved.values()[i] = theta.values()[i] - h;
    const Vector<double> minus = outputs_at(moved);
    moved.values()[i] = theta.values()[i];
    j.col(i) = (plus - minus) / (2 * h);
  }
  theta.write(net);
  return j;
}

template <class N>
void check_against_finite_differences(N& net, const Matrix<double>& x) {
  const prune::EmpiricalNtk ntk = prune::empirical_ntk(net, x);
  const Matrix<double> fd = finite_difference_jacobian(net, x);
  REQUIRE(ntk.jacobian.rows() == fd.rows());
  REQUIRE(ntk.jacobian.cols() == fd.cols());
  CHECK((ntk.jacobian - fd).norm() <= 1e-8 * fd.norm());
  // Θ = J Jᵀ, exactly symmetric, positive semidefinite; Tr Θ = ‖J‖²_F.
  CHECK((ntk.kernel - ntk.jacobian * ntk.jacobian.transpose()).norm() <= 1e-13 * ntk.kernel.norm());
  CHECK(ntk.kernel == ntk.kernel.transpose());
  const Vector<double> eigenvalues =
      Eigen::SelfAdjointEigenSolver<Matrix<double>>(ntk.kernel, Eigen::EigenvaluesOnly)
          .eigenvalues();
  CHECK(eigenvalues.minCoeff() >= -1e-12 * eigenvalues.cwiseAbs().maxCoeff());
  CHECK(ntk.trace() == doctest::Approx(ntk.jacobian.squaredNorm()).epsilon(1e-13));
  CHECK(ntk.frobenius_norm() == doctest::Approx(ntk.kernel.norm()).epsilon(1e-15));
}

}  // namespace

TEST_CASE("empirical_ntk: J matches central finite differences; Θ = J Jᵀ is symmetric and PSD") {
  Rng rng = make_stream(6, "ntk finite differences");
  SUBCASE("Dense stack, biases") {
    Dense4Wide net;
    randomize(net, rng, 1.0, 0, 0.0);
    check_against_finite_differences(net, random_inputs(6, 4, rng));
  }
  SUBCASE("Dense stack, masked weights (their columns are zero)") {
    Dense3 net;
    randomize(net, rng, 1.0, 1, 0.3);
    const Matrix<double> x = random_inputs(5, 3, rng);
    check_against_finite_differences(net, x);
    const prune::EmpiricalNtk ntk = prune::empirical_ntk(net, x);
    const ParameterSet<double> theta(net, TensorSelection::trained);
    REQUIRE(theta.has_mask());
    Index masked = 0;
    for (Index j = 0; j < theta.size(); ++j) {
      if (theta.mask()[j] == 0) {
        ++masked;
        CHECK(ntk.jacobian.col(j).isZero(0));
      }
    }
    CHECK(masked > 0);
  }
  SUBCASE("conv, ReLU, average pooling") {
    ConvConvAvg net;
    randomize(net, rng, 0.8, -1, 0.0);
    check_against_finite_differences(net, random_inputs(50, 3, rng));
  }
  SUBCASE("conv, ReLU, max pooling, two Dense") {
    ConvMax net;
    randomize(net, rng, 0.8, 0, 0.0);
    check_against_finite_differences(net, random_inputs(36, 5, rng));
  }
  SUBCASE("strided conv, overlapping max pooling") {
    ConvStridedMaxOverlap net;
    randomize(net, rng, 0.8, 1, 0.0);
    check_against_finite_differences(net, random_inputs(25, 2, rng));
  }
}

TEST_CASE("empirical_ntk: sample-major rows; the network's mode is restored and gradients zero") {
  Rng rng = make_stream(7, "ntk layout");
  Dense2 net;
  randomize(net, rng, 1.0, 0, 0.0);
  const Matrix<double> x = random_inputs(4, 3, rng);
  net.set_training(true);
  const prune::EmpiricalNtk ntk = prune::empirical_ntk(net, x);
  CHECK(net.training());
  net.for_each_parameter(
      [](std::string_view, const Parameter<double>& p) { CHECK(p.grad.isZero(0)); });
  REQUIRE(ntk.jacobian.rows() == 3 * 2);
  REQUIRE(ntk.jacobian.cols() == net.parameter_count());
  // Rows 2n, 2n + 1 are sample n's outputs: the Jacobian of that sample alone.
  for (Index n = 0; n < 3; ++n) {
    const Matrix<double> xn = x.col(n);
    const prune::EmpiricalNtk one = prune::empirical_ntk(net, xn);
    CHECK(one.jacobian == ntk.jacobian.middleRows(2 * n, 2));
  }
  // The last layer's bias: ∂f_k/∂b_k = 1, ∂f_k/∂b_k' = 0.
  const ParameterLayout layout = ParameterLayout::of(net);  // outlives the slot it finds
  const TensorSlot* bias = layout.find("4.bias");
  REQUIRE(bias != nullptr);
  CHECK(ntk.jacobian.block(0, bias->offset, 6, 2) ==
        Matrix<double>::Identity(2, 2).replicate(3, 1));

  CHECK_THROWS_AS(prune::empirical_ntk(net, Matrix<double>(5, 2)), shape_error);
  CHECK_THROWS_AS(prune::empirical_ntk(net, Matrix<double>(4, 0)), argument_error);

  // A float network: J and Θ in double.
  nn::Sequential<Dense<4, 3>, ReLU, Dense<3, 2>> small;
  small.for_each_parameter([&](std::string_view, Parameter<float>& p) {
    for (Index i = 0; i < p.size(); ++i) {
      p.value[i] = uniform<float>(rng, -1.0F, 1.0F);
    }
  });
  const Matrix<float> xf = x.cast<float>();
  const prune::EmpiricalNtk f = prune::empirical_ntk(small, xf);
  CHECK(f.kernel.rows() == 6);
  CHECK(f.jacobian.cols() == small.parameter_count());
}

// ---- PX's chain on 100 random networks ----
//
// With f_k(x) = Σ_{p→k} c_p(x) v_p(θ), J_θ f = J_v f · J_θ v, and for a trained value θ_j
// (unmasked; a masked one has a zero column), ∂f_k(x_n)/∂θ_j = Σ_{p→k, p∋j} c_p ∂v_p/∂θ_j.
//  (1) ‖Θ‖_F ≤ Tr Θ: Θ is PSD, so ‖Θ‖_F = (Σ λ_i²)^½ ≤ Σ λ_i = Tr Θ (λ_i ≥ 0).
//  (2) Tr Θ = Σ_{n,k,j} (Σ_{p∋j} c_p ∂v_p/∂θ_j)² ≤ Σ_{n,k,j} (Σ_{p∋j} c_p²)(Σ_{p∋j} (∂v_p/∂θ_j)²)
//      by Cauchy–Schwarz over the paths through j; Σ_{p∋j} c_p² ≤ z1[n,k] (z1 sums over every
//      path to k whose weights are unmasked; a path through a masked weight has v_p = 0 and
//      ∂v_p/∂θ_j = 0, so it drops out of the left side), and Σ_{p→k, p∋j} (∂v_p/∂θ_j)² =
//      ∂z2[k]/∂(θ_j²) (v_p is multilinear: each value lies on a path at most once). The sum
//      Σ_{n,k} z1 ∂z2/∂(θ_j²) is ∂R/∂(θ_j²) with z1 held constant. With max pooling routed as
//      the real network routes it, z2[k, n] sums only the paths routed for sample n: those are
//      the only paths with c_p ≠ 0, so the same argument holds sample by sample.
//  (3) Σ_j ∂R/∂(θ_j²) = Σ_{n,k} z1[n,k] a_k with a_k = Σ_j ∂z2[k]/∂(θ_j²) ≤ Σ_k a_k =
//      ‖J_θ v‖²_F, since every z1 ≥ 0: Σ_{n,k} z1 a_k ≤ (Σ_{n,k} z1)(Σ_k a_k) = ‖J_v f‖²_F ‖J_θ
//      v‖²_F.
// Average pooling multiplies a path by a constant s_p; √s_p goes to c_p and √s_p to v_p (see
// path_enumeration.hpp), and every step above holds as written.

namespace {

struct ChainCount {
  int networks = 0;
  int with_masks = 0;
  int conv = 0;
};

/// ‖a − b‖ ≤ 1e-12 ‖b‖ (rounding only).
template <class A, class B>
bool agree(const A& a, const B& b) {
  return (a - b).norm() <= 1e-12 * b.norm();
}

/// PX's passes against the path walk: z1, z2, R and ∂R/∂(θ²) for every trained value (a masked
/// weight's too: the paths through it, the others' values fixed).
void check_terms(const prune::PxTerms& t, const test::PathSums& paths, prune::PoolRouting routing) {
  const bool real = routing == prune::PoolRouting::real;
  CHECK(agree(t.z1, paths.z1));
  if (real) {
    CHECK(agree(t.z2, paths.z2_routed));
  } else {
    REQUIRE(t.z2.cols() == 1);
    CHECK(agree(t.z2.col(0), paths.z2));
  }
  CHECK(t.r == doctest::Approx(real ? paths.r_real : paths.r_auxiliary).epsilon(1e-12));
  CHECK(agree(t.dr_dsquare.values(), real ? paths.dr_real : paths.dr_auxiliary));
}

template <class N>
void check_chain(N& net, const Matrix<double>& x, prune::PoolRouting routing) {
  const prune::EmpiricalNtk ntk = prune::empirical_ntk(net, x);
  const prune::PxTerms px = prune::px_terms(net, {batch_view(x), {}}, routing);
  const test::PathSums paths = test::enumerate_paths(net, x);
  const Matrix<double> y = net.forward(x);
  CHECK((paths.f - y).norm() <= 1e-12 * (1.0 + y.norm()));  // the walk is the network
  check_terms(px, paths, routing);

  const double frobenius = ntk.frobenius_norm();
  const double trace = ntk.trace();
  const double sum_dr = px.dr_dsquare.values().sum();
  const double jv_f = px.z1.sum();             // ‖J_v f‖²_F
  const double bound = jv_f * paths.jv_theta;  // ‖J_θ v‖²_F from the walk alone
  INFO("‖Θ‖_F = " << frobenius << ", Tr Θ = " << trace << ", Σ ∂R/∂θ² = " << sum_dr
                  << ", ‖J_v f‖²·‖J_θ v‖² = " << bound << ", paths " << paths.paths);
  CHECK(at_most(frobenius, trace));
  CHECK(at_most(trace, sum_dr));
  CHECK(at_most(sum_dr, bound));
}

template <class N>
void chain_family(int count, std::string_view name, prune::PoolRouting routing, ChainCount& c) {
  Rng rng = make_stream(2024, name);
  for (int i = 0; i < count; ++i) {
    N net;
    const double scale = uniform<double>(rng, 0.3, 1.5);
    const int bias_sign = static_cast<int>(uniform_index(rng, 3)) - 1;
    const double masked = uniform01<double>(rng) < 0.4 ? uniform<double>(rng, 0.1, 0.5) : 0.0;
    const auto batch = static_cast<Index>(1 + uniform_index(rng, 5));
    randomize(net, rng, scale, bias_sign, masked);
    const Matrix<double> x = random_inputs(N::input_shape::size, batch, rng);
    INFO(name << " #" << i << ": scale " << scale << ", bias sign " << bias_sign
              << ", masked fraction " << masked << ", batch " << batch);
    check_chain(net, x, routing);
    ++c.networks;
    c.with_masks += masked > 0 ? 1 : 0;
    c.conv += N::input_shape::rank == 3 ? 1 : 0;
  }
}

}  // namespace

TEST_CASE("PX's chain ‖Θ‖_F ≤ Tr Θ ≤ Σ_j ∂R/∂θ_j² ≤ ‖J_v f‖²·‖J_θ v‖² on 100 random networks") {
  ChainCount c;
  constexpr auto aux = prune::PoolRouting::auxiliary;
  constexpr auto real = prune::PoolRouting::real;
  // (seven network types, not more: each is a compile of the NTK, PX and the path walk, and this
  // file is built four times in CI)
  chain_family<Dense1x1>(17, "1 hidden, width 1", aux, c);
  chain_family<Dense2>(18, "2 hidden", aux, c);
  chain_family<Dense3>(17, "3 hidden, first without bias", aux, c);
  chain_family<Dense4Wide>(18, "4 hidden, widths 4-6", aux, c);
  chain_family<ConvAvg>(15, "conv, average pooling", aux, c);
  chain_family<ConvMax>(8, "conv, max pooling (real routing)", real, c);
  chain_family<ConvStridedMaxOverlap>(7, "strided conv, overlapping max pooling (real routing)",
                                      real, c);
  CHECK(c.networks == 100);
  CHECK(c.conv == 30);
  CHECK(c.with_masks >= 20);
}

// The talk's "‖Θ‖²_F ≤ ‖J_v f‖²_F·‖J_θ v‖²_F" mixes scales: Θ grows like θ², its squared norm
// like θ⁴, the right side like θ². The chain above is what holds; the squared form fails as soon
// as the network is large enough.
TEST_CASE("the squared form ‖Θ‖²_F ≤ ‖J_v f‖²·‖J_θ v‖² does not hold: two counterexamples") {
  SUBCASE("f(x) = w2·relu(w1·x) at w1 = w2 = x = 1, by hand") {
    // J = [w2 x, w1 x] = [1, 1], Θ = 2; one path, c = x = 1, v = w1 w2 = 1: ‖J_v f‖² = 1,
    // ‖J_θ v‖² = w2² + w1² = 2. Chain: 2 ≤ 2 ≤ 2 ≤ 2 (equalities); squared: 4 > 2.
    Net<nn::Input<1>, Dense<1, 1, nn::NoBias>, ReLU, Dense<1, 1, nn::NoBias>> net;
    net.for_each_parameter([](std::string_view, Parameter<double>& p) { p.value.setOnes(); });
    const Matrix<double> x = Matrix<double>::Ones(1, 1);
    const prune::EmpiricalNtk ntk = prune::empirical_ntk(net, x);
    const test::PathSums paths = test::enumerate_paths(net, x);
    CHECK(ntk.frobenius_norm() == 2.0);
    CHECK(ntk.trace() == 2.0);
    CHECK(prune::px_terms(net, {batch_view(x), {}}).dr_dsquare.values().sum() == 2.0);
    CHECK(paths.z1.sum() == 1.0);
    CHECK(paths.jv_theta == 2.0);
    CHECK(ntk.kernel.squaredNorm() > paths.z1.sum() * paths.jv_theta);
  }
  SUBCASE("a random 4-3-5-2 network with weights in ±5") {
    // Weights in ±1: ‖Θ‖²_F ≈ 36 under a bound ≈ 1195; in ±5: ≈ 3.5e6 over ≈ 6.5e5.
    Rng rng = make_stream(11, "squared form");
    Dense2 net;
    randomize(net, rng, 5.0, 0, 0.0);
    const Matrix<double> x = random_inputs(4, 2, rng);
    const prune::EmpiricalNtk ntk = prune::empirical_ntk(net, x);
    const test::PathSums paths = test::enumerate_paths(net, x);
    const double bound = paths.z1.sum() * paths.jv_theta;
    CHECK(ntk.kernel.squaredNorm() > 5 * bound);
    check_chain(net, x, prune::PoolRouting::auxiliary);
  }
}

// ---- PX's path sums against every path, walked one by one ----

TEST_CASE("path enumeration agrees with PX: Dense 3-4-3-2 with ReLUs and biases") {
  using Tiny = Net<nn::Input<3>, Dense<3, 4>, ReLU, Dense<4, 3>, ReLU, Dense<3, 2>>;
  Rng rng = make_stream(3, "tiny dense");
  for (const double masked : {0.0, 0.3}) {
    Tiny net;
    randomize(net, rng, 1.0, 0, masked);
    const Matrix<double> x = random_inputs(3, 4, rng);
    const test::PathSums paths = test::enumerate_paths(net, x);
    // 3·4·3 input paths and 4·3 + 3 + 1 bias paths to each of 2 outputs.
    CHECK(paths.paths == 2 * (36 + 12 + 3 + 1));
    const Matrix<double> y = net.forward(x);
    CHECK((paths.f - y).norm() <= 1e-13 * y.norm());
    for (const auto routing : {prune::PoolRouting::auxiliary, prune::PoolRouting::real}) {
      const prune::PxTerms t = prune::px_terms(net, {batch_view(x), {}}, routing);
      check_terms(t, paths, routing);
    }
  }
}

TEST_CASE("path enumeration agrees with PX: conv nets with average and max pooling") {
  Rng rng = make_stream(4, "tiny conv");
  SUBCASE("conv, ReLU, average pooling, Dense") {
    ConvAvg net;
    randomize(net, rng, 1.0, 0, 0.3);
    const Matrix<double> x = random_inputs(16, 3, rng);
    const test::PathSums paths = test::enumerate_paths(net, x);
    const Matrix<double> y = net.forward(x);
    CHECK((paths.f - y).norm() <= 1e-13 * y.norm());
    check_terms(prune::px_terms(net, {batch_view(x), {}}), paths, prune::PoolRouting::auxiliary);
  }
  SUBCASE("conv, ReLU, max pooling routed as the real network routes it, two Dense") {
    ConvMax net;
    randomize(net, rng, 1.0, -1, 0.0);
    const Matrix<double> x = random_inputs(36, 3, rng);
    const test::PathSums paths = test::enumerate_paths(net, x);
    const Matrix<double> y = net.forward(x);
    CHECK((paths.f - y).norm() <= 1e-13 * y.norm());
    check_terms(prune::px_terms(net, {batch_view(x), {}}, prune::PoolRouting::real), paths,
                prune::PoolRouting::real);
    // Routing removes paths: per sample, z2 is at most the sum over every window edge.
    CHECK((paths.z2_routed.array() <= paths.z2.replicate(1, 3).array()).all());
    CHECK((paths.z2_routed.array() < paths.z2.replicate(1, 3).array()).any());
  }
}
