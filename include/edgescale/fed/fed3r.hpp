// edgescale/fed/fed3r.hpp — FED3R, federated recursive ridge regression (Fanì, Camoriano, Caputo,
// Ciccone, ICML 2024), with its random-feature variant FED3R-RF and the FED3R+FT hand-off.
//
//   fed::Fed3r<float> strategy(pool.sample_size(), pool.classes);      // λ = 0.01, A packed
//   const fed::RandomFeatureOptions map{.features = 5000, .sigma = 1.0, .seed = 7};
//   fed::Fed3r<float> rf(pool.sample_size(), pool.classes, {.random_features = map});  // -RF
//   // what a round does (fed/simulate.hpp runs it for every sampled client):
//   auto worker = strategy.make_worker();
//   fed::Stateless none;
//   fed::RidgeStatistics s = strategy.client_update(worker, client, none, rng);   // A_k, b_k, n_k
//   if (strategy.check(s).empty()) { /* accepted */ }
//   strategy.server_update(received, info);          // A += Σ A_k, b += Σ b_k (in double)
//   double accuracy = strategy.evaluate(test);       // W = (A + λI)⁻¹ b, argmax_c (Wᵀφ)_c
//   auto head = fed::classifier_from_ridge<float>(strategy.weights());   // FED3R+FT
//
// The method (DESIGN §3). A frozen extractor gives features ψ(x) ∈ R^d; φ(x) = [ψ(x); 1] appends
// a constant 1 for the bias (last row), D = d + 1. Client k sends its sufficient statistics
//   A_k = Σ_i φ_i φ_iᵀ (D x D, symmetric),  b_k = Σ_i φ_i e_{y_i}ᵀ (D x C),  n_k,
// and the server solves ridge regression on the pooled data in closed form:
//   W = (λI + Σ_k A_k)⁻¹ Σ_k b_k,  by Cholesky (A + λI is symmetric positive definite for λ > 0).
// A sum is order-free, so W equals centralized ridge regression for every partition and every
// client order (up to rounding): the classifier is immune to client drift and heterogeneity. The
// official setting regularises the bias row too (λI over all of D) and normalises no feature.
// Every statistic is held in double whatever the data's scalar: A sums n outer products, and its
// Cholesky factor loses digits with the condition number.
//
// Recursive statistics: a client whose extractor changes (FED3R+FT fine-tunes it) sends the
// difference between its statistics under the new extractor and what it sent before
// (Fed3rClientMemory), so the server's running A and b stay the sum of every client's statistics
// under its current extractor, without a client ever resending all of them.
//
// Wire accounting (bytes_up): what a client actually sends, 8 bytes for n plus the values of A and
// b in the wire scalar — double by default, float with Fed3rOptions::wire = WireScalar::float32
// (the client then rounds its statistics to float, so the server aggregates what would arrive). A
// is symmetric, so by default only its lower triangle travels (pack_lower: D(D+1)/2 values instead
// of D², ~20 % fewer bytes for the paper's D and C). The paper's figure, 4·(D² + D·C), is
// bytes_up − 8 with {.packed = false, .wire = WireScalar::float32}.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/fed/client.hpp>
#include <edgescale/fed/detail/diagnostics.hpp>
#include <edgescale/fed/random_features.hpp>
#include <edgescale/fed/reduce.hpp>

#include <Eigen/Cholesky>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace edgescale::fed {

namespace detail {

/// Copies the lower triangle of a square matrix onto its upper one, in 64 x 64 tiles so both the
/// reads and the writes stay in cache (a row-by-row copy strides through all of A).
inline void mirror_lower_triangle(Matrix<double>& a) {
  constexpr Index tile = 64;
  const Index n = a.rows();
  for (Index j0 = 0; j0 < n; j0 += tile) {
    const Index nj = std::min(tile, n - j0);
    for (Index j = j0; j < j0 + nj; ++j) {  // the diagonal tile
      const Index rest = j0 + nj - j - 1;
      a.block(j, j + 1, 1, rest) = a.block(j + 1, j, rest, 1).transpose();
    }
    for (Index i0 = j0 + nj; i0 < n; i0 += tile) {  // the tiles below it, to the right of it
      const Index ni = std::min(tile, n - i0);
      a.block(j0, i0, nj, ni) = a.block(i0, j0, ni, nj).transpose();
    }
  }
}

}  // namespace detail

