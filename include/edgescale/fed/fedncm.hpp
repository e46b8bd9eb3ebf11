// edgescale/fed/fedncm.hpp — FedNCM, a federated nearest-class-mean head (Legate et al., "Guiding
// the last layer in federated learning with pre-trained models", NeurIPS 2023).
//
//   fed::FedNcm<float> strategy(pool.sample_size(), pool.classes);
//   auto worker = strategy.make_worker();
//   fed::Stateless none;
//   fed::NcmStatistics s = strategy.client_update(worker, client, none, rng);  // Σψ, n per class
//   strategy.server_update(received, info);          // global sums and counts
//   const Matrix<double>& head = strategy.head();    // d x C, column c = μ_c / ‖μ_c‖
//   double accuracy = strategy.evaluate(test);       // argmax_c ⟨μ_c / ‖μ_c‖, ψ(x)⟩
//
// Each client sends, per class, the sum of its features ψ(x) (d x C, double) and the count
// (C integers); the server adds them, so the global class means μ_c = Σ_k s_kc / Σ_k n_kc are
// exact for any partition and client order. The head is the unit-norm means (a class no client
// has seen, or whose mean is 0, gets a zero column); a sample is assigned the seen class of
// largest cosine similarity, which is the largest ⟨μ_c/‖μ_c‖, ψ⟩ since ‖ψ‖ is the same for every
// class.
// The paper then fine-tunes from this head (FedNCM+FT), as FED3R+FT does from fed3r.hpp's.
// bytes_up: d·C sums and C counts, 8 bytes each; nothing is broadcast.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/fed/client.hpp>
#include <edgescale/fed/detail/diagnostics.hpp>
#include <edgescale/fed/reduce.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace edgescale::fed {

/// Per-class feature sums and sample counts.
struct NcmStatistics {
  Matrix<double> sums;        ///< d x C: column c sums ψ(x) over the samples of class c
  std::vector<Index> counts;  ///< C: samples of each class

  NcmStatistics() = default;
  /// Zeros for d features and C classes.
  NcmStatistics(Index features, Index classes)
      : sums(Matrix<double>::Zero(features, classes)),
        counts(static_cast<std::size_t>(classes), 0) {}
};

/// Why `s` cannot be the statistics of d = `features` features and C = `classes` classes (wrong
/// shape, a NaN or infinite sum, a negative count, a sum without samples); empty if it can.
[[nodiscard]] inline std::string ncm_statistics_problem(const NcmStatistics& s, Index features,
                                                        Index classes) {
  if (s.sums.rows() != features || s.sums.cols() != classes ||
      static_cast<Index>(s.counts.size()) != classes) {
    return "shape: sums are " + std::to_string(s.sums.rows()) + "x" +
           std::to_string(s.sums.cols()) + " with " + std::to_string(s.counts.size()) +
           " counts, expected " + std::to_string(features) + "x" + std::to_string(classes) +
           " with " + std::to_string(classes) + " counts";
  }
  if (std::string bad = detail::first_non_finite(s.sums, "sums"); !bad.empty()) {
    return bad;
  }
  for (Index c = 0; c < classes; ++c) {
    const Index count = s.counts[static_cast<std::size_t>(c)];
    if (count < 0) {
      return "count: class " + std::to_string(c) + " has a negative count of samples, " +
             std::to_string(count);
    }
    if (count == 0 && !s.sums.col(c).isZero(0.0)) {
      return "count: class " + std::to_string(c) + " has 0 samples but a nonzero feature sum";
    }
  }
  return {};
}

/// The per-thread scratch of FedNCM's client procedure: none is needed.
struct FedNcmWorker {};

/// FedNCM as a federated strategy (fed::Strategy): clients' data are features ψ(x).
template <std::floating_point T>
class FedNcm {
 public:
  using scalar_type = T;
  using update_type = NcmStatistics;
  using client_state = Stateless;
  using worker_type = FedNcmWorker;

