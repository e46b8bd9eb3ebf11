// edgescale/fed/partition.hpp — splitting a labelled dataset among K clients (fed::Partitioner).
//
//     Rng rng = make_stream(seed, "partition");
//     fed::Partition split = fed::DirichletPerClass{.alpha = 0.1, .min_size = 10}
//                                .partition(train.labels, train.classes, 100, rng);
//     fed::PartitionSummary s = fed::summarize(split, train.labels, train.classes);
//     s.write_csv(file);   // client,size,c0,...,c9 (scripts/plot_partition.py draws it)
//     std::cout << s.mean_tv_distance() << "\n";   // ~0 for IID, ~1 for one class per client
//
// The splits (DESIGN §3b):
//   Iid                equal sizes (differing by at most 1), shuffled;
//   DirichletPrior     Hsu et al. 2019: client k's class mix q_k ~ Dir(alpha p), p the global
//                      class prior, n/K samples each, exhausted classes removed from q_k;
//   DirichletPerClass  Yurochkin et al. 2019 (Flower/FedLab/FedML's "Dirichlet"): per class,
//                      p ~ Dir_K(alpha) cuts the class's shuffled samples among the clients;
//   Shards             McMahan et al. 2017: samples sorted by label, cut into K s shards, s each;
//   QuantitySkew       client sizes proportional to exp(N(0, sigma^2)), labels IID.
// Every split assigns each sample to exactly one client, lists a client's samples in ascending
// order (so a client's data does not depend on the order of the draws) and takes every random
// choice from the generator passed in.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/fed/client.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <ostream>
#include <span>
#include <string>
#include <vector>

namespace edgescale::fed {

namespace detail {

/// Checks what every split needs: classes >= 1, 1 <= clients <= n, labels in [0, classes).
inline void check_partition_arguments(const char* who, std::span<const std::int32_t> labels,
                                      Index classes, Index clients) {
  const std::string name = std::string("fed::") + who;
  if (classes < 1) {
    throw argument_error(name + ": expected at least 1 class, got " + std::to_string(classes));
  }
  if (clients < 1) {
    throw argument_error(name + ": expected at least 1 client, got " + std::to_string(clients));
  }
  const auto n = static_cast<Index>(labels.size());
  if (clients > n) {
    throw argument_error(name + ": " + std::to_string(clients) + " clients for " +
                         std::to_string(n) + " samples; expected at most one client per sample");
  }
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= classes) {
      throw argument_error(name + ": label " + std::to_string(labels[i]) + " of sample " +
                           std::to_string(i) + " outside [0, " + std::to_string(classes) + ")");
    }
  }
}

inline void check_alpha(const char* who, double alpha) {
  if (!(alpha > 0.0) || !std::isfinite(alpha)) {
    throw argument_error(std::string("fed::") + who + ": alpha must be positive and finite, got " +
                         std::to_string(alpha));
  }
}

/// sizes[k] = n / K, the first n % K clients one more.
inline std::vector<Index> equal_sizes(Index n, Index clients) {
  std::vector<Index> sizes(static_cast<std::size_t>(clients), n / clients);
  for (Index k = 0; k < n % clients; ++k) {
    ++sizes[static_cast<std::size_t>(k)];
  }
  return sizes;
}

/// Consecutive runs of `order` of the given sizes, each sorted ascending.
inline Partition cut(std::span<const Index> order, std::span<const Index> sizes) {
  Partition clients(sizes.size());
  std::size_t at = 0;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    const auto size = static_cast<std::size_t>(sizes[k]);
    clients[k].assign(order.begin() + static_cast<std::ptrdiff_t>(at),
                      order.begin() + static_cast<std::ptrdiff_t>(at + size));
    std::sort(clients[k].begin(), clients[k].end());
    at += size;
  }
  return clients;
}

/// 0, 1, ..., n - 1 shuffled.
inline std::vector<Index> shuffled_indices(Index n, Rng& rng) {
  std::vector<Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Index{0});
  edgescale::shuffle(order, rng);
  return order;
}

/// The samples of each class, in index order.
inline std::vector<std::vector<Index>> class_pools(std::span<const std::int32_t> labels,
                                                   Index classes) {
  std::vector<std::vector<Index>> pools(static_cast<std::size_t>(classes));
  for (std::size_t i = 0; i < labels.size(); ++i) {
    pools[static_cast<std::size_t>(labels[i])].push_back(static_cast<Index>(i));
  }
  return pools;
}

