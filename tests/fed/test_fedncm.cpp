// FedNCM (fed/fedncm.hpp) against class means computed directly on the pooled data.
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/fed/client.hpp>
#include <edgescale/fed/concepts.hpp>
#include <edgescale/fed/fedncm.hpp>

#include "gaussian_classes.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

using namespace edgescale;

static_assert(fed::Strategy<fed::FedNcm<float>>);
static_assert(fed::Strategy<fed::FedNcm<double>>);

namespace {

/// n samples in the first `present` of C classes (the others never occur), Gaussian around
/// class means shared by every call with the same (d, C) (tests/fed/gaussian_classes.hpp).
data::Dataset<double> ncm_data(Index n, Index d, Index C, Index present, Rng& rng) {
  return test::gaussian_classes(n,
                                {.features = d,
                                 .classes = C,
                                 .present = present,
                                 .noise = 0.8,
                                 .means_key = static_cast<std::uint64_t>(d * 100 + C),
                                 .means_stream = "ncm means",
                                 .name = "ncm"},
                                rng);
}

}  // namespace

TEST_CASE("FedNCM: the head is the normalised global class means, for any split and order") {
  Rng rng = make_stream(5, "fedncm");
  const Index d = 12;
  const Index C = 6;
  const Index present = 5;  // class 5 never occurs: its column must be zero
  const data::Dataset<double> pool = ncm_data(300, d, C, present, rng);
  const data::Dataset<double> test = ncm_data(120, d, C, present, rng);

  // Directly: the mean of each class over the pooled data, divided by its norm.
  Matrix<double> expected = Matrix<double>::Zero(d, C);
  for (Index c = 0; c < C; ++c) {
    Vector<double> sum = Vector<double>::Zero(d);
    Index count = 0;
    for (Index i = 0; i < pool.size(); ++i) {
      if (pool.labels[static_cast<std::size_t>(i)] == c) {
        sum += pool.features.col(i);
        ++count;
      }
    }
    if (count > 0) {
      const Vector<double> mean = sum / static_cast<double>(count);
      expected.col(c) = mean / mean.norm();
    }
  }
  // Nearest normalised mean by cosine, over the classes that occur.
  Index correct = 0;
  for (Index i = 0; i < test.size(); ++i) {
    Index best = 0;
    double best_cosine = -2.0;
    for (Index c = 0; c < present; ++c) {
      const double cosine = test.features.col(i).dot(expected.col(c)) / test.features.col(i).norm();
      if (cosine > best_cosine) {
        best_cosine = cosine;
        best = c;
      }
    }
    correct += best == test.labels[static_cast<std::size_t>(i)] ? 1 : 0;
  }
  const double expected_accuracy = static_cast<double>(correct) / static_cast<double>(test.size());
  CHECK(expected_accuracy > 0.5);

  // Label skew: client k holds the samples of class k mod 5 with an odd or even index.
  fed::Partition partition(10);
  for (Index i = 0; i < pool.size(); ++i) {
    const Index y = pool.labels[static_cast<std::size_t>(i)];
    partition[static_cast<std::size_t>(y + present * (i % 2))].push_back(i);
  }
  for (int trial = 0; trial < 3; ++trial) {
    CAPTURE(trial);
    std::vector<Index> order(partition.size());
    std::iota(order.begin(), order.end(), Index{0});
    edgescale::shuffle(order, rng);
    fed::FedNcm<double> strategy(d, C);
    auto worker = strategy.make_worker();
    fed::Stateless none;
    std::vector<fed::NcmStatistics> updates;
    for (const Index k : order) {
      const fed::ClientData<double> client{
          .id = k, .data = &pool, .indices = partition[static_cast<std::size_t>(k)]};
      Rng client_rng = fed::client_stream(5, 0, k);
      updates.push_back(strategy.client_update(worker, client, none, client_rng));
      REQUIRE(strategy.check(updates.back()).empty());
      CHECK(strategy.bytes_up(updates.back()) == static_cast<std::size_t>(d * C + C) * 8);
    }
    std::vector<fed::Received<fed::NcmStatistics>> received;
    for (std::size_t k = 0; k < order.size(); ++k) {
      received.push_back({.client = order[k], .samples = 0, .update = &updates[k]});
    }
    strategy.server_update(received, fed::RoundInfo{.round = 0});
    CHECK(strategy.bytes_down() == 0);
    CHECK(std::accumulate(strategy.statistics().counts.begin(), strategy.statistics().counts.end(),
                          Index{0}) == pool.size());
    CHECK((strategy.head() - expected).norm() < 1e-12);
    CHECK(strategy.head().col(C - 1).isZero(0.0));
    for (Index c = 0; c < present; ++c) {
      CHECK(strategy.head().col(c).norm() == doctest::Approx(1.0).epsilon(1e-14));
    }
    CHECK(strategy.evaluate(test) == expected_accuracy);
  }
}