/// The sufficient statistics of ridge regression on φ = [ψ; 1]: A = Σ φφᵀ, b = Σ φ e_yᵀ, n.
///
///     fed::RidgeStatistics s(d, C);                 // zeros: A is (d+1) x (d+1), b (d+1) x C
///     s.accumulate(features, labels);                // features d x m (one sample per column)
///     s += other;  s -= last;                        // aggregation, deltas
///     std::vector<double> wire = s.pack_lower();     // A's lower triangle, then b
///
/// Always double, whatever the features' scalar. Both triangles of A are stored (the solver and
/// the arithmetic want a plain matrix); the bias is the last row and column.
struct RidgeStatistics {
  Matrix<double> A;  ///< D x D, Σ φφᵀ (symmetric; A(D−1, D−1) = n)
  Matrix<double> b;  ///< D x C, Σ φ e_yᵀ (column c sums the φ of class c; b's last row counts)
  Index n = 0;       ///< samples summed (a delta's may be 0 or negative)

  /// Columns per symmetric rank update: the scratch holds D x 256 doubles (10 MB at D = 5001).
  static constexpr Index default_block_columns = 256;

  RidgeStatistics() = default;
  /// Zeros for d features (D = d + 1 with the bias) and C classes.
  RidgeStatistics(Index features, Index classes) {
    if (features < 0 || classes < 1) {
      throw argument_error("ridge statistics: need features >= 0 and classes >= 1, got " +
                           std::to_string(features) + " features and " + std::to_string(classes) +
                           " classes");
    }
    A = Matrix<double>::Zero(features + 1, features + 1);
    b = Matrix<double>::Zero(features + 1, classes);
  }

  /// D = d + 1, the dimension with the bias.
  [[nodiscard]] Index dim() const { return A.rows(); }
  /// d, the features without the bias.
  [[nodiscard]] Index features() const { return std::max<Index>(A.rows() - 1, 0); }
  [[nodiscard]] Index classes() const { return b.cols(); }