/// Weights exp(l_i - max l) over the entries with keep[i], 0 elsewhere: log-space weights made
/// relative to the largest kept one, so they never all vanish (see edgescale::dirichlet).
inline double relative_weights(std::span<const double> log_weights, std::span<const char> keep,
                               std::span<double> weights) {
  double top = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < log_weights.size(); ++i) {
    if (keep[i] != 0) {
      top = std::max(top, log_weights[i]);
    }
  }
  double total = 0.0;
  for (std::size_t i = 0; i < log_weights.size(); ++i) {
    weights[i] = keep[i] != 0 ? std::exp(log_weights[i] - top) : 0.0;
    total += weights[i];
  }
  return total;
}

/// An index drawn with probability weights[i] / total (total > 0).
inline std::size_t categorical(std::span<const double> weights, double total, Rng& rng) {
  const double u = edgescale::uniform01<double>(rng) * total;
  double cumulative = 0.0;
  std::size_t last = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] > 0.0) {
      cumulative += weights[i];
      last = i;
      if (u < cumulative) {
        return i;
      }
    }
  }
  return last;  // u landed past the rounded cumulative sum: the last positive weight
}

}  // namespace detail

/// IID: a shuffle cut into K clients of n/K samples (the first n % K clients hold one more).
struct Iid {
  // NOLINTNEXTLINE(readability-convert-member-functions-to-static): the Partitioner interface
  [[nodiscard]] Partition partition(std::span<const std::int32_t> labels, Index classes,
                                    Index clients, Rng& rng) const {
    detail::check_partition_arguments("Iid", labels, classes, clients);
    const auto n = static_cast<Index>(labels.size());
    const std::vector<Index> order = detail::shuffled_indices(n, rng);
    return detail::cut(order, detail::equal_sizes(n, clients));
  }
};

/// Label skew with a per-client prior (Hsu, Qi, Brown 2019, "Measuring the effects of non-identical
/// data distribution"): client k draws its class proportions q_k ~ Dir(alpha p), p the global
/// class prior (classes absent from the labels left out), and then its n/K samples one at a time:
/// a class c ~ q_k, the next sample of c's shuffled pool. A class whose pool is exhausted is
/// removed and q_k renormalised over the remaining classes. Clients draw in order 0, 1, ..., so
/// the last clients take what is left. alpha -> infinity is IID; alpha -> 0 one class per client.
struct DirichletPrior {
  double alpha = 0.5;  ///< concentration (> 0); the global prior p is spread over it

  [[nodiscard]] Partition partition(std::span<const std::int32_t> labels, Index classes,
                                    Index clients, Rng& rng) const {
    detail::check_partition_arguments("DirichletPrior", labels, classes, clients);
    detail::check_alpha("DirichletPrior", alpha);
    const auto n = static_cast<Index>(labels.size());
    auto pools = detail::class_pools(labels, classes);
    std::vector<std::size_t> present;  // classes with samples: the support of p
    std::vector<double> concentration;
    for (std::size_t c = 0; c < pools.size(); ++c) {
      if (!pools[c].empty()) {
        present.push_back(c);
        concentration.push_back(alpha * static_cast<double>(pools[c].size()) /
                                static_cast<double>(n));
      }
      edgescale::shuffle(pools[c], rng);
    }
    std::vector<std::size_t> next(pools.size(), 0);  // pools[c][next[c]] is c's next sample
    std::vector<double> log_q(present.size());
    std::vector<char> available(present.size());
    std::vector<double> weights(present.size());
    const std::vector<Index> sizes = detail::equal_sizes(n, clients);
    Partition split(static_cast<std::size_t>(clients));
    for (std::size_t k = 0; k < split.size(); ++k) {
      // q_k in log space (as edgescale::dirichlet draws it) so that renormalising over the
      // remaining classes never divides 0 by 0 when alpha is tiny.
      for (std::size_t j = 0; j < present.size(); ++j) {
        log_q[j] = edgescale::log_gamma_variate(rng, concentration[j]);
        available[j] = next[present[j]] < pools[present[j]].size() ? 1 : 0;
      }
      double total = detail::relative_weights(log_q, available, weights);
      split[k].reserve(static_cast<std::size_t>(sizes[k]));
      for (Index i = 0; i < sizes[k]; ++i) {
        const std::size_t j = detail::categorical(weights, total, rng);
        const std::size_t c = present[j];
        split[k].push_back(pools[c][next[c]++]);
        if (next[c] == pools[c].size()) {  // exhausted: renormalise over the rest
          available[j] = 0;
          total = detail::relative_weights(log_q, available, weights);
        }
      }
      std::sort(split[k].begin(), split[k].end());
    }
    return split;
  }
};

