// FED3R (fed/fed3r.hpp) and random features (fed/random_features.hpp) against independent
// references: the naive ΦᵀΦ, centralized ridge regression solved by QR of the stacked system
// [Φ; √λ I] W = [Y; 0] (not the normal equations, not Cholesky), recomputation from scratch for
// recursive statistics, the kernels random features estimate, and scikit-learn's Ridge
// (tests/fixtures/fed3r, scripts/fixtures/make_fed3r_fixture.py).
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/data/npy.hpp>
#include <edgescale/fed/client.hpp>
#include <edgescale/fed/concepts.hpp>
#include <edgescale/fed/fed3r.hpp>
#include <edgescale/fed/partition.hpp>
#include <edgescale/fed/random_features.hpp>
#include <edgescale/fed/simulate.hpp>

#include <Eigen/QR>

#include "gaussian_classes.hpp"
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <numbers>
#include <numeric>
#include <span>
#include <string>
#include <vector>

using namespace edgescale;

static_assert(fed::Strategy<fed::Fed3r<float>>);
static_assert(fed::Strategy<fed::Fed3r<double>>);

namespace {

constexpr std::uint64_t seed = 31;

/// n samples of d features in C Gaussian classes (tests/fed/gaussian_classes.hpp); a common
/// offset keeps the bias column far from orthogonal to the features.
data::Dataset<double> gaussian_classes(Index n, Index d, Index C, Rng& rng) {
  return test::gaussian_classes(n,
                                {.features = d,
                                 .classes = C,
                                 .offset = 2.0,
                                 .noise = 0.7,
                                 .means_key = static_cast<std::uint64_t>(d * 1000 + C)},
                                rng);
}

/// IID: a shuffled order cut into K nearly equal parts.
fed::Partition iid_split(Index n, Index K, Rng& rng) {
  std::vector<Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Index{0});
  edgescale::shuffle(order, rng);
  fed::Partition p(static_cast<std::size_t>(K));
  for (Index i = 0; i < n; ++i) {
    p[static_cast<std::size_t>(i % K)].push_back(order[static_cast<std::size_t>(i)]);
  }
  return p;
}

/// Extreme label skew (what Dirichlet α = 0.05 gives): client k holds class k, and even clients
/// also class k + 1; a class held by two clients is dealt between them alternately. K = C.
fed::Partition label_skew_split(const data::Dataset<double>& pool) {
  const Index C = pool.classes;
  fed::Partition p(static_cast<std::size_t>(C));
  std::vector<int> dealt(static_cast<std::size_t>(C), 0);
  for (Index i = 0; i < pool.size(); ++i) {
    const Index y = pool.labels[static_cast<std::size_t>(i)];
    const bool shared = (y - 1) >= 0 && (y - 1) % 2 == 0;  // client y − 1 is even: it holds y too
    const Index owner = shared && (dealt[static_cast<std::size_t>(y)]++ % 2 == 1) ? y - 1 : y;
    p[static_cast<std::size_t>(owner)].push_back(i);
  }
  return p;
}

/// Shards (McMahan et al. 2017): samples sorted by label, cut into 2K shards, two per client.
fed::Partition shard_split(const data::Dataset<double>& pool, Index K, Rng& rng) {
  std::vector<Index> order(static_cast<std::size_t>(pool.size()));
  std::iota(order.begin(), order.end(), Index{0});
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) {
    return pool.labels[static_cast<std::size_t>(a)] < pool.labels[static_cast<std::size_t>(b)];
  });
  std::vector<Index> shards(static_cast<std::size_t>(2 * K));
  std::iota(shards.begin(), shards.end(), Index{0});
  edgescale::shuffle(shards, rng);
  const Index size = pool.size() / (2 * K);
  fed::Partition p(static_cast<std::size_t>(K));
  for (Index s = 0; s < 2 * K; ++s) {
    const Index shard = shards[static_cast<std::size_t>(s)];
    const Index end = shard == 2 * K - 1 ? pool.size() : (shard + 1) * size;
    for (Index i = shard * size; i < end; ++i) {
      p[static_cast<std::size_t>(s / 2)].push_back(order[static_cast<std::size_t>(i)]);
    }
  }
  return p;
}

/// Centralized ridge regression, independently of the code under test: W minimises
/// ‖ΦW − Y‖² + λ‖W‖², i.e. the least-squares solution of [Φ; √λ I] W = [Y; 0], by column-pivoting
/// Householder QR of the stacked (n + D) x D matrix.
Matrix<double> centralized_ridge(const Matrix<double>& features, std::span<const std::int32_t> y,
                                 Index C, double lambda) {
  const Index d = features.rows();
  const Index n = features.cols();
  const Index D = d + 1;
  Matrix<double> stacked = Matrix<double>::Zero(n + D, D);
  stacked.topLeftCorner(n, d) = features.transpose();
  stacked.block(0, d, n, 1).setOnes();
  stacked.bottomRows(D).diagonal().setConstant(std::sqrt(lambda));
  Matrix<double> targets = Matrix<double>::Zero(n + D, C);
  for (Index i = 0; i < n; ++i) {
    targets(i, y[static_cast<std::size_t>(i)]) = 1.0;
  }
  return stacked.colPivHouseholderQr().solve(targets);
}

