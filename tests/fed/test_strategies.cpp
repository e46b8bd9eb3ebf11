// The gradient-based strategies against hand computations: FedAvg, FedAvgM, FedProx and SCAFFOLD
// on a quadratic problem whose client steps are written out in plain arithmetic; FedAvg with one
// client and one full-batch step against a centralized step; the adaptive server rules of FedOpt
// against Reddi et al.'s formulas; the aggregators against hand-worked sets.
#include <edgescale/fed/aggregate.hpp>
#include <edgescale/fed/fedavg.hpp>
#include <edgescale/fed/fedopt.hpp>
#include <edgescale/fed/scaffold.hpp>
#include <edgescale/fed/simulate.hpp>
#include <edgescale/nn/optim/sgd.hpp>
#include <edgescale/nn/train.hpp>

#include "fed_fixtures.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

using namespace edgescale;
using test::QuadraticToTarget;
using test::Scalar;

namespace {

double weight_of(const ParameterSet<double>& s) {
  return s.values()[0];
}

// Client 0 holds labels {0, 0, 1} (mean target 0), client 1 {2, 2} (mean target 5), client 2 {1}
// (mean target 2); full-batch local steps, so E epochs are E steps of w ← w − η (w − ā) + hooks.
const std::vector<std::int32_t> quadratic_labels{0, 0, 1, 2, 2, 1};
const fed::Partition quadratic_clients{{0, 1, 2}, {3, 4}, {5}};
const std::vector<double> mean_target{0.0, 5.0, 2.0};
const std::vector<double> client_size{3.0, 2.0, 1.0};

fed::LocalTraining full_batch(int epochs, double lr) {
  return {.epochs = epochs, .batch_size = 100, .learning_rate = lr};
}

}  // namespace

static_assert(fed::Strategy<fed::FedAvg<test::BlobMlp<float>>>);
static_assert(fed::Strategy<fed::Scaffold<test::BlobMlp<float>>>);
static_assert(fed::Strategy<fed::FedAdam<test::BlobMlp<float>>>);
static_assert(fed::Aggregator<fed::WeightedMean, float>);
static_assert(fed::Aggregator<fed::Krum, double>);

TEST_CASE("FedAvg, FedAvgM and FedProx on a quadratic equal their update rules written out") {
  const data::Dataset<double> pool = test::constant_inputs(quadratic_labels);
  const double x0 = 1.5;
  const double lr = 0.3;
  const int epochs = 3;
  for (const double momentum : {0.0, 0.9}) {
    for (const double mu : {0.0, 0.5}) {
      CAPTURE(momentum);
      CAPTURE(mu);
      fed::FedAvg<Scalar, fed::WeightedMean, QuadraticToTarget> strategy(
          test::scalar_model(x0), {.local = full_batch(epochs, lr),
                                   .server_learning_rate = 0.7,
                                   .server_momentum = momentum,
                                   .proximal_mu = mu});
      fed::Simulation sim(strategy, pool, quadratic_clients, {.per_round = 3});
      double x = x0;
      double v = 0;
      for (int round = 0; round < 4; ++round) {
        sim.run_round(nullptr, false);
        double mean_delta = 0;
        for (std::size_t k = 0; k < 3; ++k) {
          double y = x;
          for (int e = 0; e < epochs; ++e) {
            y -= lr * ((y - mean_target[k]) + mu * (y - x));  // FedProx: + μ (y − x)
          }
          mean_delta += client_size[k] / 6.0 * (y - x);
        }
        if (momentum > 0) {
          v = momentum * v - mean_delta;  // Hsu et al. 2019: v ← βv + ḡ, ḡ = −Δ̄
          x -= 0.7 * v;
        } else {
          x += 0.7 * mean_delta;
        }
        CHECK(weight_of(strategy.global()) == doctest::Approx(x).epsilon(1e-13));
      }
    }
  }
}