/// Label skew per class (Yurochkin et al. 2019, "Bayesian nonparametric federated learning of
/// neural networks"; what Flower, FedLab and FedML call the Dirichlet partitioner): for each class
/// c, proportions p ~ Dir_K(alpha) cut c's shuffled samples at floor(cumsum(p) n_c). Client sizes
/// vary; a client may end with no samples unless min_size asks for more.
struct DirichletPerClass {
  double alpha = 0.5;       ///< concentration (> 0) of each class's Dir_K(alpha)
  bool balance = false;     ///< Flower's self_balancing: before cutting a class, clients already
                            ///< holding >= n/K samples get proportion 0 (the rest renormalised)
  Index min_size = 0;       ///< redraw the whole split until every client holds >= min_size samples
  int max_attempts = 1000;  ///< draws of the whole split before giving up on min_size

  [[nodiscard]] Partition partition(std::span<const std::int32_t> labels, Index classes,
                                    Index clients, Rng& rng) const {
    detail::check_partition_arguments("DirichletPerClass", labels, classes, clients);
    detail::check_alpha("DirichletPerClass", alpha);
    const auto n = static_cast<Index>(labels.size());
    if (min_size < 0 || min_size > n / clients) {
      throw argument_error("fed::DirichletPerClass: min_size must be in [0, n/K] = [0, " +
                           std::to_string(n / clients) + "], got " + std::to_string(min_size));
    }
    if (max_attempts < 1) {
      throw argument_error("fed::DirichletPerClass: max_attempts must be at least 1, got " +
                           std::to_string(max_attempts));
    }
    auto pools = detail::class_pools(labels, classes);
    const auto K = static_cast<std::size_t>(clients);
    const double fair_share = static_cast<double>(n) / static_cast<double>(clients);
    std::vector<double> log_p(K);
    std::vector<char> open(K);
    std::vector<double> p(K);
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
      Partition split(K);
      for (auto& pool : pools) {
        if (pool.empty()) {  // a class absent from the labels: nothing to cut
          continue;
        }
        edgescale::shuffle(pool, rng);
        for (std::size_t k = 0; k < K; ++k) {
          log_p[k] = edgescale::log_gamma_variate(rng, alpha);
          // At least one client is below n/K while samples remain, so some client stays open.
          open[k] = !balance || static_cast<double>(split[k].size()) < fair_share ? 1 : 0;
        }
        const double total = detail::relative_weights(log_p, open, p);
        const auto n_c = static_cast<double>(pool.size());
        double cumulative = 0.0;
        std::size_t from = 0;
        for (std::size_t k = 0; k < K; ++k) {
          cumulative += p[k] / total;
          const std::size_t to =
              k + 1 == K ? pool.size()
                         : std::min(pool.size(), static_cast<std::size_t>(cumulative * n_c));
          if (to > from) {
            split[k].insert(split[k].end(), pool.begin() + static_cast<std::ptrdiff_t>(from),
                            pool.begin() + static_cast<std::ptrdiff_t>(to));
            from = to;
          }
        }
      }
      const bool large_enough = std::all_of(split.begin(), split.end(), [&](const auto& c) {
        return static_cast<Index>(c.size()) >= min_size;
      });
      if (large_enough) {
        for (auto& c : split) {
          std::sort(c.begin(), c.end());
        }
        return split;
      }
    }
    throw argument_error("fed::DirichletPerClass: no split in " + std::to_string(max_attempts) +
                         " draws gave every one of " + std::to_string(clients) +
                         " clients at least min_size = " + std::to_string(min_size) +
                         " samples (alpha = " + std::to_string(alpha) + ", n = " +
                         std::to_string(n) + "); lower min_size, raise alpha or set balance");
  }
};

/// Pathological label skew (McMahan et al. 2017, "Communication-efficient learning of deep
/// networks from decentralized data"): the samples sorted by label (ties by index) are cut
/// into K s shards of equal size (differing by at most 1), and each client gets s random shards.
/// With s = 2 and classes a multiple of the shard size, a client holds at most 2 classes.
struct Shards {
  Index shards_per_client = 2;  ///< s >= 1

