#include <edgescale/core/random.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <vector>

using namespace edgescale;

TEST_CASE("named streams are reproducible and independent") {
  Rng a = make_stream(7, "init");
  Rng b = make_stream(7, "init");
  Rng c = make_stream(7, "shuffle");
  Rng d = make_stream(8, "init");
  const auto x = a();
  CHECK(x == b());
  CHECK(x != c());
  CHECK(x != d());
}

TEST_CASE("standard_normal has mean 0 and variance 1") {
  Rng rng = make_stream(1, "normal");
  const int n = 200000;
  double sum = 0;
  double sq = 0;
  for (int i = 0; i < n; ++i) {
    const double z = standard_normal(rng);
    sum += z;
    sq += z * z;
  }
  const double mean = sum / n;
  // 5 standard errors: 5 / sqrt(n) = 0.011 for the mean, ~5 * sqrt(2/n) = 0.016 for the variance.
  CHECK(std::abs(mean) < 0.011);
  CHECK(std::abs(sq / n - mean * mean - 1.0) < 0.016);
}

TEST_CASE("uniform01 lies in [0, 1)") {
  Rng rng = make_stream(2, "u");
  for (int i = 0; i < 10000; ++i) {
    const float f = uniform01<float>(rng);
    const double g = uniform01<double>(rng);
    CHECK((f >= 0.0F && f < 1.0F));
    CHECK((g >= 0.0 && g < 1.0));
  }
}

TEST_CASE("shuffle is a permutation, uniform over positions") {
  Rng rng = make_stream(3, "shuffle");
  std::vector<int> counts(5 * 5, 0);
  const int trials = 50000;
  for (int t = 0; t < trials; ++t) {
    std::vector<int> v{0, 1, 2, 3, 4};
    shuffle(std::span<int>(v), rng);
    std::vector<int> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    REQUIRE(sorted == std::vector<int>{0, 1, 2, 3, 4});
    for (int pos = 0; pos < 5; ++pos) {
      ++counts[static_cast<std::size_t>(v[static_cast<std::size_t>(pos)] * 5 + pos)];
    }
  }
  // each (value, position) has probability 1/5: expected 10000, sd = sqrt(50000*0.2*0.8) ~ 89
  for (const int c : counts) {
    CHECK(std::abs(c - trials / 5) < 450);
  }
}

TEST_CASE("uniform_index stays below n") {
  Rng rng = make_stream(4, "idx");
  for (std::uint64_t n : {1ULL, 2ULL, 3ULL, 10ULL, 1000003ULL}) {
    for (int i = 0; i < 1000; ++i) {
      CHECK(uniform_index(rng, n) < n);
    }
  }
}