/// Accuracy of argmax_c ([ψ; 1]ᵀ W)_c, written out sample by sample.
double ridge_accuracy(const Matrix<double>& W, const data::Dataset<double>& test) {
  const Index d = W.rows() - 1;
  Index correct = 0;
  for (Index i = 0; i < test.size(); ++i) {
    Index best = 0;
    double best_score = -std::numeric_limits<double>::infinity();
    for (Index c = 0; c < W.cols(); ++c) {
      double score = W(d, c);
      for (Index j = 0; j < d; ++j) {
        score += W(j, c) * test.features(j, i);
      }
      if (score > best_score) {
        best_score = score;
        best = c;
      }
    }
    correct += best == test.labels[static_cast<std::size_t>(i)] ? 1 : 0;
  }
  return static_cast<double>(correct) / static_cast<double>(test.size());
}

double relative_error(const Matrix<double>& a, const Matrix<double>& reference) {
  return (a - reference).norm() / reference.norm();
}

/// Runs FED3R: every client once, in `order`, `per_round` clients a round; every update checked.
void run_federation(fed::Fed3r<double>& strategy, const data::Dataset<double>& pool,
                    const fed::Partition& partition, const std::vector<Index>& order,
                    std::size_t per_round) {
  auto worker = strategy.make_worker();
  fed::Stateless none;
  int round = 0;
  for (std::size_t begin = 0; begin < order.size(); begin += per_round, ++round) {
    const std::size_t end = std::min(order.size(), begin + per_round);
    std::vector<fed::RidgeStatistics> updates;
    updates.reserve(end - begin);
    for (std::size_t k = begin; k < end; ++k) {
      const Index id = order[k];
      const fed::ClientData<double> client{
          .id = id, .data = &pool, .indices = partition[static_cast<std::size_t>(id)]};
      Rng rng = fed::client_stream(seed, round, id);
      updates.push_back(strategy.client_update(worker, client, none, rng));
      REQUIRE(strategy.check(updates.back()).empty());
    }
    std::vector<fed::Received<fed::RidgeStatistics>> received;
    for (std::size_t k = begin; k < end; ++k) {
      received.push_back(
          {.client = order[k], .samples = updates[k - begin].n, .update = &updates[k - begin]});
    }
    strategy.server_update(received, fed::RoundInfo{.round = round,
                                                    .clients = static_cast<Index>(order.size()),
                                                    .sampled = static_cast<Index>(end - begin),
                                                    .received = static_cast<Index>(end - begin)});
  }
}

}  // namespace

TEST_CASE("RidgeStatistics: the blocked symmetric rank update equals the naive sums") {
  Rng rng = make_stream(seed, "rank update");
  const Index d = 6;
  const Index C = 4;
  const data::Dataset<double> pool = gaussian_classes(50, d, C, rng);
  fed::RidgeStatistics s(d, C);
  Workspace<double> scratch;
  // Two calls (30 then 20 samples), blocks of 7 columns: partial blocks and the mirror twice.
  const std::span<const std::int32_t> labels(pool.labels);
  s.accumulate(pool.features.leftCols(30), labels.first(30), scratch, 7);
  const Matrix<float> tail = pool.features.rightCols(20).cast<float>();  // a float client
  s.accumulate(tail, labels.subspan(30), scratch, 7);

  const Index D = d + 1;
  auto phi = [&](Index i, Index j) {
    if (j == d) {
      return 1.0;
    }
    return i < 30 ? pool.features(j, i) : static_cast<double>(tail(j, i - 30));
  };
  Matrix<double> A = Matrix<double>::Zero(D, D);
  Matrix<double> b = Matrix<double>::Zero(D, C);
  for (Index i = 0; i < pool.size(); ++i) {
    for (Index r = 0; r < D; ++r) {
      for (Index c = 0; c < D; ++c) {
        A(r, c) += phi(i, r) * phi(i, c);
      }
      b(r, pool.labels[static_cast<std::size_t>(i)]) += phi(i, r);
    }
  }
  CHECK(s.n == 50);
  CHECK(s.A == s.A.transpose());
  CHECK(relative_error(s.A, A) < 1e-14);
  CHECK(relative_error(s.b, b) < 1e-14);
  CHECK(s.A(d, d) == 50.0);
  CHECK(fed::ridge_statistics_problem(s, d, C).empty());

  SUBCASE("bad input leaves the statistics unchanged") {
    const fed::RidgeStatistics before = s;
    std::vector<std::int32_t> bad(pool.labels.begin(), pool.labels.begin() + 5);
    bad[3] = static_cast<std::int32_t>(C);
    CHECK_THROWS_AS(s.accumulate(pool.features.leftCols(5), bad), shape_error);
    CHECK_THROWS_AS(s.accumulate(pool.features.topRows(d - 1), labels), shape_error);
    CHECK_THROWS_AS(s.accumulate(pool.features.leftCols(5), labels.first(4)), shape_error);
    CHECK(s.A == before.A);
    CHECK(s.b == before.b);
    CHECK(s.n == before.n);
  }
}

