#include <edgescale/core/random.hpp>
#include <edgescale/fed/concepts.hpp>
#include <edgescale/fed/partition.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

using namespace edgescale;

static_assert(fed::Partitioner<fed::Iid>);
static_assert(fed::Partitioner<fed::DirichletPrior>);
static_assert(fed::Partitioner<fed::DirichletPerClass>);
static_assert(fed::Partitioner<fed::Shards>);
static_assert(fed::Partitioner<fed::QuantitySkew>);

namespace {

/// n labels cycling through 0, 1, ..., classes - 1: every class n / classes times.
std::vector<std::int32_t> balanced_labels(Index n, Index classes) {
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) {
    y[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i % classes);
  }
  return y;
}

/// Uneven class sizes: the smaller of two uniform classes (class 0 most frequent).
std::vector<std::int32_t> skewed_labels(Index n, Index classes, std::uint64_t seed) {
  Rng rng = make_stream(seed, "labels");
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  for (auto& label : y) {
    const auto a = uniform_index(rng, static_cast<std::uint64_t>(classes));
    const auto b = uniform_index(rng, static_cast<std::uint64_t>(classes));
    label = static_cast<std::int32_t>(std::min(a, b));
  }
  return y;
}

/// Every index of [0, n) in exactly one client, each client sorted ascending.
void check_exactly_once(const fed::Partition& split, Index n) {
  std::vector<int> seen(static_cast<std::size_t>(n), 0);
  for (const auto& client : split) {
    CHECK(std::is_sorted(client.begin(), client.end()));
    for (const Index i : client) {
      REQUIRE(i >= 0);
      REQUIRE(i < n);
      ++seen[static_cast<std::size_t>(i)];
    }
  }
  CHECK(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
}

struct Moments {
  double mean = 0;
  double variance = 0;
};

Moments moments(const std::vector<double>& x) {
  Moments m;
  for (const double v : x) {
    m.mean += v;
  }
  m.mean /= static_cast<double>(x.size());
  for (const double v : x) {
    m.variance += (v - m.mean) * (v - m.mean);
  }
  m.variance /= static_cast<double>(x.size() - 1);
  return m;
}

struct Estimate {
  double mean = 0;
  double se = 0;  ///< standard error
};

/// Mean TV distance of clients [first, first + count) and its standard error (their sample sd over
/// sqrt(count); where the clients' TVs are negatively correlated through the shared pool, this
/// errs large).
Estimate mean_tv(const fed::PartitionSummary& s, Index first, Index count) {
  std::vector<double> tv;
  for (Index k = first; k < first + count; ++k) {
    tv.push_back(s.tv_distance(k));
  }
  const Moments m = moments(tv);
  return {m.mean, std::sqrt(m.variance / static_cast<double>(count))};
}

/// E|X/m - p|, p = a/(a + b), for X ~ BetaBinomial(m, a, b): a class count of m draws from a
/// share q ~ Beta(a, b) (one marginal of a Dirichlet-multinomial), summed over its pmf:
/// pmf(0) = prod_{i<m} (b + i)/(a + b + i), pmf(x + 1)/pmf(x) = (m - x)(x + a)/((x + 1)(m - x - 1 +
/// b)).
double beta_binomial_mad(Index m, double a, double b) {
  const double p = a / (a + b);
  const auto md = static_cast<double>(m);
  double pmf = 1.0;
  for (Index i = 0; i < m; ++i) {
    pmf *= (b + static_cast<double>(i)) / (a + b + static_cast<double>(i));
  }
  double sum = 0.0;
  for (Index x = 0; x <= m; ++x) {
    const auto xd = static_cast<double>(x);
    sum += pmf * std::abs(xd / md - p);
    pmf *= (md - xd) * (xd + a) / ((xd + 1) * (md - xd - 1 + b));
  }
  return sum;
}

/// E|X/m - K/N| for X ~ Hypergeometric(N, K, m) (m <= N - K): a class count of m samples drawn
/// without replacement from N of which K are of the class, summed over its pmf:
/// pmf(0) = prod_{i<m} (N - K - i)/(N - i), pmf(x + 1)/pmf(x) = (K - x)(m - x)/((x + 1)(N - K - m +
/// x + 1)).
double hypergeometric_mad(Index N, Index K, Index m) {
  const double p = static_cast<double>(K) / static_cast<double>(N);
  double pmf = 1.0;
  for (Index i = 0; i < m; ++i) {
    pmf *= static_cast<double>(N - K - i) / static_cast<double>(N - i);
  }
  double sum = 0.0;
  for (Index x = 0; x <= std::min(m, K); ++x) {
    sum += pmf * std::abs(static_cast<double>(x) / static_cast<double>(m) - p);
    pmf *=
        static_cast<double>((K - x) * (m - x)) / static_cast<double>((x + 1) * (N - K - m + x + 1));
  }
  return sum;
}

template <class P>
void check_deterministic(const P& partitioner, const std::vector<std::int32_t>& labels,
                         Index classes, Index clients) {
  Rng a = make_stream(1, "partition");
  Rng b = make_stream(1, "partition");
  Rng c = make_stream(2, "partition");
  const fed::Partition first = partitioner.partition(labels, classes, clients, a);
  CHECK(first == partitioner.partition(labels, classes, clients, b));
  CHECK(first != partitioner.partition(labels, classes, clients, c));
}

}  // namespace