TEST_CASE("SCAFFOLD's control variates follow option II on a quadratic, written out") {
  const data::Dataset<double> pool = test::constant_inputs(quadratic_labels);
  const double lr = 0.2;
  const int epochs = 4;
  const double server_lr = 0.8;
  fed::Scaffold<Scalar, QuadraticToTarget> strategy(
      test::scalar_model(-2.0),
      {.local = full_batch(epochs, lr), .server_learning_rate = server_lr});
  // Two of three clients a round (seeded sampling); the hand computation follows the same draw.
  fed::Simulation sim(strategy, pool, quadratic_clients, {.per_round = 2, .seed = 3});
  double x = -2.0;
  double c = 0;
  std::vector<double> ci(3, 0.0);
  for (int round = 0; round < 5; ++round) {
    const fed::RoundReport r = sim.run_round(nullptr, false);
    REQUIRE(r.sampled.size() == 2);
    double sum_dy = 0;
    double sum_dc = 0;
    for (const Index k : r.sampled) {
      const auto i = static_cast<std::size_t>(k);
      double y = x;
      for (int e = 0; e < epochs; ++e) {
        y -= lr * ((y - mean_target[i]) - ci[i] + c);  // y ← y − η (g − c_i + c)
      }
      const double ci_new = ci[i] - c + (x - y) / (epochs * lr);  // option II
      sum_dy += y - x;
      sum_dc += ci_new - ci[i];
      ci[i] = ci_new;
    }
    x += server_lr / 2 * sum_dy;
    c += sum_dc / 3;  // 1/N, N = 3 clients in all
    CHECK(weight_of(strategy.global()) == doctest::Approx(x).epsilon(1e-13));
    CHECK(weight_of(strategy.control()) == doctest::Approx(c).epsilon(1e-13));
  }
  CHECK(sim.stored_states() <= 3);
  // Drift-free: SCAFFOLD reaches the minimiser of its objective (1/N) Σ_i f_i (uniform over
  // clients, as its server averages), the mean of the clients' mean targets (0 + 5 + 2) / 3,
  // although every client steps several times towards its own target.
  for (int round = 0; round < 200; ++round) {
    sim.run_round(nullptr, false);
  }
  CHECK(weight_of(strategy.global()) == doctest::Approx(7.0 / 3.0).epsilon(1e-9));
}

TEST_CASE("FedAvg with one client and one full-batch step is one centralized gradient step") {
  using Net = test::BlobMlp<double>;
  const data::Dataset<double> pool = test::blobs<double>(60, 1);
  Rng init = make_stream(5, "init");
  const Net initial{nn::init::kaiming_normal, init};
  const double lr = 0.1;
  fed::FedAvg<Net> strategy(initial, {.local = full_batch(1, lr)});
  fed::Simulation sim(strategy, pool, test::round_robin(60, 1), {.per_round = 1});
  sim.run_round(nullptr, false);

  Net central = initial;
  nn::Trainer<Net> trainer(central);
  nn::SGD opt({.learning_rate = lr});
  trainer.step(opt, batch_view(pool.features), nn::Labels(pool.labels));
  const ParameterSet<double> expected(central);
  const ParameterSet<double> start(initial);
  REQUIRE(strategy.global().size() == expected.size());
  // The step moved the weights, and the federated step is the centralized one up to the order of
  // the sum over the (shuffled) batch.
  CHECK((expected.values() - start.values()).norm() > 1e-3);
  CHECK((strategy.global().values() - expected.values()).norm() <=
        1e-12 * (expected.values() - start.values()).norm());
}

