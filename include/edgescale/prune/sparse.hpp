// edgescale/prune/sparse.hpp — inference of a pruned network from compressed (CSR) weights where
// that is faster than the dense kernels.
//
//   prune::apply_masks(net, masks);                       // a pruned network (prune/mask.hpp)
//   auto fast = prune::compile_sparse(net);               // its inference-only twin
//   auto y = fast.forward(x);                             // = net.forward(x), to rounding
//   for (const auto& l : prune::sparse_plan(fast)) ...    // which layer runs which kernel
//   prune::compile_sparse(net, {.dense_single = 0.05, .dense_batched = 0.3, .conv = 0.05});
//
// compile_sparse returns `sparse_network_t<Net>`: Net with every Dense and Conv2D spec (inside
// Residual bodies too) wrapped in `Sparse<Spec>` (nn/transform.hpp), the tensors copied by name
// with the masks applied, in evaluation mode. Each wrapped layer holds the dense layer and, when
// its density (kept nonzero weights over all weights) is at most the crossover density of a batch
// regime, the weight as a CsrMatrix (prune/csr.hpp); forward runs
//   Dense, batch 1      y = b + W x by csr_gemv (per sample below batched_from, one SIMD vector
//                       of samples)                              if density <= dense_single
//   Dense, larger batch Y = b 1ᵀ + W X by csr_gemm on the transposed batch (row k = feature k
//                       over the batch)                          if density <= dense_batched
//   Conv2D, any batch   Y_n = b 1ᵀ + Wc col_n by csr_gemm per sample, col_n the im2col rows of
//                       the kernel taps some output channel keeps if density <= conv
// and the dense layer's own forward otherwise. The choice is made from the density and the batch
// size, never by timing at run time: the crossovers are measured once by bench/bench_sparse.cpp
// (docs/results/sparse.md names the CPU) and given as a `Crossover`, which users override for
// their machine. A layer is fixed when compiled: after changing the weights, call prepare_sparse.
//
// Why in prune and not nn: a compressed weight exists only because of a mask (nn knows masks but
// no pruning), and it is inference only — no backward, no training; nn stays as it is.
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/nn/transform.hpp>
#include <edgescale/prune/csr.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace edgescale::prune {

/// The densities at or below which a layer runs from CSR, per batch regime.
struct Crossover {
  double dense_single = 0.0;   ///< Dense layers at batch 1 (and batches below one SIMD vector)
  double dense_batched = 0.0;  ///< Dense layers at batches of one SIMD vector (8 floats) or more
  double conv = 0.0;           ///< Conv2D layers, any batch (computed sample by sample)
};

/// Measured by bench/bench_sparse.cpp on LeNet-300-100's three Dense layers (batch 1 and 32) and
/// LeNet-5's two convolutions: AMD EPYC Zen 3 (AVX2 + FMA), g++ 12 -O3 -march=native, float, one
/// core (docs/results/sparse.md). Each is the lowest, over the layers of its kind and two runs, of
/// the density at which CSR and dense take the same time (interpolated between benchmarked
/// densities), rounded down to a whole per cent: 9.3 %, 59.3 % and 9.9 % there.
inline constexpr Crossover measured_crossover{
    .dense_single = 0.09, .dense_batched = 0.59, .conv = 0.09};

/// Throws argument_error unless every crossover is a number in [0, 1].
inline void check_crossover(const Crossover& c) {
  for (const double d : {c.dense_single, c.dense_batched, c.conv}) {
    if (!(d >= 0.0 && d <= 1.0)) {  // NaN fails too
      throw argument_error("prune::Crossover: densities must be in [0, 1], got " +
                           std::to_string(d));
    }
  }
}

/// How a layer computes its forward pass.
enum class SparseKernel { dense, csr };

/// The picking rule: CSR when the layer's density is at most the crossover of its regime.
constexpr SparseKernel pick_kernel(double density, double crossover) {
  return density <= crossover ? SparseKernel::csr : SparseKernel::dense;
}

namespace detail {

/// Kept nonzero weights of a (masked) weight tensor over its size.
template <class T>
double kept_density(const Parameter<T>& w) {
  if (w.size() == 0) {
    return 1.0;
  }
  const Index kept = w.masked() ? ((w.value.array() != T(0)) && (w.mask.array() != T(0))).count()
                                : (w.value.array() != T(0)).count();
  return static_cast<double>(kept) / static_cast<double>(w.size());
}

/// A masked weight tensor as the rows x cols CSR matrix of its (row-major) values.
template <class T>
CsrMatrix<T> csr_of(const Parameter<T>& w, Index rows, Index cols) {
  const std::span<const T> mask(w.mask.data(), static_cast<std::size_t>(w.mask.size()));
  return CsrMatrix<T>(rows, cols,
                      std::span<const T>(w.value.data(), static_cast<std::size_t>(w.value.size())),
                      mask);
}

inline void fail_backward(const char* layer) {
  throw error(std::string(layer) +
              " is inference-only (prune::compile_sparse): train the dense network instead");
}

}  // namespace detail