  /// Throws argument_error for features < 1 or classes < 1.
  FedNcm(Index features, Index classes)
      : features_(checked_features(features, classes)),
        classes_(classes),
        statistics_(features, classes) {}

  [[nodiscard]] worker_type make_worker() const { return {}; }

  /// The client's per-class sums (in double) and counts. Throws argument_error for a client
  /// without data or an index outside it, shape_error for samples of the wrong size or a label
  /// outside [0, classes).
  [[nodiscard]] NcmStatistics client_update(worker_type& /*worker*/, const ClientData<T>& client,
                                            Stateless& /*state*/, Rng& /*rng*/) const {
    const data::Dataset<T>& pool = client.checked_data(features_, "fedncm");
    NcmStatistics s(features_, classes_);
    for (const Index i : client.indices) {
      const std::int32_t y = pool.labels[static_cast<std::size_t>(i)];
      if (y < 0 || y >= classes_) {
        throw shape_error("fedncm: client " + std::to_string(client.id) + ": label " +
                          std::to_string(y) + " of sample " + std::to_string(i) +
                          " is outside [0, " + std::to_string(classes_) + ")");
      }
      s.sums.col(y) += pool.features.col(i).template cast<double>();
      ++s.counts[static_cast<std::size_t>(y)];
    }
    return s;
  }

  /// Empty if `u` can be a client's statistics for this strategy, else why not.
  [[nodiscard]] std::string check(const NcmStatistics& u) const {
    return ncm_statistics_problem(u, features_, classes_);
  }

  /// Adds the received sums and counts (fed/reduce.hpp's fixed order: the same bits on any
  /// number of ranks). Throws shape_error for a wrong shape (accumulate), changing nothing.
  void server_update(std::span<const Received<NcmStatistics>> received, const RoundInfo& info) {
    apply(reduce_received(*this, received, info.clients), info);
  }

  /// Values of the round's sum (fed::Reducible): d·C sums, then C counts.
  [[nodiscard]] Index reduction_size() const { return features_ * classes_ + classes_; }
  /// Adds one client's sums and counts to `sum`. Throws shape_error for statistics of another
  /// d or C (before anything is added).
  void accumulate(std::span<double> sum, const NcmStatistics& u, Index /*samples*/) const {
    require_reduction_size(sum.size(), reduction_size(), "fedncm");
    if (u.sums.rows() != features_ || u.sums.cols() != classes_ ||
        static_cast<Index>(u.counts.size()) != classes_) {
      throw shape_error("fedncm: an update of " + std::to_string(u.sums.rows()) + " x " +
                        std::to_string(u.sums.cols()) + " sums and " +
                        std::to_string(u.counts.size()) + " counts, expected " +
                        std::to_string(features_) + " x " + std::to_string(classes_) + " and " +
                        std::to_string(classes_));
    }
    const Index dc = features_ * classes_;
    Eigen::Map<Vector<double>>(sum.data(), dc) += u.sums.reshaped();
    for (Index c = 0; c < classes_; ++c) {
      sum[static_cast<std::size_t>(dc + c)] +=
          static_cast<double>(u.counts[static_cast<std::size_t>(c)]);
    }
  }
  /// Adds a round's sum to the global statistics.
  void apply(std::span<const double> sum, const RoundInfo& /*info*/) {
    require_reduction_size(sum.size(), reduction_size(), "fedncm");
    const Index dc = features_ * classes_;
    statistics_.sums.reshaped() += Eigen::Map<const Vector<double>>(sum.data(), dc);
    for (Index c = 0; c < classes_; ++c) {
      statistics_.counts[static_cast<std::size_t>(c)] +=
          static_cast<Index>(sum[static_cast<std::size_t>(dc + c)]);
    }
    fresh_ = false;
  }

