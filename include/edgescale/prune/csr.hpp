// edgescale/prune/csr.hpp — a pruned weight matrix in compressed sparse row form, and its products.
//
//   prune::CsrMatrix<float> w(300, 784, weight.value, weight.mask);   // (out, in) row-major
//   prune::csr_gemv(w, x, y, b);                  // y = b + W x            (one sample)
//   prune::csr_gemm(w, rows, ldb, n, c, ldc, b);  // C = b 1ᵀ + W B         (n values per row)
//
// CSR (row starts, column indices, values; int32 indices): row i's kept entries are
// values[row_start[i] .. row_start[i + 1]) at columns columns[...], in increasing column order.
// Built from a dense row-major matrix — PyTorch's (out, in) Linear weight, or a convolution's
// (Cout, Cin·K·K) — keeping the entries whose mask is nonzero and whose value is nonzero (a masked
// weight is zero anyway; an exact zero adds nothing).
//
// The two products, both hand-written (no Eigen::SparseMatrix: bench/bench_sparse.cpp measures
// both, docs/results/sparse.md):
// * csr_gemv, one sample: y[i] = b[i] + Σ_k W[i, k] x[k], a gather per kept weight. Four partial
//   sums per row hide the latency of the multiply-adds.
// * csr_gemm, a block of n values per input row: C[i, :] = b[i] + Σ_k W[i, k] B[k, :], where row k
//   of B is n contiguous values. Each kept weight is broadcast and multiplied into whole SIMD
//   vectors of its row of B: the arithmetic of a dense product, on the kept weights only. A
//   Dense batch (features x batch, column-major) is transposed into that form (row k = feature k
//   over the batch); a convolution's im2col matrix already is in it (row k = the input values
//   under kernel tap k, one per output pixel).
// Blocks of up to 8 SIMD vectors of C's row stay in registers while the row's kept weights
// stream past; the last block of a row overlaps the one before rather than being shorter.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace edgescale::prune {

/// A rows x cols matrix in compressed sparse row form (see the top of this file).
template <class T>
class CsrMatrix {
 public:
  using scalar_type = T;

  CsrMatrix() : row_start_(1, 0) {}

  /// From the dense rows x cols matrix `dense`, stored row-major, keeping the entries whose value
  /// is nonzero and, when `mask` is not empty (same size), whose mask entry is nonzero. Throws
  /// shape_error when a size disagrees, argument_error when an index would not fit in int32.
  CsrMatrix(Index rows, Index cols, std::span<const T> dense, std::span<const T> mask = {})
      : rows_(rows), cols_(cols) {
    if (rows < 0 || cols < 0 || static_cast<Index>(dense.size()) != rows * cols) {
      throw shape_error("CsrMatrix: " + std::to_string(dense.size()) + " values for a matrix of " +
                        std::to_string(rows) + " x " + std::to_string(cols));
    }
    if (!mask.empty() && mask.size() != dense.size()) {
      throw shape_error("CsrMatrix: the mask has " + std::to_string(mask.size()) +
                        " entries, the matrix " + std::to_string(dense.size()));
    }
    constexpr Index most = std::numeric_limits<std::int32_t>::max();
    if (cols > most) {
      throw argument_error("CsrMatrix: " + std::to_string(cols) +
                           " columns do not fit int32 indices");
    }
    row_start_.reserve(static_cast<std::size_t>(rows) + 1);
    row_start_.push_back(0);
    for (Index i = 0; i < rows; ++i) {
      for (Index j = 0; j < cols; ++j) {
        const Index at = i * cols + j;
        const T v = dense[static_cast<std::size_t>(at)];
        if (v != T(0) && (mask.empty() || mask[static_cast<std::size_t>(at)] != T(0))) {
          column_.push_back(static_cast<std::int32_t>(j));
          value_.push_back(v);
        }
      }
      if (static_cast<Index>(value_.size()) > most) {
        throw argument_error("CsrMatrix: more than int32-many kept entries");
      }
      row_start_.push_back(static_cast<std::int32_t>(value_.size()));
    }
  }