  /// Adds the samples `x` (d x m, one per column, any floating scalar) with labels in [0, C):
  /// A += Φ Φᵀ by symmetric rank-k updates of the lower triangle (Eigen's SYRK kernel, half the
  /// FLOPs of a GEMM: m·D·(D+1)), `block_columns` samples at a time so the scratch Φ stays D x
  /// block_columns, then the upper triangle mirrored once; b by adding each φ to its class's
  /// column (a scatter, not a GEMM with a one-hot matrix). Throws shape_error for a wrong
  /// feature count, label count or a label outside [0, C), leaving the statistics unchanged.
  template <class Derived>
  void accumulate(const Eigen::MatrixBase<Derived>& x, std::span<const std::int32_t> labels,
                  Workspace<double>& scratch, Index block_columns = default_block_columns) {
    const Index d = features();
    const Index m = x.cols();
    if (A.rows() == 0 || x.rows() != d) {
      throw shape_error("ridge statistics: samples of " + std::to_string(x.rows()) +
                        " features, expected " + std::to_string(d) +
                        (A.rows() == 0 ? " (the statistics were never sized)" : ""));
    }
    if (static_cast<Index>(labels.size()) != m) {
      throw shape_error("ridge statistics: " + std::to_string(m) + " samples but " +
                        std::to_string(labels.size()) + " labels");
    }
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] < 0 || labels[i] >= classes()) {
        throw shape_error("ridge statistics: label " + std::to_string(labels[i]) + " of sample " +
                          std::to_string(i) + " is outside [0, " + std::to_string(classes()) + ")");
      }
    }
    if (block_columns < 1) {
      throw argument_error("ridge statistics: block_columns must be at least 1, got " +
                           std::to_string(block_columns));
    }
    for (Index begin = 0; begin < m; begin += block_columns) {
      const Index k = std::min(block_columns, m - begin);
      BatchView<double> phi = scratch.resize(d + 1, k);
      phi.topRows(d) = x.middleCols(begin, k).template cast<double>();
      phi.row(d).setOnes();  // φ = [ψ; 1]
      A.selfadjointView<Eigen::Lower>().rankUpdate(phi);
      for (Index j = 0; j < k; ++j) {
        b.col(labels[static_cast<std::size_t>(begin + j)]) += phi.col(j);
      }
    }
    n += m;
    detail::mirror_lower_triangle(A);
  }

  /// accumulate with a scratch of its own (allocated for this call).
  template <class Derived>
  void accumulate(const Eigen::MatrixBase<Derived>& x, std::span<const std::int32_t> labels) {
    Workspace<double> scratch;
    accumulate(x, labels, scratch);
  }

  /// Sums statistics (aggregation). Throws shape_error unless both have the same D and C.
  RidgeStatistics& operator+=(const RidgeStatistics& other) {
    require_same_shape(other, "add");
    A += other.A;
    b += other.b;
    n += other.n;
    return *this;
  }
  /// Subtracts statistics (a client's delta). Throws shape_error unless the shapes agree.
  RidgeStatistics& operator-=(const RidgeStatistics& other) {
    require_same_shape(other, "subtract");
    A -= other.A;
    b -= other.b;
    n -= other.n;
    return *this;
  }
  friend RidgeStatistics operator+(RidgeStatistics x, const RidgeStatistics& y) { return x += y; }
  friend RidgeStatistics operator-(RidgeStatistics x, const RidgeStatistics& y) { return x -= y; }

  /// Values on the wire with A packed: D(D+1)/2 + D·C.
  [[nodiscard]] static Index packed_size(Index features, Index classes) {
    const Index D = features + 1;
    return D * (D + 1) / 2 + D * classes;
  }

  /// A's lower triangle, column by column (A(0,0), A(1,0), ..., A(D−1,0), A(1,1), ...), then b
  /// column-major: packed_size(d, C) values (n travels beside them).
  [[nodiscard]] std::vector<double> pack_lower() const {
    const Index D = dim();
    std::vector<double> out(static_cast<std::size_t>(packed_size(features(), classes())));
    auto it = out.begin();
    for (Index j = 0; j < D; ++j) {
      it = std::copy(A.col(j).data() + j, A.col(j).data() + D, it);
    }
    std::copy(b.data(), b.data() + b.size(), it);
    return out;
  }

  /// The statistics pack_lower wrote (A mirrored from its lower triangle). Throws shape_error
  /// unless `packed` holds packed_size(features, classes) values.
  [[nodiscard]] static RidgeStatistics unpack_lower(std::span<const double> packed, Index features,
                                                    Index classes, Index n) {
    RidgeStatistics s(features, classes);
    if (static_cast<Index>(packed.size()) != packed_size(features, classes)) {
      throw shape_error(
          "ridge statistics: " + std::to_string(packed.size()) + " packed values, expected " +
          std::to_string(packed_size(features, classes)) + " for " + std::to_string(features) +
          " features and " + std::to_string(classes) + " classes");
    }
    const Index D = s.dim();
    auto it = packed.begin();
    for (Index j = 0; j < D; ++j) {
      std::copy(it, it + (D - j), s.A.col(j).data() + j);
      it += D - j;
    }
    std::copy(it, packed.end(), s.b.data());
    detail::mirror_lower_triangle(s.A);
    s.n = n;
    return s;
  }

  /// Throws shape_error (naming `what`: "add", "subtract") unless `other` has this D and C.
  void require_same_shape(const RidgeStatistics& other, const char* what) const {
    if (other.A.rows() != A.rows() || other.A.cols() != A.cols() || other.b.rows() != b.rows() ||
        other.b.cols() != b.cols()) {
      throw shape_error(std::string("ridge statistics: cannot ") + what + " statistics with A " +
                        detail::shape_text(other.A.rows(), other.A.cols()) + " and b " +
                        detail::shape_text(other.b.rows(), other.b.cols()) + " to A " +
                        detail::shape_text(A.rows(), A.cols()) + " and b " +
                        detail::shape_text(b.rows(), b.cols()));
    }
  }
};

/// What a set of statistics claims to be: a client's own (sums: counts and A's diagonal are
/// non-negative, A's bias row matches b) or a delta between two of them (only the identities that
/// survive subtraction hold).
enum class RidgeUpdateKind { statistics, delta };