  /// The server state (fed::Checkpointable): the global sums and counts in the layout of a
  /// round's sum.
  [[nodiscard]] std::vector<double> server_state() const {
    std::vector<double> out(static_cast<std::size_t>(reduction_size()), 0.0);
    accumulate(std::span<double>(out), statistics_, 0);
    return out;
  }
  /// Replaces the global sums and counts; throws argument_error for values of another length or
  /// statistics FedNCM's checks refuse, leaving them unchanged.
  void load_server_state(std::span<const double> values) {
    require_reduction_size(values.size(), reduction_size(), "fedncm");
    FedNcm loaded(features_, classes_);
    loaded.apply(values, {});
    if (std::string why = ncm_statistics_problem(loaded.statistics_, features_, classes_);
        !why.empty()) {
      throw argument_error("fedncm: the server state is not statistics: " + why);
    }
    statistics_ = std::move(loaded.statistics_);
    fresh_ = false;
  }

  /// d·C sums and C counts, 8 bytes each.
  [[nodiscard]] std::size_t bytes_up(const NcmStatistics& u) const {
    return static_cast<std::size_t>(u.sums.size()) * sizeof(double) +
           u.counts.size() * sizeof(std::int64_t);
  }
  /// Nothing is broadcast.
  [[nodiscard]] std::size_t bytes_down() const { return 0; }

  /// d x C: column c = μ_c / ‖μ_c‖ with μ_c the global mean of class c; zero for a class without
  /// samples (or with a zero mean). Recomputed when the statistics changed.
  [[nodiscard]] const Matrix<double>& head() {
    if (!fresh_) {
      head_.resize(features_, classes_);
      for (Index c = 0; c < classes_; ++c) {
        const Index count = statistics_.counts[static_cast<std::size_t>(c)];
        if (count <= 0) {
          head_.col(c).setZero();
          continue;
        }
        const Vector<double> mean = statistics_.sums.col(c) / static_cast<double>(count);
        const double norm = mean.norm();
        head_.col(c) = norm > 0 ? Vector<double>(mean / norm) : Vector<double>::Zero(features_);
      }
      fresh_ = true;
    }
    return head_;
  }

  /// Accuracy of argmax_c ⟨head_c, ψ(x)⟩ (the nearest normalised class mean by cosine) on
  /// `test`, over the classes some client has samples of; ties go to the lower class. Throws
  /// shape_error for samples of another size, argument_error for an empty test set.
  [[nodiscard]] double evaluate(const data::Dataset<T>& test) {
    detail::require_test_set(test, features_, "fedncm");
    const Matrix<double>& h = head();
    Vector<double> scores(classes_);
    Index correct = 0;
    for (Index i = 0; i < test.size(); ++i) {
      scores.noalias() = h.transpose() * test.features.col(i).template cast<double>();
      for (Index c = 0; c < classes_; ++c) {
        if (statistics_.counts[static_cast<std::size_t>(c)] <= 0) {
          scores(c) = -std::numeric_limits<double>::infinity();  // never seen: never predicted
        }
      }
      Index predicted = 0;
      scores.maxCoeff(&predicted);
      correct += predicted == test.labels[static_cast<std::size_t>(i)] ? 1 : 0;
    }
    return static_cast<double>(correct) / static_cast<double>(test.size());
  }

  /// The server's global per-class sums and counts.
  [[nodiscard]] const NcmStatistics& statistics() const { return statistics_; }
  [[nodiscard]] Index features() const { return features_; }
  [[nodiscard]] Index classes() const { return classes_; }

 private:
  static Index checked_features(Index features, Index classes) {
    if (features < 1 || classes < 1) {
      throw argument_error("fedncm: need at least one feature and one class, got " +
                           std::to_string(features) + " features and " + std::to_string(classes) +
                           " classes");
    }
    return features;
  }

  Index features_;
  Index classes_;
  NcmStatistics statistics_;
  Matrix<double> head_;
  bool fresh_ = false;
};

}  // namespace edgescale::fed