// Moment checks below allow 5 standard errors of the estimate over N draws: SE(mean) =
// sqrt(var / N); SE(sample variance) = sqrt((mu4 - sigma^4) / N), mu4 the fourth central moment.

TEST_CASE("gamma has mean k and variance k") {
  const int n = 200000;
  for (const double k : {0.05, 0.5, 1.0, 3.7}) {
    CAPTURE(k);
    Rng rng = make_stream(11, "gamma");
    std::vector<double> x(n);
    for (double& v : x) {
      v = gamma(rng, k);
      REQUIRE(v >= 0.0);
    }
    const Moments m = moments(x);
    // Gamma(k): variance k, excess kurtosis 6/k, so mu4 - sigma^4 = 2k^2 + 6k.
    CHECK(std::abs(m.mean - k) < 5 * std::sqrt(k / n));
    CHECK(std::abs(m.variance - k) < 5 * std::sqrt((2 * k * k + 6 * k) / n));
  }
}

TEST_CASE("log_gamma_variate draws the same numbers as gamma, without underflow") {
  for (const double k : {0.001, 0.05, 0.5, 1.0, 3.7}) {
    CAPTURE(k);
    Rng a = make_stream(12, "gamma");
    Rng b = make_stream(12, "gamma");
    int underflows = 0;
    for (int i = 0; i < 2000; ++i) {
      const double g = gamma(a, k);
      const double l = log_gamma_variate(b, k);
      REQUIRE(std::isfinite(l));
      if (g > 1e-300) {
        CHECK(std::log(g) == doctest::Approx(l).epsilon(1e-12).scale(1.0));
      } else {
        ++underflows;
      }
    }
    if (k >= 0.5) {
      CHECK(underflows == 0);
    }
  }
}

TEST_CASE("dirichlet sums to 1 with mean alpha_i / sum alpha") {
  const std::vector<double> alpha{0.3, 1.0, 2.5, 0.05};
  const double a0 = std::accumulate(alpha.begin(), alpha.end(), 0.0);
  const int n = 50000;
  Rng rng = make_stream(13, "dirichlet");
  std::vector<double> sum(alpha.size(), 0.0);
  for (int t = 0; t < n; ++t) {
    const std::vector<double> p = dirichlet(rng, alpha);
    REQUIRE(p.size() == alpha.size());
    CHECK(std::accumulate(p.begin(), p.end(), 0.0) == doctest::Approx(1.0).epsilon(1e-12));
    for (std::size_t i = 0; i < p.size(); ++i) {
      REQUIRE((p[i] >= 0.0 && p[i] <= 1.0));
      sum[i] += p[i];
    }
  }
  for (std::size_t i = 0; i < alpha.size(); ++i) {
    // Var p_i = a_i (a0 - a_i) / (a0^2 (a0 + 1)).
    const double mean = alpha[i] / a0;
    const double var = alpha[i] * (a0 - alpha[i]) / (a0 * a0 * (a0 + 1));
    CHECK(std::abs(sum[i] / n - mean) < 5 * std::sqrt(var / n));
  }
}