/// Why `s` cannot be statistics of d = `features` features and C = `classes` classes; empty if it
/// can. What the update itself shows: shape; finiteness; symmetry of A; the counts — A's bias
/// entry A(D−1, D−1) = Σ 1 = n, b's bias row holds integer class counts summing to n — and, for
/// statistics, n ≥ 0, counts ≥ 0, A(j, j) ≥ 0 and A's bias row Σ_i φ_ij equal to b's row sums up
/// to rounding (|difference| ≤ 1e-5·√(n·A(j, j)), the Cauchy–Schwarz bound on Σ_i |φ_ij|).
[[nodiscard]] inline std::string ridge_statistics_problem(
    const RidgeStatistics& s, Index features, Index classes,
    RidgeUpdateKind kind = RidgeUpdateKind::statistics) {
  const Index D = features + 1;
  if (s.A.rows() != D || s.A.cols() != D || s.b.rows() != D || s.b.cols() != classes) {
    return "shape: A is " + detail::shape_text(s.A.rows(), s.A.cols()) + " and b is " +
           detail::shape_text(s.b.rows(), s.b.cols()) + ", expected A " + detail::shape_text(D, D) +
           " and b " + detail::shape_text(D, classes) + " (" + std::to_string(features) +
           " features + the bias, " + std::to_string(classes) + " classes)";
  }
  if (std::string bad = detail::first_non_finite(s.A, "A"); !bad.empty()) {
    return bad;
  }
  if (std::string bad = detail::first_non_finite(s.b, "b"); !bad.empty()) {
    return bad;
  }
  for (Index j = 0; j < D; ++j) {
    for (Index i = j + 1; i < D; ++i) {
      if (s.A(i, j) != s.A(j, i)) {
        return "A is not symmetric: " + detail::entry_text("A", i, j) + " = " +
               detail::number_text(s.A(i, j)) + " but " + detail::entry_text("A", j, i) + " = " +
               detail::number_text(s.A(j, i));
      }
    }
  }
  const bool statistics = kind == RidgeUpdateKind::statistics;
  const auto n = static_cast<double>(s.n);
  if (statistics && s.n < 0) {
    return "count: n = " + std::to_string(s.n) + " samples is negative";
  }
  const Index bias = D - 1;
  if (s.A(bias, bias) != n) {
    return "count: the bias entry " + detail::entry_text("A", bias, bias) + " = Σ 1 is " +
           detail::number_text(s.A(bias, bias)) + " but n = " + std::to_string(s.n);
  }
  double counted = 0.0;
  for (Index c = 0; c < classes; ++c) {
    const double count = s.b(bias, c);
    if (count != std::round(count) || (statistics && count < 0)) {
      return "count: " + detail::entry_text("b", bias, c) + " = " + detail::number_text(count) +
             " is not a sample count of class " + std::to_string(c);
    }
    counted += count;
  }
  if (counted != n) {
    return "count: b's bias row counts " + detail::number_text(counted) +
           " samples but n = " + std::to_string(s.n);
  }
  if (!statistics) {
    return {};
  }
  for (Index j = 0; j < features; ++j) {
    if (s.A(j, j) < 0) {
      return detail::entry_text("A", j, j) + " = " + detail::number_text(s.A(j, j)) +
             " is negative, not a sum of squares";
    }
    const double row_sum = s.b.row(j).sum();
    if (std::abs(row_sum - s.A(bias, j)) > 1e-5 * std::sqrt(n * s.A(j, j))) {
      return "A's bias row does not match b: " + detail::entry_text("A", bias, j) + " = " +
             detail::number_text(s.A(bias, j)) + " but row " + std::to_string(j) +
             " of b sums to " + detail::number_text(row_sum);
    }
  }
  return {};
}