/// A Dense layer for inference from CSR or dense weights (see the top of this file). Tensors:
/// the dense layer's, "weight" {Out, In} and, with Bias, "bias" {Out}.
template <class T, int In, int Out, bool Bias>
class SparseDenseLayer {
 public:
  using scalar_type = T;
  using dense_layer = nn::DenseLayer<T, In, Out, Bias>;
  using input_shape = typename dense_layer::input_shape;
  using output_shape = typename dense_layer::output_shape;
  static constexpr bool has_bias = Bias;

  /// Masks the weights and picks the kernels for the weights as they are now.
  void prepare(const Crossover& crossover) {
    Parameter<T>& w = dense_.parameters()[0];
    w.apply_mask();
    density_ = detail::kept_density(w);
    single_ = pick_kernel(density_, crossover.dense_single);
    batched_ = pick_kernel(density_, crossover.dense_batched);
    csr_ = single_ == SparseKernel::csr || batched_ == SparseKernel::csr
               ? detail::csr_of(w, Out, In)
               : CsrMatrix<T>();
  }

  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    if (x.rows() != In) {
      throw shape_error("SparseDense: the input has " + std::to_string(x.rows()) +
                        " rows per sample, the layer expects " + std::to_string(In));
    }
    const Index batch = x.cols();
    if (kernel(batch) == SparseKernel::dense) {
      return dense_.forward(x);
    }
    const T* b = nullptr;
    if constexpr (Bias) {
      b = dense_.parameters()[1].value.data();
    }
    auto y = out_.resize(Out, batch);
    if (batch < batched_from) {
      for (Index n = 0; n < batch; ++n) {
        csr_gemv(csr_, x.col(n).data(), y.col(n).data(), b);
      }
    } else {
      // Xᵀ, batch x In column-major: row k of the In x batch row-major matrix is feature k.
      auto xt = xt_.resize(batch, In);
      xt.noalias() = x.transpose();
      auto ct = ct_.resize(batch, Out);
      csr_gemm(csr_, xt.data(), batch, batch, ct.data(), batch, b);
      y.noalias() = ct.transpose();
    }
    return out_.cview();
  }

  ConstBatchView<T> backward(const ConstBatchView<T>& /*dy*/) {
    detail::fail_backward("SparseDense");
    return out_.cview();
  }

  std::span<Parameter<T>> parameters() { return dense_.parameters(); }
  std::span<const Parameter<T>> parameters() const { return dense_.parameters(); }

  /// The batch size from which the CSR path multiplies the whole batch at once (csr_gemm, one
  /// SIMD vector of samples: 8 floats with AVX2); smaller batches run csr_gemv sample by sample,
  /// at the cost of batch 1 per sample, and take the crossover of batch 1.
  static constexpr Index batched_from = detail::csr_lanes<T>;

  /// The kernel forward runs at this batch size.
  [[nodiscard]] SparseKernel kernel(Index batch) const {
    return batch < batched_from ? single_ : batched_;
  }
  /// Kept nonzero weights over all weights, when prepared.
  [[nodiscard]] double density() const { return density_; }
  /// The CSR weight (empty unless some regime runs it).
  [[nodiscard]] const CsrMatrix<T>& csr() const { return csr_; }

  template <class F>
  void for_each_workspace(F&& f) {
    dense_.for_each_workspace(f);
    f(out_);
    f(xt_);
    f(ct_);
  }

 private:
  dense_layer dense_;
  CsrMatrix<T> csr_;
  double density_ = 1.0;
  SparseKernel single_ = SparseKernel::dense;
  SparseKernel batched_ = SparseKernel::dense;
  Workspace<T> out_;
  Workspace<T> xt_;  // the batch transposed
  Workspace<T> ct_;  // the output transposed
};

/// A Conv2D layer for inference from CSR or dense weights (see the top of this file). Tensors:
/// the convolution's, "weight" {Cout, Cin, K, K} and, with Bias, "bias" {Cout}.
template <class T, ImageShape In, int Cout, int K, int S, int P, bool Bias>
class SparseConv2DLayer {
 public:
  using scalar_type = T;
  using dense_layer = nn::Conv2DLayer<T, In, Cout, K, S, P, Bias>;
  using input_shape = In;
  using output_shape = typename dense_layer::output_shape;
  static constexpr bool has_bias = Bias;

