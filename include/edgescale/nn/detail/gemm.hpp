// edgescale/nn/detail/gemm.hpp — the three matrix products every layer is made of.
//
// C += op(A)·op(B) on column-major views, for op(A)·op(B) in {A·B, Aᵀ·B, A·Bᵀ}. Every layer calls
// these instead of writing Eigen products inline, for compile time: each Eigen product
// expression instantiates GEMM, GEMV and small-size kernels, and inlined into every layer type
// those are optimised again per layer. Here they are instantiated and compiled once per scalar
// type (three forms, `+=` only — Eigen's `=` is setZero plus `+=` anyway), and a layer of a new
// size costs almost nothing to compile (docs/results/nn.md, "Compile cost").
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

}  // namespace edgescale::nn::detail