/// W = (A + λI)⁻¹ b (D x C) by Cholesky (Eigen's LLT); the bias row is regularised like the others
/// (FED3R's official setting). Throws argument_error for λ < 0, shape_error for mismatched A and
/// b, and argument_error when A + λI is not (numerically) positive definite — λ = 0 on
/// rank-deficient statistics, for instance: a pivot of the factor below D·ε·max_i (A + λI)_ii
/// counts as a failure, so a singular system is reported rather than solved into noise.
[[nodiscard]] inline Matrix<double> solve_ridge(const Matrix<double>& A, const Matrix<double>& b,
                                                double lambda = 0.01) {
  if (!(lambda >= 0.0) || !std::isfinite(lambda)) {
    throw argument_error("ridge solve: lambda must be finite and >= 0, got " +
                         detail::number_text(lambda));
  }
  if (A.rows() != A.cols() || b.rows() != A.rows()) {
    throw shape_error("ridge solve: A is " + detail::shape_text(A.rows(), A.cols()) + " and b is " +
                      detail::shape_text(b.rows(), b.cols()) +
                      ", expected a square A with as many rows as b");
  }
  Matrix<double> M = A;
  M.diagonal().array() += lambda;
  const Eigen::LLT<Matrix<double>> llt(M);
  bool ok = llt.info() == Eigen::Success;
  if (ok && M.rows() > 0) {
    const double largest = M.diagonal().maxCoeff();
    const double smallest_pivot = llt.matrixLLT().diagonal().array().square().minCoeff();
    ok = smallest_pivot >
         static_cast<double>(M.rows()) * std::numeric_limits<double>::epsilon() * largest;
  }
  if (!ok) {
    throw argument_error("ridge solve: A + lambda I (lambda = " + detail::number_text(lambda) +
                         ") is not positive definite: the statistics are rank-deficient or "
                         "corrupt; use lambda > 0");
  }
  return llt.solve(b);
}

/// What a client sends its statistics in.
enum class WireScalar { float64, float32 };

/// FED3R's settings. The defaults are the paper's (λ = 0.01) and a lossless wire.
struct Fed3rOptions {
  double lambda = 0.01;                   ///< ridge regularisation, bias row included
  bool packed = true;                     ///< send A's lower triangle only (A is symmetric)
  WireScalar wire = WireScalar::float64;  ///< float32: statistics rounded to float on the wire
  /// FED3R-RF: map ψ through these random features (drawn from the broadcast seed) first.
  std::optional<RandomFeatureOptions> random_features = std::nullopt;
};

/// Bytes one client's statistics take on the wire: 8 for n plus the values of A (packed or full)
/// and b in the wire scalar.
[[nodiscard]] inline std::size_t ridge_statistics_bytes(Index features, Index classes, bool packed,
                                                        WireScalar wire) {
  const Index D = features + 1;
  const Index values =
      packed ? RidgeStatistics::packed_size(features, classes) : D * D + D * classes;
  const std::size_t scalar = wire == WireScalar::float32 ? sizeof(float) : sizeof(double);
  return sizeof(std::int64_t) + static_cast<std::size_t>(values) * scalar;
}

/// The per-thread scratch of FED3R's client procedure: a gathered batch, its random features and
/// the D x block Φ of the rank update (grow-only; copying a worker copies none of it).
template <std::floating_point T>
struct Fed3rWorker {
  Workspace<T> batch;
  Workspace<T> mapped;
  Workspace<double> phi;
  std::vector<std::int32_t> labels;
};

/// A client's memory for recursive statistics: what it sent last, so that after its extractor
/// changes it sends only delta = new − last (and the server's running sum becomes the sum of the
/// clients' statistics under their current extractors).
///
///     fed::Fed3rClientMemory memory;                 // one per client, kept across rounds
///     fed::RidgeStatistics up = memory.delta(stats);   // first time: stats itself
///     ... extractor fine-tuned, stats recomputed ...
///     up = memory.delta(stats);                        // stats − what was sent before
class Fed3rClientMemory {
 public:
  /// current − last sent (current itself the first time); current becomes the last sent. Throws
  /// shape_error when current's shape differs from what was sent before.
  [[nodiscard]] RidgeStatistics delta(const RidgeStatistics& current) {
    if (!sent_) {
      last_ = current;
      sent_ = true;
      return current;
    }
    RidgeStatistics d = current - last_;
    last_ = current;
    return d;
  }
  [[nodiscard]] bool has_sent() const { return sent_; }
  /// The statistics the server holds for this client (meaningful once has_sent()).
  [[nodiscard]] const RidgeStatistics& last_sent() const { return last_; }

 private:
  RidgeStatistics last_;
  bool sent_ = false;
};