  [[nodiscard]] Index rows() const { return rows_; }
  [[nodiscard]] Index cols() const { return cols_; }
  /// Kept entries.
  [[nodiscard]] Index nonzeros() const { return static_cast<Index>(value_.size()); }
  /// Kept entries over rows x cols (1 for an empty matrix).
  [[nodiscard]] double density() const {
    const Index size = rows_ * cols_;
    return size == 0 ? 1.0 : static_cast<double>(nonzeros()) / static_cast<double>(size);
  }
  /// rows + 1 offsets into columns() and values().
  [[nodiscard]] std::span<const std::int32_t> row_starts() const { return row_start_; }
  [[nodiscard]] std::span<const std::int32_t> columns() const { return column_; }
  [[nodiscard]] std::span<const T> values() const { return value_; }

  /// The columns that hold a kept entry, in increasing order; renumbers the matrix's columns to
  /// their positions in that list (cols() becomes its length). A convolution then unfolds only
  /// the kernel taps some output channel still uses.
  std::vector<std::int32_t> drop_empty_columns() {
    std::vector<std::int32_t> position(static_cast<std::size_t>(cols_), -1);
    for (const std::int32_t j : column_) {
      position[static_cast<std::size_t>(j)] = 0;
    }
    std::vector<std::int32_t> used;
    for (Index j = 0; j < cols_; ++j) {
      if (position[static_cast<std::size_t>(j)] == 0) {
        position[static_cast<std::size_t>(j)] = static_cast<std::int32_t>(used.size());
        used.push_back(static_cast<std::int32_t>(j));
      }
    }
    for (std::int32_t& j : column_) {
      j = position[static_cast<std::size_t>(j)];
    }
    cols_ = static_cast<Index>(used.size());
    return used;
  }

 private:
  Index rows_ = 0;
  Index cols_ = 0;
  std::vector<std::int32_t> row_start_;
  std::vector<std::int32_t> column_;
  std::vector<T> value_;
};

namespace detail {

template <class T>
inline constexpr int csr_lanes = Eigen::internal::packet_traits<T>::size;

/// C[i, j0 .. j0 + W·lanes) = b[i] + Σ_k W[i, k] B[k, j0 ..) for one row: the accumulators stay in
/// registers while the row's kept entries stream past. With fewer than 8 vectors, two sets of
/// accumulators take alternate entries, so consecutive multiply-adds do not wait on each other
/// (4-cycle latency, 2 per cycle on Zen 3).
template <class T, int W>
EIGEN_DONT_INLINE void csr_row_block(const std::int32_t* column, const T* value, Index count,
                                     const T* b, Index ldb, T bias, T* c) {
  using Block = Eigen::Array<T, W * csr_lanes<T>, 1>;
  Block acc = Block::Constant(bias);
  Index k = 0;
  if constexpr (W < 8) {
    Block other = Block::Zero();
    for (; k + 1 < count; k += 2) {
      acc += value[k] * Eigen::Map<const Block>(b + Index{column[k]} * ldb);
      other += value[k + 1] * Eigen::Map<const Block>(b + Index{column[k + 1]} * ldb);
    }
    acc += other;
  }
  for (; k < count; ++k) {
    acc += value[k] * Eigen::Map<const Block>(b + Index{column[k]} * ldb);
  }
  Eigen::Map<Block> target(c);
  target = acc;
}

}  // namespace detail

// g++ 12 -O3 vectorises csr_gemv's loop with vgatherdps, permutes and an in-order chain of
// scalar adds (it may not reorder the sum): 2.7 cycles per kept weight on Zen 3, against about one
// for the scalar loop. Not vectorising it is the fast form on every x86 target.
#if defined(__GNUC__) && !defined(__clang__)
#define EDGESCALE_SCALAR_LOOPS __attribute__((optimize("no-tree-vectorize")))
#else
#define EDGESCALE_SCALAR_LOOPS
#endif