TEST_CASE("RidgeStatistics: packing round-trips and the wire sizes are what is sent") {
  Rng rng = make_stream(seed, "packing");
  const Index d = 20;
  const Index C = 10;
  const data::Dataset<double> pool = gaussian_classes(40, d, C, rng);
  fed::RidgeStatistics s(d, C);
  s.accumulate(pool.features, pool.labels);

  const std::vector<double> packed = s.pack_lower();
  const Index D = d + 1;
  REQUIRE(static_cast<Index>(packed.size()) == D * (D + 1) / 2 + D * C);
  CHECK(packed[0] == s.A(0, 0));
  CHECK(packed[1] == s.A(1, 0));
  CHECK(packed[static_cast<std::size_t>(D)] == s.A(1, 1));
  CHECK(packed[static_cast<std::size_t>(D * (D + 1) / 2)] == s.b(0, 0));
  const fed::RidgeStatistics back = fed::RidgeStatistics::unpack_lower(packed, d, C, s.n);
  CHECK(back.A == s.A);
  CHECK(back.b == s.b);
  CHECK(back.n == s.n);
  CHECK_THROWS_AS((void)fed::RidgeStatistics::unpack_lower(std::span(packed).first(10), d, C, 1),
                  shape_error);

  // 8 bytes of n, then the values: 231 + 210 packed or 441 + 210 full, 8 or 4 bytes each.
  CHECK(fed::ridge_statistics_bytes(d, C, true, fed::WireScalar::float64) == 8 + 441 * 8);
  CHECK(fed::ridge_statistics_bytes(d, C, false, fed::WireScalar::float64) == 8 + 651 * 8);
  CHECK(fed::ridge_statistics_bytes(d, C, false, fed::WireScalar::float32) == 8 + 651 * 4);
  const fed::Fed3r<double> strategy(d, C);
  CHECK(strategy.bytes_up(s) == 8 + 441 * 8);
  CHECK(strategy.bytes_down() == 0);
  // The paper's accounting, 4·(D² + D·C), plus n.
  const fed::Fed3r<double> paper(d, C, {.packed = false, .wire = fed::WireScalar::float32});
  CHECK(paper.bytes_up(s) == static_cast<std::size_t>(4 * (D * D + D * C) + 8));
}

TEST_CASE("FED3R equals centralized ridge regression for every split and client order") {
  Rng rng = make_stream(seed, "federation");
  const Index d = 20;
  const Index C = 10;
  const Index K = 10;
  const double lambda = 0.01;
  const data::Dataset<double> pool = gaussian_classes(600, d, C, rng);
  const data::Dataset<double> test = gaussian_classes(200, d, C, rng);
  const Matrix<double> oracle = centralized_ridge(pool.features, pool.labels, C, lambda);
  const double oracle_accuracy = ridge_accuracy(oracle, test);
  CHECK(oracle_accuracy > 0.3);  // the classes are separable enough to tell a wrong W

  struct Split {
    const char* name;
    fed::Partition partition;
  };
  const std::span<const std::int32_t> labels(pool.labels);
  const std::vector<Split> splits = {
      {"iid", iid_split(pool.size(), K, rng)},
      {"label skew", label_skew_split(pool)},
      {"shards", shard_split(pool, K, rng)},
      {"fed::Iid", fed::Iid{}.partition(labels, C, K, rng)},
      {"fed::DirichletPrior 0.05", fed::DirichletPrior{.alpha = 0.05}.partition(labels, C, K, rng)},
      {"fed::Shards", fed::Shards{}.partition(labels, C, K, rng)}};
  for (const Split& split : splits) {
    Index total = 0;
    for (const auto& client : split.partition) {
      total += static_cast<Index>(client.size());
    }
    REQUIRE(total == pool.size());
    for (int trial = 0; trial < 4; ++trial) {
      CAPTURE(split.name);
      CAPTURE(trial);
      std::vector<Index> order(static_cast<std::size_t>(K));
      std::iota(order.begin(), order.end(), Index{0});
      if (trial > 0) {
        edgescale::shuffle(order, rng);
      }
      fed::Fed3r<double> strategy(d, C, {.lambda = lambda});
      run_federation(strategy, pool, split.partition, order, trial % 2 == 0 ? 3 : K);
      CHECK(strategy.statistics().n == pool.size());
      CHECK(relative_error(strategy.weights(), oracle) < 1e-9);
      CHECK(strategy.evaluate(test) == oracle_accuracy);
    }
    // The same through fed::Simulation: one cyclic pass, the client order drawn from the seed,
    // clients on two threads.
    for (const std::uint64_t sim_seed : {1U, 2U}) {
      CAPTURE(split.name);
      CAPTURE(sim_seed);
      fed::Fed3r<double> strategy(d, C, {.lambda = lambda});
      fed::Simulation sim(
          strategy, pool, split.partition,
          {.per_round = 3, .sampling = fed::Sampling::cyclic, .threads = 2, .seed = sim_seed});
      const auto history = sim.run(sim.rounds_per_pass(), test);
      CHECK(relative_error(strategy.weights(), oracle) < 1e-9);
      CHECK(history.back().accuracy == oracle_accuracy);
    }
  }
}