TEST_CASE(
    "FedAdagrad, FedAdam and FedYogi step as Reddi et al. Alg. 2 (and with bias correction)") {
  const std::vector<double> deltas{0.5, -0.2, 0.9};  // the mean client delta of three rounds
  for (const bool correction : {false, true}) {
    CAPTURE(correction);
    const double eta = 0.1;
    const double b1 = 0.9;
    const double b2 = 0.99;
    const double tau = 1e-3;
    fed::FedAdagrad<Scalar> adagrad(test::scalar_model(0.0),
                                    {.server_learning_rate = eta, .bias_correction = correction});
    fed::FedAdam<Scalar> adam(test::scalar_model(0.0),
                              {.server_learning_rate = eta, .bias_correction = correction});
    fed::FedYogi<Scalar> yogi(test::scalar_model(0.0),
                              {.server_learning_rate = eta, .bias_correction = correction});
    double xa = 0, xd = 0, xy = 0;
    double m = 0;
    double va = tau * tau, vd = tau * tau, vy = tau * tau;
    for (std::size_t t = 0; t < deltas.size(); ++t) {
      const double d = deltas[t];
      ParameterSet<double> u = adam.global().zeros_like();
      u.values()[0] = d;
      const std::vector<fed::Received<ParameterSet<double>>> received{{0, 4, &u}};
      const fed::RoundInfo info{static_cast<int>(t), 1, 1, 1};
      adagrad.server_update(received, info);
      adam.server_update(received, info);
      yogi.server_update(received, info);
      m = b1 * m + (1 - b1) * d;
      va += d * d;
      vd = b2 * vd + (1 - b2) * d * d;
      vy -= (1 - b2) * d * d * (vy - d * d > 0 ? 1.0 : (vy - d * d < 0 ? -1.0 : 0.0));
      const double n = static_cast<double>(t + 1);
      const double mc = correction ? 1 - std::pow(b1, n) : 1;
      const double vc = correction ? 1 - std::pow(b2, n) : 1;
      xa += eta * m / (std::sqrt(va) + tau);  // Adagrad: no bias correction
      xd += eta * (m / mc) / (std::sqrt(vd / vc) + tau);
      xy += eta * (m / mc) / (std::sqrt(vy / vc) + tau);
      CHECK(weight_of(adagrad.global()) == doctest::Approx(xa).epsilon(1e-13));
      CHECK(weight_of(adam.global()) == doctest::Approx(xd).epsilon(1e-13));
      CHECK(weight_of(yogi.global()) == doctest::Approx(xy).epsilon(1e-13));
    }
  }
}

TEST_CASE("aggregators: mean, median, trimmed mean and Krum on hand-worked sets") {
  std::vector<ParameterSet<double>> sets;
  const Scalar net = test::scalar_model(0.0);
  for (const double v : {1.0, 2.0, 3.0, 4.0, 100.0}) {
    sets.emplace_back(net);
    sets.back().values()[0] = v;
  }
  std::vector<const ParameterSet<double>*> p;
  for (const auto& s : sets) {
    p.push_back(&s);
  }
  const std::vector<double> w{1, 1, 1, 1, 6};
  const std::span<const ParameterSet<double>* const> all(p);
  CHECK(weight_of(fed::WeightedMean{}.combine(all, std::span<const double>(w))) ==
        doctest::Approx((1 + 2 + 3 + 4 + 600) / 10.0));
  CHECK(weight_of(fed::Median{}.combine(all, std::span<const double>(w))) == 3.0);
  CHECK(weight_of(fed::Median{}.combine(all.first(4), std::span<const double>(w).first(4))) == 2.5);
  CHECK(weight_of(fed::TrimmedMean{.trim = 0.2}.combine(all, std::span<const double>(w))) ==
        doctest::Approx(3.0));
  // Krum with f = 1 over 5 sets scores each by its 2 nearest: 2 → {1, 3}: 2; 3 → {2, 4}: 2; the
  // first of the tie wins.
  CHECK(weight_of(fed::Krum{.byzantine = 1}.combine(all, std::span<const double>(w))) == 2.0);
  CHECK_THROWS_AS(fed::Krum{.byzantine = 2}.combine(all, std::span<const double>(w)),
                  argument_error);
  CHECK_THROWS_AS(fed::TrimmedMean{.trim = 0.5}.combine(all, std::span<const double>(w)),
                  argument_error);
}

TEST_CASE("strategies reject impossible settings") {
  const Scalar net = test::scalar_model(0.0);
  CHECK_THROWS_AS(fed::FedAvg<Scalar>(net, {.server_momentum = 1.0}), argument_error);
  CHECK_THROWS_AS(fed::FedAvg<Scalar>(net, {.local = {.learning_rate = 0}}), argument_error);
  CHECK_THROWS_AS(fed::FedAvg<Scalar>(net, {.frozen = {"0."}}), argument_error);  // all frozen
  CHECK_THROWS_AS(fed::Scaffold<Scalar>(net, {.local = {.momentum = 0.9}}), argument_error);
  CHECK_THROWS_AS(fed::FedAdam<Scalar>(net, {.tau = 0}), argument_error);
}