/// y = b + A x for one vector x of a.cols() values, y of a.rows() (b may be null: zero). No size
/// checks: the layers (prune/sparse.hpp) call it with sizes fixed by their types.
template <class T>
EIGEN_DONT_INLINE EDGESCALE_SCALAR_LOOPS void csr_gemv(const CsrMatrix<T>& a, const T* x, T* y,
                                                       const T* b) {
  const std::int32_t* start = a.row_starts().data();
  const std::int32_t* column = a.columns().data();
  const T* value = a.values().data();
  for (Index i = 0; i < a.rows(); ++i) {
    // Four partial sums: the adds of one row do not wait on each other.
    T s0(0), s1(0), s2(0), s3(0);
    Index k = start[i];
    const Index end = start[i + 1];
    for (; k + 3 < end; k += 4) {
      s0 += value[k] * x[column[k]];
      s1 += value[k + 1] * x[column[k + 1]];
      s2 += value[k + 2] * x[column[k + 2]];
      s3 += value[k + 3] * x[column[k + 3]];
    }
    for (; k < end; ++k) {
      s0 += value[k] * x[column[k]];
    }
    y[i] = (b != nullptr ? b[i] : T(0)) + ((s0 + s1) + (s2 + s3));
  }
}

/// C = b 1ᵀ + A B: row k of B is n contiguous values starting at rows + k·ldb, row i of C is n
/// values starting at c + i·ldc (b may be null: zero). Overwrites C. No size checks (as csr_gemv).
template <class T>
EIGEN_DONT_INLINE void csr_gemm(const CsrMatrix<T>& a, const T* rows, Index ldb, Index n, T* c,
                                Index ldc, const T* b) {
  constexpr Index lanes = detail::csr_lanes<T>;
  const std::int32_t* start = a.row_starts().data();
  const std::int32_t* column = a.columns().data();
  const T* value = a.values().data();
  for (Index i = 0; i < a.rows(); ++i) {
    const std::int32_t* ci = column + start[i];
    const T* vi = value + start[i];
    const Index count = start[i + 1] - start[i];
    const T bias = b != nullptr ? b[i] : T(0);
    T* out = c + i * ldc;
    if (n < lanes) {  // fewer values than one vector: scalar, the row's entries read once
      T acc[lanes];
      std::fill_n(acc, lanes, bias);
      for (Index k = 0; k < count; ++k) {
        const T* row = rows + Index{ci[k]} * ldb;
        for (Index j = 0; j < n; ++j) {
          acc[j] += vi[k] * row[j];
        }
      }
      std::copy_n(acc, n, out);
      continue;
    }
    Index j = 0;
    for (; j + 8 * lanes <= n; j += 8 * lanes) {
      detail::csr_row_block<T, 8>(ci, vi, count, rows + j, ldb, bias, out + j);
    }
    if (j + 4 * lanes <= n) {
      detail::csr_row_block<T, 4>(ci, vi, count, rows + j, ldb, bias, out + j);
      j += 4 * lanes;
    }
    if (j + 2 * lanes <= n) {
      detail::csr_row_block<T, 2>(ci, vi, count, rows + j, ldb, bias, out + j);
      j += 2 * lanes;
    }
    if (j + lanes <= n) {
      detail::csr_row_block<T, 1>(ci, vi, count, rows + j, ldb, bias, out + j);
      j += lanes;
    }
    if (j < n) {  // the last values: one vector ending at n, overlapping (the same values again)
      detail::csr_row_block<T, 1>(ci, vi, count, rows + (n - lanes), ldb, bias, out + (n - lanes));
    }
  }
}

}  // namespace edgescale::prune

#undef EDGESCALE_SCALAR_LOOPS