  /// Masks the weights and picks the kernel for the weights as they are now.
  void prepare(const Crossover& crossover) {
    Parameter<T>& w = dense_.parameters()[0];
    w.apply_mask();
    density_ = detail::kept_density(w);
    kernel_ = pick_kernel(density_, crossover.conv);
    csr_ = CsrMatrix<T>();
    taps_.clear();
    if (kernel_ == SparseKernel::csr) {
      csr_ = detail::csr_of(w, Cout, patch_size);
      taps_ = csr_.drop_empty_columns();
    }
  }

  ConstBatchView<T> forward(const ConstBatchView<T>& x) {
    if (x.rows() != In::size) {
      throw shape_error("SparseConv2D: the input has " + std::to_string(x.rows()) +
                        " rows per sample, the layer expects " + std::to_string(In::size));
    }
    if (kernel_ == SparseKernel::dense) {
      return dense_.forward(x);
    }
    const T* b = nullptr;
    if constexpr (Bias) {
      b = dense_.parameters()[1].value.data();
    }
    const Index batch = x.cols();
    auto y = out_.resize(output_shape::size, batch);
    const auto taps = static_cast<Index>(taps_.size());
    T* col = col_.resize(std::max<Index>(taps * pixels, 1), 1).data();
    for (Index n = 0; n < batch; ++n) {
      unfold(x.col(n).data(), col);
      csr_gemm(csr_, col, pixels, pixels, y.col(n).data(), pixels, b);
    }
    return out_.cview();
  }

  ConstBatchView<T> backward(const ConstBatchView<T>& /*dy*/) {
    detail::fail_backward("SparseConv2D");
    return out_.cview();
  }

  std::span<Parameter<T>> parameters() { return dense_.parameters(); }
  std::span<const Parameter<T>> parameters() const { return dense_.parameters(); }

  /// The kernel forward runs (the same at every batch size).
  [[nodiscard]] SparseKernel kernel(Index /*batch*/ = 1) const { return kernel_; }
  [[nodiscard]] double density() const { return density_; }
  /// The CSR weight, (Cout x used taps), empty unless it runs.
  [[nodiscard]] const CsrMatrix<T>& csr() const { return csr_; }
  /// The kernel taps (c·K·K + ky·K + kx) the CSR weight's columns stand for.
  [[nodiscard]] std::span<const std::int32_t> taps() const { return taps_; }

  template <class F>
  void for_each_workspace(F&& f) {
    dense_.for_each_workspace(f);
    f(out_);
    f(col_);
  }

 private:
  static constexpr int in_height = In::dims[1];
  static constexpr int in_width = In::dims[2];
  static constexpr int out_height = dense_layer::out_height;
  static constexpr int out_width = dense_layer::out_width;
  static constexpr Index pixels = dense_layer::pixels;
  static constexpr Index patch_size = dense_layer::patch_size;

  /// The im2col rows of the used taps: row u holds x[c, oy·S − P + ky, ox·S − P + kx] for every
  /// output pixel (oy, ox), tap u = (c, ky, kx), zero outside the image. Row-major, so a row of
  /// Wout values is a copy (stride 1) of part of an input row, between zeros.
  void unfold(const T* x, T* col) const {
    for (std::size_t u = 0; u < taps_.size(); ++u) {
      const int tap = taps_[u];
      const int c = tap / (K * K);
      const int ky = tap / K % K;
      const int kx = tap % K;
      // The output columns whose input column ox·S − P + kx lies in [0, W).
      const int first = kx >= P ? 0 : (P - kx + S - 1) / S;
      const int last_input = in_width - 1 + P - kx;  // ox·S <= this
      const int end = last_input < 0 ? 0 : std::min(out_width, last_input / S + 1);
      T* row = col + static_cast<Index>(u) * pixels;
      for (int oy = 0; oy < out_height; ++oy) {
        T* out = row + Index{oy} * out_width;
        const int iy = oy * S - P + ky;
        if (iy < 0 || iy >= in_height || first >= end) {
          std::fill_n(out, out_width, T(0));
          continue;
        }
        const T* in = x + (Index{c} * in_height + iy) * in_width - P + kx;
        std::fill_n(out, first, T(0));
        for (int ox = first; ox < end; ++ox) {
          out[ox] = in[ox * S];
        }
        std::fill_n(out + end, out_width - end, T(0));
      }
    }
  }

  dense_layer dense_;
  CsrMatrix<T> csr_;
  std::vector<std::int32_t> taps_;
  double density_ = 1.0;
  SparseKernel kernel_ = SparseKernel::dense;
  Workspace<T> out_;
  Workspace<T> col_;  // the used im2col rows of one sample
};