TEST_CASE("dirichlet with tiny alpha stays a distribution (gammas would all underflow)") {
  const std::vector<double> alpha(10, 0.001);
  const int n = 20000;
  Rng rng = make_stream(14, "dirichlet");
  Rng plain = make_stream(14, "dirichlet");
  int all_plain_zero = 0;
  std::vector<double> sum(alpha.size(), 0.0);
  for (int t = 0; t < n; ++t) {
    const std::vector<double> p = dirichlet(rng, alpha);
    bool any = false;
    for (const double a : alpha) {
      any = any || gamma(plain, a) > 0.0;  // the same draws, not in log space
    }
    all_plain_zero += any ? 0 : 1;
    double total = 0.0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      REQUIRE(std::isfinite(p[i]));
      total += p[i];
      sum[i] += p[i];
    }
    CHECK(total == doctest::Approx(1.0).epsilon(1e-12));
  }
  CHECK(all_plain_zero > 0);  // the case the log-space draw exists for does occur
  const double a0 = 0.001 * 10;
  for (std::size_t i = 0; i < alpha.size(); ++i) {
    const double var = 0.001 * (a0 - 0.001) / (a0 * a0 * (a0 + 1));
    CHECK(std::abs(sum[i] / n - 0.1) < 5 * std::sqrt(var / n));
  }
}

TEST_CASE("gamma and dirichlet reject bad parameters") {
  Rng rng = make_stream(15, "gamma");
  for (const double k : {0.0, -1.0, std::numeric_limits<double>::infinity(),
                         std::numeric_limits<double>::quiet_NaN()}) {
    CHECK_THROWS_AS((void)gamma(rng, k), argument_error);
    CHECK_THROWS_AS((void)log_gamma_variate(rng, k), argument_error);
    CHECK_THROWS_AS((void)dirichlet(rng, std::vector<double>{1.0, k}), argument_error);
  }
  CHECK_THROWS_AS((void)dirichlet(rng, std::vector<double>{}), argument_error);
}

TEST_CASE("Iid: equal sizes, every sample once, class mix as sampling noise predicts") {
  const Index n = 10000;
  const Index classes = 10;
  const Index clients = 100;
  const auto labels = balanced_labels(n, classes);
  Rng rng = make_stream(21, "partition");
  const fed::Partition split = fed::Iid{}.partition(labels, classes, clients, rng);
  REQUIRE(static_cast<Index>(split.size()) == clients);
  check_exactly_once(split, n);
  const fed::PartitionSummary s = fed::summarize(split, labels, classes);
  CHECK(s.min_size() == n / clients);
  CHECK(s.max_size() == n / clients);
  // A client is a sample of m = n/K without replacement, so each class count is hypergeometric
  // and the expected TV distance is (1/2) sum_c E|X_c/m - p_c| (p_c = 1/C).
  const Index m = n / clients;
  const double expected =
      0.5 * static_cast<double>(classes) * hypergeometric_mad(n, n / classes, m);
  const Estimate tv = mean_tv(s, 0, clients);
  CHECK(tv.mean == doctest::Approx(s.mean_tv_distance()));
  CHECK(std::abs(tv.mean - expected) < 5 * tv.se);

  // Uneven n: sizes differ by at most 1.
  const auto odd = balanced_labels(1003, 7);
  const fed::Partition uneven = fed::Iid{}.partition(odd, 7, 10, rng);
  check_exactly_once(uneven, 1003);
  const fed::PartitionSummary u = fed::summarize(uneven, odd, 7);
  CHECK(u.max_size() - u.min_size() <= 1);
  check_deterministic(fed::Iid{}, labels, classes, clients);
}