  [[nodiscard]] Partition partition(std::span<const std::int32_t> labels, Index classes,
                                    Index clients, Rng& rng) const {
    detail::check_partition_arguments("Shards", labels, classes, clients);
    const auto n = static_cast<Index>(labels.size());
    if (shards_per_client < 1 || shards_per_client > n / clients) {
      throw argument_error("fed::Shards: shards_per_client must be in [1, n/K] = [1, " +
                           std::to_string(n / clients) +
                           "] (a shard holds a sample at least), got " +
                           std::to_string(shards_per_client));
    }
    std::vector<Index> by_label(labels.size());
    std::iota(by_label.begin(), by_label.end(), Index{0});
    std::stable_sort(by_label.begin(), by_label.end(), [&](Index a, Index b) {
      return labels[static_cast<std::size_t>(a)] < labels[static_cast<std::size_t>(b)];
    });
    const Index shards = clients * shards_per_client;
    std::vector<Index> shard_order = detail::shuffled_indices(shards, rng);
    // Shard t covers by_label[t n / S, (t + 1) n / S).
    const auto shard_begin = [&](Index t) { return t * n / shards; };
    Partition split(static_cast<std::size_t>(clients));
    for (Index k = 0; k < clients; ++k) {
      auto& mine = split[static_cast<std::size_t>(k)];
      for (Index j = 0; j < shards_per_client; ++j) {
        const Index t = shard_order[static_cast<std::size_t>(k * shards_per_client + j)];
        mine.insert(mine.end(), by_label.begin() + shard_begin(t),
                    by_label.begin() + shard_begin(t + 1));
      }
      std::sort(mine.begin(), mine.end());
    }
    return split;
  }
};

/// Quantity skew with IID labels: client sizes proportional to w_k = exp(sigma z_k), z_k ~ N(0, 1)
/// (log-normal), at least 1 sample each; the n - K samples beyond the first one per client are
/// shared by largest remainder, so the sizes sum to n. sigma = 0 is Iid's equal sizes.
struct QuantitySkew {
  double sigma = 1.0;  ///< standard deviation of the log sizes (>= 0)

  [[nodiscard]] Partition partition(std::span<const std::int32_t> labels, Index classes,
                                    Index clients, Rng& rng) const {
    detail::check_partition_arguments("QuantitySkew", labels, classes, clients);
    if (!(sigma >= 0.0) || !std::isfinite(sigma)) {
      throw argument_error("fed::QuantitySkew: sigma must be finite and >= 0, got " +
                           std::to_string(sigma));
    }
    const auto n = static_cast<Index>(labels.size());
    const auto K = static_cast<std::size_t>(clients);
    std::vector<double> log_w(K);
    for (double& l : log_w) {
      l = sigma * edgescale::standard_normal(rng);
    }
    const std::vector<char> all(K, 1);
    std::vector<double> w(K);
    const double total = detail::relative_weights(log_w, all, w);
    const Index spare = n - clients;
    std::vector<Index> sizes(K);
    std::vector<double> remainder(K);
    Index given = clients;
    for (std::size_t k = 0; k < K; ++k) {
      const double share = static_cast<double>(spare) * w[k] / total;
      const auto whole = std::min(spare, static_cast<Index>(share));
      sizes[k] = 1 + whole;
      remainder[k] = share - static_cast<double>(whole);
      given += whole;
    }
    std::vector<std::size_t> by_remainder(K);
    std::iota(by_remainder.begin(), by_remainder.end(), std::size_t{0});
    std::stable_sort(by_remainder.begin(), by_remainder.end(),
                     [&](std::size_t a, std::size_t b) { return remainder[a] > remainder[b]; });
    for (std::size_t j = 0; given < n; j = (j + 1) % K, ++given) {
      ++sizes[by_remainder[j]];
    }
    const std::vector<Index> order = detail::shuffled_indices(n, rng);
    return detail::cut(order, sizes);
  }
};

/// What a split gives each client: sizes and a K x C class histogram, with scalars to print.
struct PartitionSummary {
  Index clients = 0;
  Index classes = 0;
  std::vector<Index> sizes;          ///< sizes[k], samples of client k
  std::vector<Index> counts;         ///< counts[k * classes + c], samples of class c at client k
  std::vector<double> global_prior;  ///< class distribution of the whole labels span