/// FED3R+FT's initial head (DESIGN §3): a softmax layer of `features` inputs and `classes`
/// outputs whose row c is column c of W, bias included, scaled to unit length:
/// [weight_c, bias_c] = W(:, c) / ‖W(:, c)‖ (a zero column stays zero).
template <class T>
struct RidgeHead {
  Index features = 0;      ///< d, the head's inputs
  Index classes = 0;       ///< C, its outputs
  std::vector<T> weight;   ///< C x d row-major: PyTorch's nn.Linear.weight, nn::Dense's layout
  std::vector<T> bias;     ///< C
  double temperature = 0;  ///< the network divides its logits by this: (weight·ψ + bias) / T
};

/// The head FED3R+FT starts fine-tuning from: unit-norm class columns of W (D x C, bias last row),
/// written as an nn::Dense<d, C>'s "weight" (C x d row-major) and "bias". The temperature is not
/// folded in: the fine-tuned network divides its logits by it (T = 0.1 in the paper), which keeps
/// the head's parameters unit-norm while the softmax sees logits 1/T times larger — the same
/// logits as weights scaled by 1/T at the start, but not the same gradients while fine-tuning.
/// Throws argument_error for T ≤ 0 or W with fewer than 2 rows.
template <std::floating_point T>
[[nodiscard]] RidgeHead<T> classifier_from_ridge(const Matrix<double>& W,
                                                 double temperature = 0.1) {
  if (!(temperature > 0.0) || !std::isfinite(temperature)) {
    throw argument_error("classifier from ridge: the temperature must be positive, got " +
                         detail::number_text(temperature));
  }
  if (W.rows() < 2) {
    throw argument_error("classifier from ridge: W has " + std::to_string(W.rows()) +
                         " rows, expected d + 1 >= 2 (features and the bias row)");
  }
  RidgeHead<T> head;
  head.features = W.rows() - 1;
  head.classes = W.cols();
  head.temperature = temperature;
  head.weight.resize(static_cast<std::size_t>(head.features * head.classes));
  head.bias.resize(static_cast<std::size_t>(head.classes));
  for (Index c = 0; c < head.classes; ++c) {
    const double norm = W.col(c).norm();
    const double scale = norm > 0 ? 1.0 / norm : 0.0;
    for (Index j = 0; j < head.features; ++j) {
      head.weight[static_cast<std::size_t>(c * head.features + j)] =
          static_cast<T>(W(j, c) * scale);
    }
    head.bias[static_cast<std::size_t>(c)] = static_cast<T>(W(head.features, c) * scale);
  }
  return head;
}

/// FED3R as a federated strategy (fed::Strategy): each client sends its ridge statistics once,
/// the server sums them and solves for the classifier.
///
/// Clients' data are features ψ(x) (data::Dataset columns of `features` values); the strategy
/// appends the 1. With options.random_features, each client first maps ψ through the random
/// features drawn from the broadcast seed (FED3R-RF) and the ridge regression runs on those.
template <std::floating_point T>
class Fed3r {
 public:
  using scalar_type = T;
  using update_type = RidgeStatistics;
  using client_state = Stateless;
  using worker_type = Fed3rWorker<T>;

  /// Samples gathered, mapped and added per step of a client (and of evaluate).
  static constexpr Index batch_columns = 256;

  /// A strategy for clients holding `features` values per sample and labels in [0, classes).
  /// Throws argument_error for features < 1, classes < 1 or λ < 0.
  Fed3r(Index features, Index classes, Fed3rOptions options = {})
      : options_(options), input_features_(features), classes_(classes) {
    if (features < 1 || classes < 1) {
      throw argument_error("fed3r: need at least one feature and one class, got " +
                           std::to_string(features) + " features and " + std::to_string(classes) +
                           " classes");
    }
    if (!(options.lambda >= 0.0) || !std::isfinite(options.lambda)) {
      throw argument_error("fed3r: lambda must be finite and >= 0, got " +
                           detail::number_text(options.lambda));
    }
    if (options.random_features) {
      random_features_.emplace(features, *options.random_features);
    }
    statistics_ = RidgeStatistics(ridge_features(), classes);
  }

  [[nodiscard]] worker_type make_worker() const { return {}; }

