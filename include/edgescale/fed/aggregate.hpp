// edgescale/fed/aggregate.hpp — aggregation rules: client models or deltas in, one set out.
//
//   fed::WeightedMean{}.combine(sets, weights)     // FedAvg: Σ (n_k / Σn) x_k
//   fed::Median{}.combine(sets, weights)           // coordinate-wise median (Yin et al. 2018)
//   fed::TrimmedMean{.trim = 0.1}.combine(...)     // coordinate-wise β-trimmed mean (Yin et al.
//   2018) fed::Krum{.byzantine = 2}.combine(...)         // the set closest to its neighbours
//   (Blanchard et al. 2017)
//
// Pure functions of their inputs (as Flower keeps its aggregate.py apart from its strategies), so
// a strategy takes any of them as a template argument (fed::Aggregator, fed/concepts.hpp) and
// robust or secure aggregation reuses them. Sets must share one layout; the result has it.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace edgescale::fed {

namespace detail {

template <class T>
void require_sets(std::span<const ParameterSet<T>* const> sets, std::span<const double> weights,
                  const char* who) {
  if (sets.empty() || sets.size() != weights.size()) {
    throw argument_error(std::string(who) + ": " + std::to_string(sets.size()) + " sets and " +
                         std::to_string(weights.size()) + " weights (need as many, at least one)");
  }
  for (std::size_t k = 1; k < sets.size(); ++k) {
    sets[0]->check_compatible(*sets[k], who);
  }
}

}  // namespace detail

/// Σ w_k x_k / Σ w_k: FedAvg's average with the clients' sample counts as weights.
struct WeightedMean {
  template <class T>
  ParameterSet<T> combine(std::span<const ParameterSet<T>* const> sets,
                          std::span<const double> weights) const {
    return weighted_mean<T>(sets, weights);
  }
};

/// The coordinate-wise median (the mean of the two middle values for an even count); weights are
/// ignored: a robust rule counts clients, not samples.
struct Median {
  template <class T>
  ParameterSet<T> combine(std::span<const ParameterSet<T>* const> sets,
                          std::span<const double> weights) const {
    detail::require_sets(sets, weights, "Median");
    ParameterSet<T> out = sets[0]->zeros_like();
    std::vector<T> column(sets.size());
    const std::size_t half = sets.size() / 2;
    for (Index i = 0; i < out.size(); ++i) {
      for (std::size_t k = 0; k < sets.size(); ++k) {
        column[k] = sets[k]->values()[i];
      }
      std::nth_element(column.begin(), column.begin() + static_cast<std::ptrdiff_t>(half),
                       column.end());
      T m = column[half];
      if (sets.size() % 2 == 0) {
        m = (m + *std::max_element(column.begin(),
                                   column.begin() + static_cast<std::ptrdiff_t>(half))) /
            T(2);
      }
      out.values()[i] = m;
    }
    out.set_mask(sets[0]->mask());
    return out;
  }
};

/// The coordinate-wise mean after dropping the floor(trim·n) largest and smallest values of each
/// coordinate (trim in [0, 0.5)); weights are ignored.
struct TrimmedMean {
  double trim = 0.1;

  template <class T>
  ParameterSet<T> combine(std::span<const ParameterSet<T>* const> sets,
                          std::span<const double> weights) const {
    detail::require_sets(sets, weights, "TrimmedMean");
    if (!(trim >= 0.0 && trim < 0.5)) {
      throw argument_error("TrimmedMean: trim must be in [0, 0.5), got " + std::to_string(trim));
    }
    const auto cut = static_cast<std::size_t>(std::floor(trim * static_cast<double>(sets.size())));
    ParameterSet<T> out = sets[0]->zeros_like();
    std::vector<T> column(sets.size());
    for (Index i = 0; i < out.size(); ++i) {
      for (std::size_t k = 0; k < sets.size(); ++k) {
        column[k] = sets[k]->values()[i];
      }
      std::sort(column.begin(), column.end());
      double sum = 0;
      for (std::size_t k = cut; k < sets.size() - cut; ++k) {
        sum += static_cast<double>(column[k]);
      }
      out.values()[i] = static_cast<T>(sum / static_cast<double>(sets.size() - 2 * cut));
    }
    out.set_mask(sets[0]->mask());
    return out;
  }
};

/// Krum (Blanchard et al. 2017): the one set whose n − f − 2 nearest other sets are closest to
/// it in squared Euclidean distance, with f the number of Byzantine clients tolerated. Needs
/// n > 2f + 2; weights are ignored.
struct Krum {
  std::size_t byzantine = 1;

  template <class T>
  ParameterSet<T> combine(std::span<const ParameterSet<T>* const> sets,
                          std::span<const double> weights) const {
    detail::require_sets(sets, weights, "Krum");
    const std::size_t n = sets.size();
    if (n <= 2 * byzantine + 2) {
      throw argument_error("Krum: " + std::to_string(n) + " sets cannot tolerate " +
                           std::to_string(byzantine) + " Byzantine ones (need n > 2f + 2)");
    }
    std::vector<double> distances(n * n, 0.0);
    for (std::size_t a = 0; a < n; ++a) {
      for (std::size_t b = a + 1; b < n; ++b) {
        const double d =
            (sets[a]->values() - sets[b]->values()).template cast<double>().squaredNorm();
        distances[a * n + b] = d;
        distances[b * n + a] = d;
      }
    }
    const std::size_t neighbours = n - byzantine - 2;
    std::size_t best = 0;
    double best_score = std::numeric_limits<double>::infinity();
    std::vector<double> row(n - 1);
    for (std::size_t a = 0; a < n; ++a) {
      std::size_t j = 0;
      for (std::size_t b = 0; b < n; ++b) {
        if (b != a) {
          row[j++] = distances[a * n + b];
        }
      }
      std::partial_sort(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(neighbours),
                        row.end());
      double score = 0;
      for (std::size_t k = 0; k < neighbours; ++k) {
        score += row[k];
      }
      if (score < best_score) {  // ties: the first client in the given order
        best_score = score;
        best = a;
      }
    }
    return *sets[best];
  }
};

}  // namespace edgescale::fed