TEST_CASE("FedNCM: check() rejects a wrong shape, NaN, Inf and negative counts") {
  Rng rng = make_stream(6, "fedncm check");
  const Index d = 4;
  const Index C = 3;
  const data::Dataset<double> pool = ncm_data(30, d, C, C, rng);
  const fed::FedNcm<double> strategy(d, C);
  std::vector<Index> all(static_cast<std::size_t>(pool.size()));
  std::iota(all.begin(), all.end(), Index{0});
  auto worker = strategy.make_worker();
  fed::Stateless none;
  const fed::NcmStatistics good = strategy.client_update(
      worker, fed::ClientData<double>{.id = 0, .data = &pool, .indices = all}, none, rng);
  REQUIRE(strategy.check(good).empty());

  auto reason = [&](auto tamper) {
    fed::NcmStatistics u = good;
    tamper(u);
    return strategy.check(u);
  };
  CHECK(strategy.check(fed::NcmStatistics(d + 1, C)).find("shape") != std::string::npos);
  CHECK(reason([](auto& u) { u.counts.pop_back(); }).find("shape") != std::string::npos);
  CHECK(reason([](auto& u) {
          u.sums(1, 2) = std::numeric_limits<double>::quiet_NaN();
        }).find("NaN") != std::string::npos);
  CHECK(reason([](auto& u) {
          u.sums(0, 0) = std::numeric_limits<double>::infinity();
        }).find("Inf") != std::string::npos);
  CHECK(reason([](auto& u) { u.counts[1] = -4; }).find("negative") != std::string::npos);
  CHECK(reason([](auto& u) { u.counts[2] = 0; }).find("0 samples") != std::string::npos);

  // A client with samples of the wrong size is refused before anything is summed.
  data::Dataset<double> wide = pool;
  wide.features = Matrix<double>::Zero(d + 1, pool.size());
  wide.sample_shape = {1, 1, d + 1};
  CHECK_THROWS_AS(
      (void)strategy.client_update(
          worker, fed::ClientData<double>{.id = 3, .data = &wide, .indices = all}, none, rng),
      shape_error);
  // So is a client holding an index outside the dataset, or no dataset at all
  // (fed::ClientData::checked_data, which FED3R uses too: test_fed3r.cpp).
  const std::vector<Index> outside{0, pool.size()};
  CHECK_THROWS_WITH_AS(
      (void)strategy.client_update(
          worker, fed::ClientData<double>{.id = 4, .data = &pool, .indices = outside}, none, rng),
      doctest::Contains("fedncm: client 4: sample 30 is outside its dataset of 30 samples"),
      argument_error);
  CHECK_THROWS_WITH_AS(
      (void)strategy.client_update(
          worker, fed::ClientData<double>{.id = 5, .data = nullptr, .indices = all}, none, rng),
      doctest::Contains("client 5 has no dataset"), argument_error);
}