  /// The client's statistics: its samples (ψ, or the random features of ψ) in blocks of
  /// batch_columns, accumulated in double; rounded to float when the wire is float32. Throws
  /// argument_error for a client without data or an index outside its dataset, shape_error for
  /// samples of the wrong size or labels outside [0, classes).
  [[nodiscard]] RidgeStatistics client_update(worker_type& worker, const ClientData<T>& client,
                                              Stateless& /*state*/, Rng& /*rng*/) const {
    const data::Dataset<T>& pool = client.checked_data(input_features_, "fed3r");
    RidgeStatistics s(ridge_features(), classes_);
    const Index m = client.size();
    for (Index begin = 0; begin < m; begin += batch_columns) {
      const Index k = std::min(batch_columns, m - begin);
      BatchView<T> x = worker.batch.resize(input_features_, k);
      worker.labels.resize(static_cast<std::size_t>(k));
      for (Index j = 0; j < k; ++j) {
        const Index i = client.indices[static_cast<std::size_t>(begin + j)];
        x.col(j) = pool.features.col(i);
        worker.labels[static_cast<std::size_t>(j)] = pool.labels[static_cast<std::size_t>(i)];
      }
      if (random_features_) {
        BatchView<T> z = worker.mapped.resize(ridge_features(), k);
        random_features_->map(worker.batch.cview(), z);
        s.accumulate(z, worker.labels, worker.phi);
      } else {
        s.accumulate(x, worker.labels, worker.phi);
      }
    }
    if (options_.wire == WireScalar::float32) {
      s.A = s.A.cast<float>().cast<double>();
      s.b = s.b.cast<float>().cast<double>();
    }
    return s;
  }

  /// Empty if `u` can be a client's statistics for this strategy, else why not (see
  /// ridge_statistics_problem).
  [[nodiscard]] std::string check(const RidgeStatistics& u) const {
    return ridge_statistics_problem(u, ridge_features(), classes_, RidgeUpdateKind::statistics);
  }

  /// Adds the received statistics (or deltas, for recursive statistics) to the running sums in
  /// fed/reduce.hpp's fixed order (the same bits on any number of ranks); W is re-solved when
  /// next needed. Throws shape_error for a wrong shape (accumulate), changing nothing.
  void server_update(std::span<const Received<RidgeStatistics>> received, const RoundInfo& info) {
    apply(reduce_received(*this, received, info.clients), info);
  }

  /// Values of the round's sum (fed::Reducible): A's lower triangle column by column, b, n.
  [[nodiscard]] Index reduction_size() const {
    return RidgeStatistics::packed_size(ridge_features(), classes_) + 1;
  }
  /// Adds one client's statistics to `sum` (A packed: the symmetric half is never sent).
  void accumulate(std::span<double> sum, const RidgeStatistics& u, Index /*samples*/) const {
    require_reduction_size(sum.size(), reduction_size(), "fed3r");
    statistics_.require_same_shape(u, "add");
    const Index D = u.dim();
    std::size_t k = 0;
    for (Index j = 0; j < D; ++j) {
      const double* column = u.A.col(j).data();
      for (Index i = j; i < D; ++i) {
        sum[k++] += column[i];
      }
    }
    const double* b = u.b.data();
    for (Index i = 0; i < u.b.size(); ++i) {
      sum[k++] += b[i];
    }
    sum[k] += static_cast<double>(u.n);
  }
  /// Adds a round's sum to the running statistics.
  void apply(std::span<const double> sum, const RoundInfo& /*info*/) {
    require_reduction_size(sum.size(), reduction_size(), "fed3r");
    const Index D = statistics_.dim();
    std::size_t k = 0;
    for (Index j = 0; j < D; ++j) {
      for (Index i = j; i < D; ++i) {
        statistics_.A(i, j) += sum[k];
        if (i != j) {
          statistics_.A(j, i) += sum[k];
        }
        ++k;
      }
    }
    double* b = statistics_.b.data();
    for (Index i = 0; i < statistics_.b.size(); ++i) {
      b[i] += sum[k++];
    }
    statistics_.n += static_cast<Index>(sum[k]);
    solved_ = false;
  }