TEST_CASE("FED3R: float32 on the wire rounds the statistics the server receives") {
  Rng rng = make_stream(seed, "wire");
  const data::Dataset<double> pool = gaussian_classes(80, 5, 3, rng);
  const std::vector<Index> all = [&] {
    std::vector<Index> v(static_cast<std::size_t>(pool.size()));
    std::iota(v.begin(), v.end(), Index{0});
    return v;
  }();
  const fed::ClientData<double> client{.id = 0, .data = &pool, .indices = all};
  fed::Stateless none;
  Rng client_rng = fed::client_stream(seed, 0, 0);
  const fed::Fed3r<double> exact(5, 3);
  const fed::Fed3r<double> rounded(5, 3, {.wire = fed::WireScalar::float32});
  auto w1 = exact.make_worker();
  auto w2 = rounded.make_worker();
  const fed::RidgeStatistics s64 = exact.client_update(w1, client, none, client_rng);
  const fed::RidgeStatistics s32 = rounded.client_update(w2, client, none, client_rng);
  CHECK(s32.A == s64.A.cast<float>().cast<double>());
  CHECK(s32.b == s64.b.cast<float>().cast<double>());
  CHECK(s32.A != s64.A);
  CHECK(rounded.check(s32).empty());
  CHECK(rounded.bytes_up(s32) == 8 + static_cast<std::size_t>(21 + 18) * 4);
}