  [[nodiscard]] Index count(Index client, Index cls) const {
    return counts[static_cast<std::size_t>(client * classes + cls)];
  }
  /// Size statistics over the clients (0 when there are none).
  [[nodiscard]] double mean_size() const {
    const Index total = std::accumulate(sizes.begin(), sizes.end(), Index{0});
    return clients == 0 ? 0.0 : static_cast<double>(total) / static_cast<double>(clients);
  }
  [[nodiscard]] Index min_size() const {
    return sizes.empty() ? 0 : *std::min_element(sizes.begin(), sizes.end());
  }
  [[nodiscard]] Index max_size() const {
    return sizes.empty() ? 0 : *std::max_element(sizes.begin(), sizes.end());
  }
  /// Classes present at a client (count > 0), averaged over the clients.
  [[nodiscard]] double mean_classes_per_client() const {
    const auto present = std::count_if(counts.begin(), counts.end(), [](Index c) { return c > 0; });
    return clients == 0 ? 0.0 : static_cast<double>(present) / static_cast<double>(clients);
  }
  /// Total-variation distance of client k's class distribution from the global one,
  /// (1/2) sum_c |counts(k, c) / size_k - p_c|, in [0, 1]; 0 for an empty client.
  [[nodiscard]] double tv_distance(Index client) const {
    const Index size = sizes[static_cast<std::size_t>(client)];
    if (size == 0) {
      return 0.0;
    }
    double sum = 0.0;
    for (Index c = 0; c < classes; ++c) {
      sum += std::abs(static_cast<double>(count(client, c)) / static_cast<double>(size) -
                      global_prior[static_cast<std::size_t>(c)]);
    }
    return 0.5 * sum;
  }
  /// tv_distance averaged over the non-empty clients: the heterogeneity of the split, near 0
  /// for IID (sampling noise only) and near 1 when each client holds one class of many.
  [[nodiscard]] double mean_tv_distance() const {
    double sum = 0.0;
    Index nonempty = 0;
    for (Index k = 0; k < clients; ++k) {
      if (sizes[static_cast<std::size_t>(k)] > 0) {
        sum += tv_distance(k);
        ++nonempty;
      }
    }
    return nonempty == 0 ? 0.0 : sum / static_cast<double>(nonempty);
  }
  /// One line per client: the header `client,size,c0,...,c{C-1}`, then the counts.
  void write_csv(std::ostream& out) const {
    out << "client,size";
    for (Index c = 0; c < classes; ++c) {
      out << ",c" << c;
    }
    out << '\n';
    for (Index k = 0; k < clients; ++k) {
      out << k << ',' << sizes[static_cast<std::size_t>(k)];
      for (Index c = 0; c < classes; ++c) {
        out << ',' << count(k, c);
      }
      out << '\n';
    }
  }
};

/// The class histogram of each client of `split` over `labels` (the dataset the split indexes).
inline PartitionSummary summarize(const Partition& split, std::span<const std::int32_t> labels,
                                  Index classes) {
  if (classes < 1) {
    throw argument_error("fed::summarize: expected at least 1 class, got " +
                         std::to_string(classes));
  }
  PartitionSummary s;
  s.clients = static_cast<Index>(split.size());
  s.classes = classes;
  s.sizes.assign(split.size(), 0);
  s.counts.assign(split.size() * static_cast<std::size_t>(classes), 0);
  s.global_prior.assign(static_cast<std::size_t>(classes), 0.0);
  const auto label_of = [&](Index i) {
    if (i < 0 || i >= static_cast<Index>(labels.size())) {
      throw argument_error("fed::summarize: sample index " + std::to_string(i) + " outside [0, " +
                           std::to_string(labels.size()) + ")");
    }
    const std::int32_t y = labels[static_cast<std::size_t>(i)];
    if (y < 0 || y >= classes) {
      throw argument_error("fed::summarize: label " + std::to_string(y) + " of sample " +
                           std::to_string(i) + " outside [0, " + std::to_string(classes) + ")");
    }
    return static_cast<Index>(y);
  };
  for (std::size_t i = 0; i < labels.size(); ++i) {
    s.global_prior[static_cast<std::size_t>(label_of(static_cast<Index>(i)))] += 1.0;
  }
  for (double& p : s.global_prior) {
    p /= static_cast<double>(std::max<std::size_t>(labels.size(), 1));
  }
  for (std::size_t k = 0; k < split.size(); ++k) {
    s.sizes[k] = static_cast<Index>(split[k].size());
    for (const Index i : split[k]) {
      ++s.counts[k * static_cast<std::size_t>(classes) + static_cast<std::size_t>(label_of(i))];
    }
  }
  return s;
}

}  // namespace edgescale::fed