TEST_CASE("DirichletPrior: n/K samples each, heterogeneity falls as alpha grows") {
  const Index n = 10000;
  const Index classes = 10;
  const Index clients = 100;
  const Index m = n / clients;
  const auto labels = balanced_labels(n, classes);
  const auto summary_at = [&](double alpha) {
    Rng rng = make_stream(22, "partition");
    const fed::Partition split =
        fed::DirichletPrior{.alpha = alpha}.partition(labels, classes, clients, rng);
    check_exactly_once(split, n);
    fed::PartitionSummary s = fed::summarize(split, labels, classes);
    CHECK(s.min_size() == m);
    CHECK(s.max_size() == m);
    return s;
  };
  const fed::PartitionSummary s_005 = summary_at(0.05);
  const fed::PartitionSummary s_1 = summary_at(1.0);
  const fed::PartitionSummary s_1000 = summary_at(1000.0);
  CHECK(s_005.mean_tv_distance() > s_1.mean_tv_distance());
  CHECK(s_1.mean_tv_distance() > s_1000.mean_tv_distance());
  // Until a class runs out, a client's counts are Dirichlet-multinomial: class c's count is
  // BetaBinomial(m, alpha p_c, alpha (1 - p_c)), which gives the expected TV distance exactly.
  // The first clients draw from full pools (at alpha = 1, the first quarter takes 250 +- 110
  // samples of a class of 1000; at alpha = 1000, the first half 500 +- 15), so check those.
  const auto expected_tv = [&](double alpha) {
    const double p = 1.0 / static_cast<double>(classes);
    return 0.5 * static_cast<double>(classes) * beta_binomial_mad(m, alpha * p, alpha * (1 - p));
  };
  const Estimate tv_1 = mean_tv(s_1, 0, clients / 4);
  CHECK(std::abs(tv_1.mean - expected_tv(1.0)) < 5 * tv_1.se);
  const Estimate tv_1000 = mean_tv(s_1000, 0, clients / 2);
  CHECK(std::abs(tv_1000.mean - expected_tv(1000.0)) < 5 * tv_1000.se);
  // alpha = 1000 is close to IID: within 5 SE of the IID expectation plus the Dirichlet's excess.
  const double iid = 0.5 * static_cast<double>(classes) * hypergeometric_mad(n, n / classes, m);
  CHECK(std::abs(tv_1000.mean - iid) < 5 * tv_1000.se + (expected_tv(1000.0) - iid));

  // Uneven class sizes and n not a multiple of K: still every sample once, sizes n/K or n/K + 1.
  const auto skewed = skewed_labels(2003, 5, 1);
  Rng r = make_stream(23, "partition");
  const fed::Partition split = fed::DirichletPrior{.alpha = 0.1}.partition(skewed, 5, 20, r);
  check_exactly_once(split, 2003);
  const fed::PartitionSummary s = fed::summarize(split, skewed, 5);
  CHECK(s.min_size() == 2003 / 20);
  CHECK(s.max_size() == 2003 / 20 + 1);
  check_deterministic(fed::DirichletPrior{.alpha = 0.3}, labels, classes, clients);
}

TEST_CASE("DirichletPerClass: class totals preserved, min_size and balance honoured") {
  const Index n = 5000;
  const Index classes = 10;
  const Index clients = 20;
  const auto labels = skewed_labels(n, classes, 2);
  std::vector<Index> class_total(static_cast<std::size_t>(classes), 0);
  for (const auto y : labels) {
    ++class_total[static_cast<std::size_t>(y)];
  }
  Rng rng = make_stream(24, "partition");
  const fed::Partition split =
      fed::DirichletPerClass{.alpha = 0.3}.partition(labels, classes, clients, rng);
  check_exactly_once(split, n);
  const fed::PartitionSummary s = fed::summarize(split, labels, classes);
  for (Index c = 0; c < classes; ++c) {
    Index total = 0;
    for (Index k = 0; k < clients; ++k) {
      total += s.count(k, c);
    }
    CHECK(total == class_total[static_cast<std::size_t>(c)]);
  }
  check_deterministic(fed::DirichletPerClass{.alpha = 0.3}, labels, classes, clients);

  // min_size: the unconstrained split of this seed has a client below it; the constrained none.
  const auto small = balanced_labels(2000, 10);
  const fed::DirichletPerClass loose{.alpha = 0.3};
  const fed::DirichletPerClass strict{.alpha = 0.3, .min_size = 40};
  Rng a = make_stream(25, "partition");
  Rng b = make_stream(25, "partition");
  CHECK(fed::summarize(loose.partition(small, 10, 20, a), small, 10).min_size() < 40);
  const fed::Partition constrained = strict.partition(small, 10, 20, b);
  check_exactly_once(constrained, 2000);
  CHECK(fed::summarize(constrained, small, 10).min_size() >= 40);
  // Infeasible in practice: every client exactly n/K at alpha = 0.05.
  Rng c = make_stream(26, "partition");
  const fed::DirichletPerClass infeasible{.alpha = 0.05, .min_size = 100, .max_attempts = 3};
  CHECK_THROWS_AS((void)infeasible.partition(small, 10, 20, c), argument_error);
  CHECK_THROWS_AS((void)fed::DirichletPerClass{.min_size = 101}.partition(small, 10, 20, c),
                  argument_error);

  // balance: a client stops receiving once it holds n/K, so it ends below n/K + n_c (the most
  // one class can add); without it, sizes spread further.
  const Index fair = 2000 / 20;
  const Index largest_class = 2000 / 10;
  Rng d = make_stream(27, "partition");
  Rng e = make_stream(27, "partition");
  const fed::Partition balanced =
      fed::DirichletPerClass{.alpha = 0.1, .balance = true}.partition(small, 10, 20, d);
  check_exactly_once(balanced, 2000);
  const auto sb = fed::summarize(balanced, small, 10);
  const auto su =
      fed::summarize(fed::DirichletPerClass{.alpha = 0.1}.partition(small, 10, 20, e), small, 10);
  CHECK(sb.max_size() < fair + largest_class);
  CHECK(sb.max_size() - sb.min_size() < su.max_size() - su.min_size());
}