namespace detail {

/// The sparse layer of a dense layer type.
template <class L>
struct sparse_layer;
template <class T, int In, int Out, bool Bias>
struct sparse_layer<nn::DenseLayer<T, In, Out, Bias>> {
  using type = SparseDenseLayer<T, In, Out, Bias>;
};
template <class T, ImageShape In, int Cout, int K, int S, int P, bool Bias>
struct sparse_layer<nn::Conv2DLayer<T, In, Cout, K, S, P, Bias>> {
  using type = SparseConv2DLayer<T, In, Cout, K, S, P, Bias>;
};

/// A spec that fixes its input shape (Dense does, Conv2D does not).
template <class Spec>
concept SpecWithInputShape = requires {
  typename Spec::input_shape;
};

template <class Spec>
struct spec_input {};
template <SpecWithInputShape Spec>
struct spec_input<Spec> {
  using input_shape = typename Spec::input_shape;
};

}  // namespace detail

/// The inference layer of a dense layer type: SparseDenseLayer for an nn::DenseLayer,
/// SparseConv2DLayer for an nn::Conv2DLayer (same parameters).
template <class L>
using sparse_layer_t = typename detail::sparse_layer<L>::type;

/// Layer spec: Spec (a Dense or Conv2D spec) run for inference by SparseDenseLayer or
/// SparseConv2DLayer; accepts what Spec accepts.
template <class Spec>
struct Sparse : detail::spec_input<Spec> {
  template <StaticShape S>
  static constexpr bool accepts = Spec::template accepts<S>;
  template <class T, StaticShape S>
  using layer = sparse_layer_t<typename Spec::template layer<T, S>>;
};

namespace detail {

/// The spec rewrite of compile_sparse: Dense and Conv2D wrapped in Sparse, the rest unchanged.
template <class Spec>
struct sparsify {
  using type = Spec;
};
template <int I, int O, class... Options>
struct sparsify<nn::Dense<I, O, Options...>> {
  using type = Sparse<nn::Dense<I, O, Options...>>;
};
template <int Cin, int Cout, int K, class... Options>
struct sparsify<nn::Conv2D<Cin, Cout, K, Options...>> {
  using type = Sparse<nn::Conv2D<Cin, Cout, K, Options...>>;
};

template <class L>
inline constexpr bool is_sparse_layer_v = false;
template <class T, int In, int Out, bool Bias>
inline constexpr bool is_sparse_layer_v<SparseDenseLayer<T, In, Out, Bias>> = true;
template <class T, ImageShape In, int Cout, int K, int S, int P, bool Bias>
inline constexpr bool is_sparse_layer_v<SparseConv2DLayer<T, In, Cout, K, S, P, Bias>> = true;

}  // namespace detail

/// Whether L is a SparseDenseLayer or SparseConv2DLayer, for layer visitors.
template <class L>
inline constexpr bool is_sparse_layer_v = detail::is_sparse_layer_v<L>;

/// Net with every Dense and Conv2D spec wrapped in Sparse: what compile_sparse returns.
template <class Net>
using sparse_network_t = nn::transform_specs_t<Net, detail::sparsify>;

/// Picks every sparse layer's kernels again from its current weights (after they were changed).
/// Throws argument_error for a crossover outside [0, 1].
template <class Net>
void prepare_sparse(Net& net, const Crossover& crossover = measured_crossover) {
  check_crossover(crossover);
  nn::for_each_layer(net, [&](std::string_view /*path*/, auto& layer) {
    if constexpr (is_sparse_layer_v<std::remove_cvref_t<decltype(layer)>>) {
      layer.prepare(crossover);
    }
  });
}

/// The inference-only twin of a pruned network (see the top of this file): the same tensors by
/// name, masks applied, evaluation mode, each Dense and Conv2D running from CSR where its
/// density is at most the crossover of its regime. Throws argument_error for a crossover outside
/// [0, 1].
template <nn::Network Net>
sparse_network_t<Net> compile_sparse(const Net& net,
                                     const Crossover& crossover = measured_crossover) {
  check_crossover(crossover);
  sparse_network_t<Net> sparse;
  copy_tensors(net, sparse);
  sparse.set_training(false);
  prepare_sparse(sparse, crossover);
  return sparse;
}

/// One sparse layer's density and kernels.
struct LayerKernels {
  std::string layer;  ///< its path ("0", "2.body.1")
  double density = 1.0;
  SparseKernel single = SparseKernel::dense;   ///< at batch 1 (and below batched_from)
  SparseKernel batched = SparseKernel::dense;  ///< at large batches
};

/// What each sparse layer of a compiled network runs, in layer order.
template <class Net>
std::vector<LayerKernels> sparse_plan(const Net& net) {
  std::vector<LayerKernels> plan;
  nn::for_each_layer(net, [&](std::string_view path, const auto& layer) {
    if constexpr (is_sparse_layer_v<std::remove_cvref_t<decltype(layer)>>) {
      plan.push_back({std::string(path), layer.density(), layer.kernel(1),
                      layer.kernel(std::numeric_limits<Index>::max())});
    }
  });
  return plan;
}

}  // namespace edgescale::prune