TEST_CASE("FED3R: recursive statistics (deltas) equal recomputation after extractors change") {
  Rng rng = make_stream(seed, "recursive");
  const Index raw_features = 8;
  const Index d = 6;
  const Index C = 4;
  const data::Dataset<double> raw = gaussian_classes(90, raw_features, C, rng);
  // Extractor version v: ψ_v(x) = tanh(M_v x), a different random M_v per version.
  std::vector<data::Dataset<double>> extracted;
  for (int v = 0; v < 3; ++v) {
    Matrix<double> M(d, raw_features);
    for (Index i = 0; i < M.size(); ++i) {
      M.data()[i] = 0.4 * standard_normal(rng);
    }
    data::Dataset<double> e = raw;
    e.features = (M * raw.features).array().tanh().matrix();
    e.sample_shape = {1, 1, d};
    extracted.push_back(std::move(e));
  }
  const fed::Partition partition = iid_split(raw.size(), 3, rng);
  fed::Fed3r<double> server(d, C);
  std::vector<fed::Fed3rClientMemory> memory(3);
  std::vector<int> version = {0, 0, 0};
  auto worker = server.make_worker();
  fed::Stateless none;

  // Round 0: everyone on extractor 0; round 1: clients 0 and 2 move to 1; round 2: client 1 to 2.
  const std::vector<std::vector<int>> schedule = {{0, 0, 0}, {1, 0, 1}, {1, 2, 1}};
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    std::vector<fed::RidgeStatistics> deltas;
    for (Index k = 0; k < 3; ++k) {
      version[static_cast<std::size_t>(k)] =
          schedule[static_cast<std::size_t>(round)][static_cast<std::size_t>(k)];
      const fed::ClientData<double> client{
          .id = k,
          .data = &extracted[static_cast<std::size_t>(version[static_cast<std::size_t>(k)])],
          .indices = partition[static_cast<std::size_t>(k)]};
      Rng client_rng = fed::client_stream(seed, round, k);
      const fed::RidgeStatistics current = server.client_update(worker, client, none, client_rng);
      deltas.push_back(memory[static_cast<std::size_t>(k)].delta(current));
      const auto kind = round == 0 ? fed::RidgeUpdateKind::statistics : fed::RidgeUpdateKind::delta;
      CHECK(fed::ridge_statistics_problem(deltas.back(), d, C, kind).empty());
    }
    std::vector<fed::Received<fed::RidgeStatistics>> received;
    for (Index k = 0; k < 3; ++k) {
      received.push_back(
          {.client = k, .samples = 0, .update = &deltas[static_cast<std::size_t>(k)]});
    }
    server.server_update(received, fed::RoundInfo{.round = round});

    // Recomputed from scratch: every client's statistics under its current extractor, summed.
    fed::RidgeStatistics expected(d, C);
    for (Index k = 0; k < 3; ++k) {
      const data::Dataset<double>& e =
          extracted[static_cast<std::size_t>(version[static_cast<std::size_t>(k)])];
      const data::Dataset<double> mine = data::subset(e, partition[static_cast<std::size_t>(k)]);
      expected.accumulate(mine.features, mine.labels);
    }
    CHECK(server.statistics().n == raw.size());
    CHECK(relative_error(server.statistics().A, expected.A) < 1e-13);
    CHECK(relative_error(server.statistics().b, expected.b) < 1e-13);
    // And the classifier is centralized ridge on the current features.
    Matrix<double> current_features(d, raw.size());
    for (Index k = 0; k < 3; ++k) {
      for (const Index i : partition[static_cast<std::size_t>(k)]) {
        current_features.col(i) =
            extracted[static_cast<std::size_t>(version[static_cast<std::size_t>(k)])].features.col(
                i);
      }
    }
    const Matrix<double> oracle = centralized_ridge(current_features, raw.labels, C, 0.01);
    CHECK(relative_error(server.weights(), oracle) < 1e-9);
  }
  // A client whose extractor did not change sends a zero delta.
  const fed::ClientData<double> same{.id = 0, .data = &extracted[1], .indices = partition[0]};
  Rng client_rng = fed::client_stream(seed, 3, 0);
  const fed::RidgeStatistics zero =
      memory[0].delta(server.client_update(worker, same, none, client_rng));
  CHECK(zero.n == 0);
  CHECK(zero.A.isZero(0.0));
  CHECK(zero.b.isZero(0.0));
}

TEST_CASE("FED3R: a client's data are checked before anything is summed") {
  Rng rng = make_stream(seed, "client data");
  const Index d = 4;
  const Index C = 3;
  const data::Dataset<double> pool = gaussian_classes(30, d, C, rng);
  const fed::Fed3r<double> strategy(d, C);
  auto worker = strategy.make_worker();
  fed::Stateless none;
  const std::vector<Index> outside{0, pool.size()};
  CHECK_THROWS_WITH_AS(
      (void)strategy.client_update(
          worker, fed::ClientData<double>{.id = 4, .data = &pool, .indices = outside}, none, rng),
      doctest::Contains("fed3r: client 4: sample 30 is outside its dataset of 30 samples"),
      argument_error);
  std::vector<Index> all(static_cast<std::size_t>(pool.size()));
  std::iota(all.begin(), all.end(), Index{0});
  data::Dataset<double> wide = pool;
  wide.features = Matrix<double>::Zero(d + 1, pool.size());
  wide.sample_shape = {1, 1, d + 1};
  CHECK_THROWS_WITH_AS(
      (void)strategy.client_update(
          worker, fed::ClientData<double>{.id = 3, .data = &wide, .indices = all}, none, rng),
      doctest::Contains("fed3r: client 3's samples have 5 values, expected 4"), shape_error);
  CHECK_THROWS_WITH_AS(
      (void)strategy.client_update(
          worker, fed::ClientData<double>{.id = 5, .data = nullptr, .indices = all}, none, rng),
      doctest::Contains("fed3r: client 5 has no dataset"), argument_error);
}