  /// The server state (fed::Checkpointable): the running statistics in the layout of a round's
  /// sum (A's lower triangle, b, n).
  [[nodiscard]] std::vector<double> server_state() const {
    std::vector<double> out(static_cast<std::size_t>(reduction_size()), 0.0);
    accumulate(std::span<double>(out), statistics_, 0);
    return out;
  }
  /// Replaces the running statistics; throws argument_error for values of another length, a
  /// non-finite value or statistics FED3R's checks refuse, leaving them unchanged.
  void load_server_state(std::span<const double> values) {
    require_reduction_size(values.size(), reduction_size(), "fed3r");
    Fed3r loaded(input_features_, classes_, options_);
    loaded.apply(values, {});
    if (std::string why = ridge_statistics_problem(loaded.statistics_, ridge_features(), classes_,
                                                   RidgeUpdateKind::statistics);
        !why.empty()) {
      throw argument_error("fed3r: the server state is not statistics: " + why);
    }
    statistics_ = std::move(loaded.statistics_);
    solved_ = false;
  }

  /// Bytes of one client's statistics on the wire (see the top of this file).
  [[nodiscard]] std::size_t bytes_up(const RidgeStatistics& u) const {
    return ridge_statistics_bytes(u.features(), u.classes(), options_.packed, options_.wire);
  }
  /// Nothing is broadcast for FED3R; FED3R-RF broadcasts its 8-byte seed.
  [[nodiscard]] std::size_t bytes_down() const {
    return random_features_ ? sizeof(std::uint64_t) : 0;
  }

  /// Accuracy of argmax_c (Wᵀφ(x))_c on `test` (samples of `features` values, ψ as the clients
  /// hold them), solving for W first if the statistics changed. Ties go to the lower class.
  /// Throws shape_error for samples of another size, argument_error for an empty test set.
  [[nodiscard]] double evaluate(const data::Dataset<T>& test) {
    detail::require_test_set(test, input_features_, "fed3r");
    const Matrix<double>& W = weights();
    const Index d = ridge_features();
    Workspace<T> mapped;
    Matrix<double> scores;
    Index correct = 0;
    for (Index begin = 0; begin < test.size(); begin += batch_columns) {
      const Index k = std::min(batch_columns, test.size() - begin);
      const ConstBatchView<T> x(test.features.col(begin).data(), input_features_, k);
      if (random_features_) {
        random_features_->map(x, mapped.resize(d, k));
        scores.noalias() = W.topRows(d).transpose() * mapped.cview().template cast<double>();
      } else {
        scores.noalias() = W.topRows(d).transpose() * x.template cast<double>();
      }
      scores.colwise() += W.row(d).transpose();  // the bias: φ's last entry is 1
      for (Index j = 0; j < k; ++j) {
        Index predicted = 0;
        scores.col(j).maxCoeff(&predicted);
        correct += predicted == test.labels[static_cast<std::size_t>(begin + j)] ? 1 : 0;
      }
    }
    return static_cast<double>(correct) / static_cast<double>(test.size());
  }

  /// W = (A + λI)⁻¹ b, D x C (bias last row), solved now if the statistics changed since.
  [[nodiscard]] const Matrix<double>& weights() {
    if (!solved_) {
      weights_ = solve_ridge(statistics_.A, statistics_.b, options_.lambda);
      solved_ = true;
    }
    return weights_;
  }
  /// The server's running A, b and n (the sum of every accepted update).
  [[nodiscard]] const RidgeStatistics& statistics() const { return statistics_; }
  [[nodiscard]] const Fed3rOptions& options() const { return options_; }
  /// The random features of FED3R-RF, or nullptr.
  [[nodiscard]] const RandomFeatures<T>* random_features() const {
    return random_features_ ? &*random_features_ : nullptr;
  }
  /// Values per sample the clients hold (ψ).
  [[nodiscard]] Index input_features() const { return input_features_; }
  /// d of the regression: ψ's size, or the random features' D.
  [[nodiscard]] Index ridge_features() const {
    return random_features_ ? random_features_->output_size() : input_features_;
  }
  [[nodiscard]] Index classes() const { return classes_; }

 private:
  Fed3rOptions options_;
  Index input_features_;
  Index classes_;
  std::optional<RandomFeatures<T>> random_features_;
  RidgeStatistics statistics_;
  Matrix<double> weights_;
  bool solved_ = false;
};

}  // namespace edgescale::fed