TEST_CASE("Shards: at most two classes per client for a balanced dataset") {
  // 1000 samples of 10 classes, 50 clients x 2 shards of 10: each shard holds one class.
  const Index n = 1000;
  const Index classes = 10;
  const Index clients = 50;
  const auto labels = balanced_labels(n, classes);
  Rng rng = make_stream(28, "partition");
  const fed::Partition split = fed::Shards{}.partition(labels, classes, clients, rng);
  check_exactly_once(split, n);
  const fed::PartitionSummary s = fed::summarize(split, labels, classes);
  CHECK(s.min_size() == n / clients);
  CHECK(s.max_size() == n / clients);
  for (Index k = 0; k < clients; ++k) {
    Index held = 0;
    for (Index c = 0; c < classes; ++c) {
      held += s.count(k, c) > 0 ? 1 : 0;
    }
    CHECK(held <= 2);
  }
  CHECK(s.mean_classes_per_client() <= 2.0);
  // Uneven sizes: shards differ by at most one sample, so clients by at most s.
  const auto odd = skewed_labels(1009, 7, 3);
  const fed::Partition uneven = fed::Shards{.shards_per_client = 3}.partition(odd, 7, 13, rng);
  check_exactly_once(uneven, 1009);
  const auto u = fed::summarize(uneven, odd, 7);
  CHECK(u.max_size() - u.min_size() <= 3);
  check_deterministic(fed::Shards{}, labels, classes, clients);
}

TEST_CASE("QuantitySkew: log-normal sizes summing to n, at least one each") {
  const Index n = 100000;
  const Index classes = 10;
  const Index clients = 200;
  const auto labels = balanced_labels(n, classes);
  Rng rng = make_stream(29, "partition");
  const double sigma = 1.0;
  const fed::Partition split =
      fed::QuantitySkew{.sigma = sigma}.partition(labels, classes, clients, rng);
  check_exactly_once(split, n);
  const fed::PartitionSummary s = fed::summarize(split, labels, classes);
  CHECK(std::accumulate(s.sizes.begin(), s.sizes.end(), Index{0}) == n);
  CHECK(s.min_size() >= 1);
  // log size = sigma z_k + const (+ rounding, small at ~500 samples a client): the sample sd of
  // the log sizes estimates sigma with SE sigma / sqrt(2 (K - 1)).
  std::vector<double> log_sizes;
  for (const Index size : s.sizes) {
    log_sizes.push_back(std::log(static_cast<double>(size)));
  }
  const double se = sigma / std::sqrt(2.0 * static_cast<double>(clients - 1));
  CHECK(std::abs(std::sqrt(moments(log_sizes).variance) - sigma) < 5 * se);

  // sigma = 0 gives equal sizes; a huge sigma still leaves every client a sample.
  const auto few = balanced_labels(1000, classes);
  const auto flat = fed::summarize(fed::QuantitySkew{.sigma = 0.0}.partition(few, classes, 30, rng),
                                   few, classes);
  CHECK(flat.max_size() - flat.min_size() <= 1);
  const fed::Partition extreme = fed::QuantitySkew{.sigma = 10.0}.partition(few, classes, 30, rng);
  check_exactly_once(extreme, 1000);
  CHECK(fed::summarize(extreme, few, classes).min_size() >= 1);
  check_deterministic(fed::QuantitySkew{}, labels, classes, clients);
}

