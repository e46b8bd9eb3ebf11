// edgescale/nn/detail/gemm.hpp — the matrix products every layer is made of.
//
// C += op(A)·op(B) on column-major views, for op(A)·op(B) in {A·B, Aᵀ·B, A·Bᵀ}, and the rank-1
// update C += a·bᵀ. Every layer calls these instead of writing Eigen products inline, for compile
// time: each Eigen product expression instantiates GEMM, GEMV and small-size kernels, and inlined
// into every layer type those are optimised again per layer. Here they are instantiated and
// compiled once per scalar type (three forms and the rank-1 update, `+=` only — Eigen's `=` is
// setZero plus `+=` anyway), and a layer of a new size costs almost nothing to compile
// (docs/results/nn.md, "Compile cost").
#pragma once

#include <edgescale/core/tensor.hpp>

namespace edgescale::nn::detail {

/// C += A·B.
template <class T>
EIGEN_DONT_INLINE void gemm_nn(const ConstBatchView<T>& a, const ConstBatchView<T>& b,
                               BatchView<T> c) {
  c.noalias() += a * b;
}

/// C += Aᵀ·B.
template <class T>
EIGEN_DONT_INLINE void gemm_tn(const ConstBatchView<T>& a, const ConstBatchView<T>& b,
                               BatchView<T> c) {
  c.noalias() += a.transpose() * b;
}

/// C += A·Bᵀ.
template <class T>
EIGEN_DONT_INLINE void gemm_nt(const ConstBatchView<T>& a, const ConstBatchView<T>& b,
                               BatchView<T> c) {
  c.noalias() += a * b.transpose();
}

/// C += a·bᵀ for column vectors a and b: the rank-1 update of a one-sample weight gradient. Eigen
/// runs gemm_nt at inner dimension 1 as a blocked GEMM that packs both operands; this streams C
/// once, column by column. Written as column updates rather than the product a * b.transpose():
/// Eigen's outer-product evaluator made compiling examples/train.cpp take about 7 MB more memory
/// (g++ 12 -O2) for at most 2 % more speed.
template <class T>
EIGEN_DONT_INLINE void ger(const Eigen::Map<const Vector<T>>& a,
                           const Eigen::Map<const Vector<T>>& b, BatchView<T> c) {
  for (Index j = 0; j < c.cols(); ++j) {
    c.col(j) += b[j] * a;
  }
}

/// C = a bᵀ: the rank-1 product written, C not read (nn/overwrite.hpp).
template <class T>
EIGEN_DONT_INLINE void outer(const Eigen::Map<const Vector<T>>& a,
                             const Eigen::Map<const Vector<T>>& b, BatchView<T> c) {
  for (Index j = 0; j < c.cols(); ++j) {
    c.col(j) = b[j] * a;
  }
}

}  // namespace edgescale::nn::detail