TEST_CASE("FED3R: check() rejects malformed and tampered statistics with a reason") {
  Rng rng = make_stream(seed, "check");
  const Index d = 5;
  const Index C = 3;
  const data::Dataset<double> pool = gaussian_classes(40, d, C, rng);
  const fed::Fed3r<double> strategy(d, C);
  fed::RidgeStatistics good(d, C);
  good.accumulate(pool.features, pool.labels);
  REQUIRE(strategy.check(good).empty());

  auto reason = [&](auto tamper) {
    fed::RidgeStatistics u = good;
    tamper(u);
    return strategy.check(u);
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(strategy.check(fed::RidgeStatistics(d + 1, C)).find("shape") != std::string::npos);
  CHECK(strategy.check(fed::RidgeStatistics(d, C + 1)).find("shape") != std::string::npos);
  CHECK(strategy.check(fed::RidgeStatistics{}).find("shape") != std::string::npos);
  CHECK(reason([&](auto& u) { u.A(2, 3) = u.A(3, 2) = nan; }).find("NaN") != std::string::npos);
  CHECK(reason([&](auto& u) { u.b(1, 2) = inf; }).find("Inf") != std::string::npos);
  CHECK(reason([&](auto& u) { u.A(0, 0) = -inf; }).find("finite") != std::string::npos);
  CHECK(reason([&](auto& u) { u.A(1, 0) += 1.0; }).find("symmetric") != std::string::npos);
  CHECK(reason([&](auto& u) { u.n += 1; }).find("count") != std::string::npos);
  CHECK(reason([&](auto& u) { u.n = -u.n; }).find("count") != std::string::npos);
  CHECK(reason([&](auto& u) { u.b(d, 1) += 1.0; }).find("count") != std::string::npos);
  CHECK(reason([&](auto& u) { u.b(d, 1) += 0.5; }).find("count") != std::string::npos);
  CHECK(reason([&](auto& u) {
          u.b(d, 0) -= 1.0;  // a count moved between classes: still sums to n
          u.b(d, 1) += 1.0;
          u.b(0, 1) += 100.0;  // and a feature sum inflated
        }).find("bias row") != std::string::npos);
  CHECK(reason([&](auto& u) { u.A(2, 2) = -1.0; }).find("negative") != std::string::npos);
  // The same identities on a delta, which may hold negative entries.
  const fed::RidgeStatistics delta = good - good;
  CHECK(fed::ridge_statistics_problem(delta, d, C, fed::RidgeUpdateKind::delta).empty());
}

TEST_CASE("solve_ridge: Cholesky with the bias regularised; clear errors") {
  Rng rng = make_stream(seed, "solve");
  const Index d = 10;
  const Index C = 3;
  const data::Dataset<double> few = gaussian_classes(4, d, C, rng);  // rank 4 < D = 11
  fed::RidgeStatistics s(d, C);
  s.accumulate(few.features, few.labels);
  const Matrix<double> W = fed::solve_ridge(s.A, s.b, 0.5);
  CHECK(relative_error(W, centralized_ridge(few.features, few.labels, C, 0.5)) < 1e-9);
  try {
    (void)fed::solve_ridge(s.A, s.b, 0.0);
    FAIL("lambda = 0 on rank-deficient statistics must throw");
  } catch (const argument_error& e) {
    CHECK(std::string(e.what()).find("positive definite") != std::string::npos);
  }
  CHECK_THROWS_AS((void)fed::solve_ridge(s.A, s.b, -1.0), argument_error);
  CHECK_THROWS_AS((void)fed::solve_ridge(s.A, s.b.topRows(d), 0.01), shape_error);
  // λ = 0 on full-rank statistics is ordinary least squares.
  const data::Dataset<double> many = gaussian_classes(100, d, C, rng);
  fed::RidgeStatistics full(d, C);
  full.accumulate(many.features, many.labels);
  CHECK(relative_error(fed::solve_ridge(full.A, full.b, 0.0),
                       centralized_ridge(many.features, many.labels, C, 0.0)) < 1e-9);
}

TEST_CASE("classifier_from_ridge: unit-norm class columns, bias included, PyTorch layout") {
  Matrix<double> W(4, 3);  // d = 3 and the bias row
  W << 1, 0, 2,            //
      2, 0, -1,            //
      2, 0, 0,             //
      4, 0, 2;
  const fed::RidgeHead<float> head = fed::classifier_from_ridge<float>(W);
  CHECK(head.features == 3);
  CHECK(head.classes == 3);
  CHECK(head.temperature == 0.1);
  REQUIRE(head.weight.size() == 9);
  REQUIRE(head.bias.size() == 3);
  // Class 0: (1, 2, 2, 4) / 5; class 1 is zero and stays zero; class 2: (2, −1, 0, 2) / 3.
  const std::vector<float> weight = {0.2F, 0.4F, 0.4F, 0, 0, 0, 2.0F / 3, -1.0F / 3, 0};
  for (std::size_t i = 0; i < weight.size(); ++i) {
    CHECK(head.weight[i] == doctest::Approx(weight[i]).epsilon(1e-7));
  }
  CHECK(head.bias[0] == doctest::Approx(0.8).epsilon(1e-7));
  CHECK(head.bias[1] == 0.0F);
  CHECK(head.bias[2] == doctest::Approx(2.0 / 3).epsilon(1e-7));
  CHECK(fed::classifier_from_ridge<double>(W, 0.5).temperature == 0.5);
  CHECK_THROWS_AS((void)fed::classifier_from_ridge<float>(W, 0.0), argument_error);
  CHECK_THROWS_AS((void)fed::classifier_from_ridge<float>(W.topRows(1)), argument_error);
}

TEST_CASE("RandomFeatures: drawn from the seed; inner products estimate their kernels") {
  const Index d = 5;
  const Index D = 4000;
  const double sigma = 1.5;
  const fed::RandomFeatures<double> fourier(d, {.features = D, .sigma = sigma, .seed = 11});
  const fed::RandomFeatures<double> again(d, {.features = D, .sigma = sigma, .seed = 11});
  const fed::RandomFeatures<double> other(d, {.features = D, .sigma = sigma, .seed = 12});
  CHECK(fourier.omega() == again.omega());
  CHECK(fourier.beta() == again.beta());
  CHECK(fourier.omega() != other.omega());
  // Ω ~ N(0, σ⁻²), β ~ U[0, 2π).
  const double mean = fourier.omega().mean();
  const double sd = std::sqrt((fourier.omega().array() - mean).square().mean());
  CHECK(std::abs(mean) < 0.02);
  CHECK(sd == doctest::Approx(1.0 / sigma).epsilon(0.02));
  CHECK(fourier.beta().minCoeff() >= 0.0);
  CHECK(fourier.beta().maxCoeff() < 2.0 * std::numbers::pi);
  CHECK(fourier.beta().mean() == doctest::Approx(std::numbers::pi).epsilon(0.03));

  Rng rng = make_stream(seed, "kernel points");
  Matrix<double> x(d, 6);
  for (Index i = 0; i < x.size(); ++i) {
    x.data()[i] = 0.6 * standard_normal(rng);
  }
  const Matrix<double> z = fourier.map(batch_view(x));
  const fed::RandomFeatures<double> relu(
      d, {.kind = fed::RandomFeatureKind::relu, .features = D, .sigma = sigma, .seed = 11});
  const Matrix<double> r = relu.map(batch_view(x));
  for (Index i = 0; i < x.cols(); ++i) {
    for (Index j = i; j < x.cols(); ++j) {
      CAPTURE(i);
      CAPTURE(j);
      // Rahimi & Recht: E[z(x)ᵀz(y)] = exp(−‖x − y‖² / (2σ²)).
      const double gaussian = std::exp(-(x.col(i) - x.col(j)).squaredNorm() / (2 * sigma * sigma));
      CHECK(std::abs(z.col(i).dot(z.col(j)) - gaussian) < 0.05);
      // Cho & Saul, order 1, on u = [x; 1]: ‖u‖‖v‖ (sin θ + (π − θ) cos θ) / (2π σ²).
      Vector<double> u(d + 1);
      Vector<double> v(d + 1);
      u << x.col(i), 1.0;
      v << x.col(j), 1.0;
      const double cos_theta = std::clamp(u.dot(v) / (u.norm() * v.norm()), -1.0, 1.0);
      const double theta = std::acos(cos_theta);
      const double scale = u.norm() * v.norm() / (sigma * sigma);
      const double arccos = scale * (std::sin(theta) + (std::numbers::pi - theta) * cos_theta) /
                            (2 * std::numbers::pi);
      CHECK(std::abs(r.col(i).dot(r.col(j)) - arccos) < 0.05 * scale);
    }
  }
  CHECK((r.array() >= 0.0).all());

  // A dataset maps column by column and keeps its labels, classes and name.
  data::Dataset<double> pool = gaussian_classes(7, d, 3, rng);
  const data::Dataset<double> mapped = fourier.map(pool);
  CHECK(mapped.sample_size() == D);
  CHECK(mapped.sample_shape == std::array<Index, 3>{1, 1, D});
  CHECK(mapped.labels == pool.labels);
  CHECK(mapped.classes == pool.classes);
  CHECK(mapped.name == pool.name);
  const Matrix<double> one = pool.features.col(4);
  CHECK(mapped.features.col(4).isApprox(fourier.map(batch_view(one)), 1e-12));
  Matrix<double> wrong(d + 1, 2);
  CHECK_THROWS_AS((void)fourier.map(batch_view(wrong)), shape_error);
  CHECK_THROWS_AS(fed::RandomFeatures<double>(d, {.sigma = 0.0}), argument_error);
}

TEST_CASE("FED3R-RF equals centralized ridge on the random features; 8 bytes down") {
  Rng rng = make_stream(seed, "fed3r-rf");
  const Index d = 6;
  const Index C = 5;
  const data::Dataset<double> pool = gaussian_classes(300, d, C, rng);
  const data::Dataset<double> test = gaussian_classes(100, d, C, rng);
  const fed::RandomFeatureOptions rf{.features = 64, .sigma = 2.0, .seed = 99};
  fed::Fed3r<double> strategy(d, C, {.random_features = rf});
  CHECK(strategy.bytes_down() == 8);
  CHECK(strategy.ridge_features() == 64);
  REQUIRE(strategy.random_features() != nullptr);

  const fed::Partition partition = label_skew_split(pool);
  std::vector<Index> order(static_cast<std::size_t>(C));
  std::iota(order.begin(), order.end(), Index{0});
  edgescale::shuffle(order, rng);
  run_federation(strategy, pool, partition, order, 2);

  // The map a client draws from the seed alone, applied centrally.
  const fed::RandomFeatures<double> map(d, rf);
  const data::Dataset<double> mapped = map.map(pool);
  const Matrix<double> oracle = centralized_ridge(mapped.features, mapped.labels, C, 0.01);
  CHECK(relative_error(strategy.weights(), oracle) < 1e-9);
  CHECK(strategy.evaluate(test) == ridge_accuracy(oracle, map.map(test)));
}

TEST_CASE("FED3R matches scikit-learn's Ridge on a committed fixture") {
  const std::filesystem::path dir = std::filesystem::path(EDGESCALE_TEST_DATA_DIR) / "fed3r";
  const auto features = data::load_npy<double>(dir / "features.npy");
  const auto labels = data::load_npy<std::int32_t>(dir / "labels.npy");
  const auto lambda = data::load_npy<double>(dir / "lambda.npy");
  const auto weights = data::load_npy<double>(dir / "weights.npy");
  REQUIRE(features.shape.size() == 2);
  const Index n = features.shape[0];
  const Index d = features.shape[1];
  const Index C = weights.shape[1];
  REQUIRE(weights.shape[0] == d + 1);
  REQUIRE(labels.size() == n);
  REQUIRE(lambda.size() == 1);

  data::Dataset<double> pool;
  pool.name = "fed3r fixture";
  pool.classes = C;
  pool.sample_shape = {1, 1, d};
  // (n, d) row-major is (d, n) column-major: one sample per column.
  pool.features = Eigen::Map<const Matrix<double>>(features.data.data(), d, n);
  pool.labels = labels.data;
  Matrix<double> reference(d + 1, C);
  for (Index r = 0; r < d + 1; ++r) {
    for (Index c = 0; c < C; ++c) {
      reference(r, c) = weights.data[static_cast<std::size_t>(r * C + c)];
    }
  }
  // Three clients of unequal sizes, in a scrambled order.
  fed::Partition partition(3);
  for (Index i = 0; i < n; ++i) {
    partition[static_cast<std::size_t>(i < 20 ? 0 : (i < 100 ? 1 : 2))].push_back(i);
  }
  fed::Fed3r<double> strategy(d, C, {.lambda = lambda.data[0]});
  run_federation(strategy, pool, partition, {2, 0, 1}, 2);
  CHECK(relative_error(strategy.weights(), reference) < 1e-9);
}

TEST_CASE("FED3R on float features: the statistics of the widened values, in double") {
  Rng rng = make_stream(seed, "float");
  const data::Dataset<double> wide = gaussian_classes(120, 7, 4, rng);
  data::Dataset<float> pool;
  pool.name = "float pool";
  pool.classes = wide.classes;
  pool.sample_shape = wide.sample_shape;
  pool.features = wide.features.cast<float>();
  pool.labels = wide.labels;
  data::Dataset<double> widened = wide;  // the float values, exactly, in double
  widened.features = pool.features.cast<double>();

  const fed::Partition partition = iid_split(pool.size(), 3, rng);
  fed::Fed3r<float> strategy(7, 4);
  fed::Fed3r<double> reference(7, 4);
  auto worker = strategy.make_worker();
  auto reference_worker = reference.make_worker();
  fed::Stateless none;
  for (Index k = 0; k < 3; ++k) {
    Rng client_rng = fed::client_stream(seed, 0, k);
    const auto& indices = partition[static_cast<std::size_t>(k)];
    const fed::RidgeStatistics s = strategy.client_update(
        worker, fed::ClientData<float>{.id = k, .data = &pool, .indices = indices}, none,
        client_rng);
    const fed::RidgeStatistics r = reference.client_update(
        reference_worker, fed::ClientData<double>{.id = k, .data = &widened, .indices = indices},
        none, client_rng);
    CHECK(s.A == r.A);
    CHECK(s.b == r.b);
    CHECK(strategy.check(s).empty());
    const fed::Received<fed::RidgeStatistics> mine{.client = k, .samples = s.n, .update = &s};
    const fed::Received<fed::RidgeStatistics> theirs{.client = k, .samples = r.n, .update = &r};
    strategy.server_update(std::span(&mine, 1), fed::RoundInfo{});
    reference.server_update(std::span(&theirs, 1), fed::RoundInfo{});
  }
  CHECK(strategy.weights() == reference.weights());
  CHECK(strategy.evaluate(pool) == reference.evaluate(widened));
  CHECK(strategy.evaluate(pool) > 0.5);
}