TEST_CASE("summarize: sizes, histogram and CSV") {
  const std::vector<std::int32_t> labels{0, 1, 2, 0, 1, 0};
  const fed::Partition split{{0, 3}, {1, 2, 4}, {5}};
  const fed::PartitionSummary s = fed::summarize(split, labels, 3);
  CHECK(s.sizes == std::vector<Index>{2, 3, 1});
  CHECK(s.count(0, 0) == 2);
  CHECK(s.count(1, 1) == 2);
  CHECK(s.count(1, 2) == 1);
  CHECK(s.mean_size() == doctest::Approx(2.0));
  CHECK(s.mean_classes_per_client() == doctest::Approx((1.0 + 2.0 + 1.0) / 3.0));
  // Client 0 holds only class 0 (global p = 1/2, 1/3, 1/6): TV = (1/2)(1/2 + 1/3 + 1/6).
  CHECK(s.tv_distance(0) == doctest::Approx(0.5));
  std::ostringstream csv;
  s.write_csv(csv);
  CHECK(csv.str() == "client,size,c0,c1,c2\n0,2,2,0,0\n1,3,0,2,1\n2,1,1,0,0\n");
  CHECK_THROWS_AS((void)fed::summarize(fed::Partition(1, std::vector<Index>{6}), labels, 3),
                  argument_error);
  CHECK_THROWS_AS((void)fed::summarize(split, labels, 2), argument_error);
}

TEST_CASE("partitioners reject bad arguments") {
  const auto labels = balanced_labels(100, 4);
  Rng rng = make_stream(30, "partition");
  const auto rejects = [&](const auto& p) {
    CHECK_THROWS_AS((void)p.partition(labels, 4, 0, rng), argument_error);    // no clients
    CHECK_THROWS_AS((void)p.partition(labels, 4, 101, rng), argument_error);  // more than n
    CHECK_THROWS_AS((void)p.partition(labels, 0, 10, rng), argument_error);   // no classes
    CHECK_THROWS_AS((void)p.partition(labels, 3, 10, rng), argument_error);   // label 3 >= 3
    auto negative = labels;
    negative[7] = -1;
    CHECK_THROWS_AS((void)p.partition(negative, 4, 10, rng), argument_error);
  };
  rejects(fed::Iid{});
  rejects(fed::DirichletPrior{});
  rejects(fed::DirichletPerClass{});
  rejects(fed::Shards{});
  rejects(fed::QuantitySkew{});
  for (const double alpha : {0.0, -0.5, std::numeric_limits<double>::infinity(),
                             std::numeric_limits<double>::quiet_NaN()}) {
    CHECK_THROWS_AS((void)fed::DirichletPrior{.alpha = alpha}.partition(labels, 4, 10, rng),
                    argument_error);
    CHECK_THROWS_AS((void)fed::DirichletPerClass{.alpha = alpha}.partition(labels, 4, 10, rng),
                    argument_error);
  }
  CHECK_THROWS_AS((void)fed::DirichletPerClass{.min_size = -1}.partition(labels, 4, 10, rng),
                  argument_error);
  CHECK_THROWS_AS((void)fed::DirichletPerClass{.max_attempts = 0}.partition(labels, 4, 10, rng),
                  argument_error);
  CHECK_THROWS_AS((void)fed::Shards{.shards_per_client = 0}.partition(labels, 4, 10, rng),
                  argument_error);
  CHECK_THROWS_AS((void)fed::Shards{.shards_per_client = 11}.partition(labels, 4, 10, rng),
                  argument_error);
  CHECK_THROWS_AS((void)fed::QuantitySkew{.sigma = -1.0}.partition(labels, 4, 10, rng),
                  argument_error);
}
