// edgescale/nn/detail/direct_conv.hpp — direct convolution kernels for small layers: no im2col,
// no GEMM packing, one pass over registers of accumulators.
//
// Conv2DLayer (nn/conv2d.hpp) picks one at compile time from its shapes; both compute
//   y[o, oy, ox] = b[o] + Σ_{c, ky, kx} W[o, c, ky, kx] · xp[c, oy·S + ky, ox·S + kx]
// from the zero-padded sample xp of shape (Cin, H, W), W in PyTorch's (Cout, Cin, K, K) layout.
//
// * DirectRows (stride 1): vectorised along the output rows. With the padded sample flattened
//   (rows of `stride` values), output q = oy·stride + ox reads xp[q + c·plane + ky·stride + kx],
//   so one output channel is a sum of Cin·K·K shifted copies of the flattened sample, each
//   scaled by one weight: blocks of 8 to 12 SIMD vectors of consecutive q are accumulated in
//   registers, one weight broadcast per Cin·K·K step. The sample is first copied K times, copy
//   kx shifted by kx, so that every load is aligned (unaligned, half of them straddle two cache
//   lines, and the kernel is load-bound: LeNet-5's first convolution took 4.7 µs, 3.7 µs with
//   the copies). The q with ox >= Wout are computed and thrown away.
// * DirectChannels (any stride, output channels a multiple of the SIMD width): vectorised across
//   the output channels, like a GEMM whose left operand is read in place. A block of pixels keeps
//   its Cout accumulators in registers; each step broadcasts one input value per pixel and
//   multiplies it by the step's Cout weights (W transposed once per forward to (Cin·K·K) x Cout).
//
// Written with fixed-size Eigen arrays (their sizes are compile-time constants, so Eigen unrolls
// them into whole SIMD registers for any instruction set), no intrinsics. The accumulators stay
// in registers as long as a block needs no more than the machine has (checked with objdump for
// g++ 12 and clang++ 14, x86-64-v3). docs/results/nn.md, "Direct convolution", has the
// measurements behind the choice of kernel.
#pragma once

#include <edgescale/core/tensor.hpp>

#include <algorithm>
#include <cstring>
#include <utility>

namespace edgescale::nn::detail {

/// Values of T in one SIMD register of the target (1 without vectorisation).
template <class T>
inline constexpr int simd_lanes = Eigen::internal::packet_traits<T>::size;

/// SIMD registers of the target: 16 (SSE, AVX) or 32 (AVX-512).
inline constexpr int simd_registers = EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS;

/// Accumulator registers a kernel block fills at most: 12, as measured with 16 registers (the
/// others hold the operands). Not more with 32: g++ 12 then keeps them in memory, and Eigen
/// stops unrolling a fixed-size array of more than about 27 registers.
inline constexpr int simd_accumulators = 12;

/// The size of equal blocks covering `count` items (the last block ending at the last item,
/// overlapping the one before when the count is not a multiple): `count` itself when no more
/// than `most`, else the size in [least, most] that computes the fewest items, ties to the larger.
constexpr int block_size(Index count, int least, int most) {
  if (count <= most) {
    return static_cast<int>(count);
  }
  int best = most;
  Index best_total = (count + most - 1) / most * most;
  for (int size = most - 1; size >= least && size > 0; --size) {
    const Index total = (count + size - 1) / size * size;
    if (total < best_total) {
      best = size;
      best_total = total;
    }
  }
  return best;
}

/// How a convolution computes its forward pass.
enum class ConvKernel {
  gemm,      ///< im2col + GEMM (nn/detail/gemm.hpp)
  rows,      ///< DirectRows
  channels,  ///< DirectChannels
};

/// The forward kernel of a Cin -> Cout convolution with a K x K kernel and stride S over padded
/// samples of H x W (Conv2DLayer's choice, but for 1x1 convolutions with stride 1 and no padding,
/// which multiply the input itself). The SIMD width is taken as 32 bytes whatever the target, so
/// that a layer computes the same way on every x86-64 level.
/// * DirectChannels when Cout is 1 to 4 times that width (8 to 32 floats: with more, too few
///   pixels fit the registers) and W^T, read once per block of pixels, stays within 64 KiB;
/// * else DirectRows for stride 1 when the padded sample, read once per output channel, stays
///   within 128 KiB (a quarter of a 512 KiB L2);
/// * else im2col + GEMM, whose blocking suits large layers.
/// Measured (float, AVX2, g++ 12, batch 1; docs/results/nn.md, "Direct convolution"): each
/// direct kernel beat the GEMM wherever it is chosen, up to 2.1x, and the GEMM beat both for
/// Cout = 64; DirectRows still won at 166 KiB samples, DirectChannels tied at 147 KiB weights.
template <class T>
constexpr ConvKernel conv_kernel(int cin, int cout, int k, int s, int h, int w) {
  constexpr int width = sizeof(T) < 32 ? static_cast<int>(32 / sizeof(T)) : 1;
  const Index bytes = sizeof(T);
  if (cout % width == 0 && cout <= 4 * width && Index{cin} * k * k * cout * bytes <= 64 * 1024) {
    return ConvKernel::channels;
  }
  if (s == 1 && Index{cin} * h * w * bytes <= 128 * 1024) {
    return ConvKernel::rows;
  }
  return ConvKernel::gemm;
}

/// Stride-1 direct convolution vectorised along the flattened rows of the sample, from K
/// shifted copies of it (unfold) so that every load is aligned.
template <class T, int Cin, int Cout, int K, int InH, int InW, int P, bool Bias>
struct DirectRows {
  static constexpr int height = InH + 2 * P;  // the padded sample
  static constexpr int width = InW + 2 * P;
  static constexpr int out_height = height - K + 1;
  static constexpr int out_width = width - K + 1;
  static constexpr Index patch_size = Index{Cin} * K * K;
  static constexpr int lanes = simd_lanes<T>;
  /// Rows of the copies: the padded width rounded up to whole SIMD vectors.
  static constexpr Index stride = (width + lanes - 1) / lanes * lanes;
  static constexpr Index plane = Index{height} * stride;
  /// Outputs computed per channel: every q = oy·stride + ox up to the last valid one, rounded
  /// up to whole SIMD vectors; the last block reads that many values (less `span`) past the
  /// sample, which reach only outputs thrown away.
  static constexpr Index span = Index{out_height - 1} * stride + out_width;
  static constexpr Index vectors = (span + lanes - 1) / lanes;
  static constexpr Index row_size = vectors * lanes;
  /// One copy of the sample with what the last block reads past it, in whole vectors.
  static constexpr Index copy_size = (Cin * plane + row_size - span + lanes - 1) / lanes * lanes;
  /// The workspace forward needs: K copies, then one output channel (row_size values).
  static constexpr Index workspace_size = K * copy_size + row_size;
  /// Vectors per block (one accumulator register each), and blocks per output channel. At
  /// least 8 accumulators hide the latency of a multiply-add (4 cycles, 2 per cycle on Zen 3);
  /// among 8 to 12, the size that leaves the least overlap (LeNet-5's first convolution: 112
  /// vectors, 14 blocks of 8, against 10 blocks of 12 of which the last overlaps by 8: 4.7
  /// against 4.9 µs before the copies were aligned).
  static constexpr int block = block_size(vectors, 8, simd_accumulators);
  static constexpr Index blocks = (vectors + block - 1) / block;

  /// Writes copy kx (kx < K) of sample x (Cin, InH, InW): the zero-padded sample with rows of
  /// `stride` values, shifted left by kx, so that the input of output q under weight
  /// (c, ky, kx) is copy kx's value q + c·plane + ky·stride, the same alignment as q. Expects
  /// the workspace zero where the sample is not written (as it is when allocated): the border,
  /// the ends of the rows, the end of each copy.
  static void unfold(const T* x, T* copies) {
    for (int c = 0; c < Cin; ++c) {
      for (int iy = 0; iy < InH; ++iy) {
        std::memcpy(copies + c * plane + (iy + P) * stride + P, x + (Index{c} * InH + iy) * InW,
                    sizeof(T) * InW);
      }
    }
    // Whole-sample shifts: Eigen's vectorised copy (glibc's memcpy of a few KiB between
    // differently aligned buffers took three times as long on Zen 3).
    using Values = Eigen::Array<T, Eigen::Dynamic, 1>;
    for (int kx = 1; kx < K; ++kx) {
      Eigen::Map<Values> shifted(copies + kx * copy_size, Cin * plane - kx);
      shifted = Eigen::Map<const Values>(copies + kx, Cin * plane - kx);
    }
  }

  /// The weight gradient (weight_gradient) computes grad_outputs output channels times K taps
  /// at once, one accumulator register each: as many channels as fit in simd_accumulators,
  /// dividing Cout (conv1 of LeNet-5: 2 channels x 5 taps). Offered for K <= simd_accumulators.
  static constexpr int grad_outputs = [] {
    int best = 1;
    for (int d = 1; d <= Cout; ++d) {
      if (Cout % d == 0 && d * K <= simd_accumulators) {
        best = d;
      }
    }
    return best;
  }();
  static constexpr bool has_weight_gradient = K <= simd_accumulators;
  /// The output-gradient rows weight_gradient reads: Cout rows of row_size values.
  static constexpr Index gradient_rows_size = Index{Cout} * row_size;

  /// dy (Cout, Hout, Wout) of one sample -> Cout rows in forward's output layout (output q at
  /// oy·stride + ox). Expects the rows zero where nothing is written (the ends of the rows and
  /// past span), as they are when allocated: the outputs thrown away get a zero gradient.
  static void spread(const T* dy, T* rows) {
    for (int o = 0; o < Cout; ++o) {
      for (int oy = 0; oy < out_height; ++oy) {
        std::memcpy(rows + o * row_size + oy * stride,
                    dy + (Index{o} * out_height + oy) * out_width, sizeof(T) * out_width);
      }
    }
  }

  /// dw (Cout, Cin, K, K) += one sample's weight gradient, from its copies (unfold) and its
  /// output gradient rows (spread): dw[o, c, ky, kx] = Σ_q rows[o, q] · copy_kx[q + c·plane +
  /// ky·stride], the correlation forward computes, read the other way. No im2col and no
  /// packing; at batch 1 the copies are forward's own.
  static void weight_gradient(const T* copies, const T* rows, T* dw) {
    for (int o = 0; o < Cout; o += grad_outputs) {
      for (int c = 0; c < Cin; ++c) {
        for (int ky = 0; ky < K; ++ky) {
          gradient_block(copies + c * plane + ky * stride, rows + o * row_size,
                         dw + o * patch_size + (c * K + ky) * K,
                         std::make_index_sequence<grad_outputs * K>{});
        }
      }
    }
  }

  /// One sample: y (Cout, Hout, Wout) from the copies unfold wrote (in a workspace of
  /// workspace_size values).
  static void forward(T* copies, const T* w, const T* b, T* y) {
    T* row = copies + K * copy_size;
    for (int o = 0; o < Cout; ++o) {
      const T* wo = w + o * patch_size;
      const T bias = Bias ? b[o] : T(0);
      // The last block ends at the last vector, overlapping the one before (whose values it
      // computes again, alike) rather than being a shorter block: one kernel to compile.
      for (Index k = 0; k < blocks; ++k) {
        const Index q = std::min(k * block, vectors - block) * lanes;
        accumulate(copies + q, wo, bias, row + q);
      }
      T* yo = y + o * Index{out_height} * out_width;
      for (int oy = 0; oy < out_height; ++oy) {
        std::memcpy(yo + Index{oy} * out_width, row + oy * stride, sizeof(T) * out_width);
      }
    }
  }

 private:
  /// grad_outputs channels (J / K) x K taps (J % K) of one (c, ky): each accumulator sums
  /// products of an output-gradient row and a copy over every vector of q, then adds its lanes.
  template <std::size_t... J>
  EIGEN_DONT_INLINE static void gradient_block(const T* x, const T* rows, T* dw,
                                               std::index_sequence<J...>) {
    using Vec = Eigen::Array<T, lanes, 1>;
    Vec acc[sizeof...(J)];
    for (Vec& a : acc) {
      a.setZero();
    }
    for (Index q = 0; q < row_size; q += lanes) {
      ((acc[J] += Eigen::Map<const Vec>(rows + (J / K) * row_size + q) *
                  Eigen::Map<const Vec>(x + (J % K) * copy_size + q)),
       ...);
    }
    ((dw[(J / K) * patch_size + J % K] += acc[J].sum()), ...);
  }

  /// A block of consecutive outputs from the copies (from the block's first output on).
  /// Not inlined: inlined into its caller's loops, g++ 12 spills accumulators.
  EIGEN_DONT_INLINE static void accumulate(const T* x, const T* w, T bias, T* out) {
    using Lanes = Eigen::Array<T, block * lanes, 1>;
    Lanes acc = Lanes::Constant(bias);
    for (int c = 0; c < Cin; ++c) {
      for (int ky = 0; ky < K; ++ky) {
        const T* row = x + c * plane + ky * stride;
        const T* wk = w + (c * K + ky) * K;
        for (int kx = 0; kx < K; ++kx) {
          acc += wk[kx] * Eigen::Map<const Lanes>(row + kx * copy_size);
        }
      }
    }
    Eigen::Map<Lanes> target(out);
    target = acc;
  }
};

/// Direct convolution vectorised across the output channels (Cout a multiple of the SIMD width
/// for full registers), any stride.
template <class T, int Cin, int Cout, int K, int S, int H, int W, bool Bias>
struct DirectChannels {
  static constexpr int out_height = (H - K) / S + 1;
  static constexpr int out_width = (W - K) / S + 1;
  static constexpr Index pixels = Index{out_height} * out_width;
  static constexpr Index plane = Index{H} * W;
  static constexpr Index patch_size = Index{Cin} * K * K;
  /// Registers one pixel's accumulators fill, and pixels per block: as many as the accumulator
  /// registers hold, leaving one register for the broadcast input and `registers` for the
  /// weights, or one fewer if that leaves less overlap. Fewer still would be slower with g++ 12,
  /// which then reads the weights from memory in every multiply-add rather than keeping them in
  /// registers (LeNet-5's second convolution, AVX2: 8.1 µs with 4 pixels per block, 5.7 µs with
  /// 5, 6.0 µs with 6).
  static constexpr int registers = (Cout + simd_lanes<T> - 1) / simd_lanes<T>;
  static constexpr int fit =
      std::min(simd_accumulators, simd_registers - 1 - registers) / registers;
  static constexpr int most = fit > 0 ? fit : 1;
  static constexpr int block = block_size(pixels, most - 1, most);
  static constexpr Index blocks = (pixels + block - 1) / block;
  /// Size of the transposed weights forward reads.
  static constexpr Index weight_size = patch_size * Cout;

  /// W (Cout, Cin·K·K) row-major -> wt (Cin·K·K, Cout) row-major: step r's Cout weights together.
  static void transpose_weights(const T* w, T* wt) {
    for (Index r = 0; r < patch_size; ++r) {
      for (int o = 0; o < Cout; ++o) {
        wt[r * Cout + o] = w[o * patch_size + r];
      }
    }
  }

  /// The weight gradient keeps K taps x Cout channels in registers (counted, as conv_kernel
  /// does, with 32-byte registers): offered when that fits simd_accumulators.
  static constexpr bool has_weight_gradient =
      K * ((Cout * static_cast<int>(sizeof(T)) + 31) / 32) <= simd_accumulators;
  /// Size of the transposed output gradient weight_gradient reads.
  static constexpr Index gradient_size = pixels * Cout;

  /// dy (Cout, pixels) of one sample -> dyt (pixels, Cout): each pixel's Cout values together.
  static void transpose_gradient(const T* dy, T* dyt) {
    for (int o = 0; o < Cout; ++o) {
      for (Index p = 0; p < pixels; ++p) {
        dyt[p * Cout + o] = dy[o * pixels + p];
      }
    }
  }

  /// dw (Cout, Cin·K·K) += one sample's weight gradient from xp (Cin, H, W) and dyt
  /// (transpose_gradient): dw[o, (c, ky, kx)] = Σ_pixels xp[c, oy·S + ky, ox·S + kx] ·
  /// dy[o, oy, ox], K taps of one (c, ky) at a time, each with its Cout channels in registers;
  /// the input is read in place (no im2col, no packing).
  static void weight_gradient(const T* xp, const T* dyt, T* dw) {
    for (int c = 0; c < Cin; ++c) {
      for (int ky = 0; ky < K; ++ky) {
        tap_row(xp + c * plane + Index{ky} * W, dyt, dw + (c * K + ky) * K,
                std::make_index_sequence<K>{});
      }
    }
  }

  /// One sample: y (Cout, Hout, Wout) from xp (Cin, H, W) and wt from transpose_weights.
  static void forward(const T* xp, const T* wt, const T* b, T* y) {
    // The last block ends at the last pixel, overlapping the one before (its pixels computed
    // twice, alike) rather than being a shorter block.
    for (Index k = 0; k < blocks; ++k) {
      pixel_block(xp, wt, b, y, std::min(k * block, pixels - block),
                  std::make_index_sequence<block>{});
    }
  }

 private:
  using Channels = Eigen::Array<T, Cout, 1>;

  template <std::size_t... I>
  EIGEN_DONT_INLINE static void tap_row(const T* x, const T* dyt, T* dw,
                                        std::index_sequence<I...>) {
    Channels acc[K];
    for (Channels& a : acc) {
      a.setZero();
    }
    const T* d = dyt;
    for (int oy = 0; oy < out_height; ++oy) {
      const T* row = x + Index{oy} * S * W;
      for (int ox = 0; ox < out_width; ++ox, d += Cout) {
        const Channels g = Eigen::Map<const Channels>(d);
        ((acc[I] += row[ox * S + I] * g), ...);
      }
    }
    for (int o = 0; o < Cout; ++o) {
      ((dw[o * patch_size + I] += acc[I][o]), ...);
    }
  }

  template <std::size_t... I>
  EIGEN_DONT_INLINE static void pixel_block(const T* xp, const T* wt, const T* b, T* y, Index first,
                                            std::index_sequence<I...>) {
    constexpr int n = sizeof...(I);
    // The input offset of each pixel's window.
    Index at[n];
    for (int i = 0; i < n; ++i) {
      const Index p = first + i;
      at[i] = p / out_width * S * W + p % out_width * S;
    }
    Channels acc[n];
    for (int i = 0; i < n; ++i) {
      if constexpr (Bias) {
        acc[i] = Eigen::Map<const Channels>(b);
      } else {
        acc[i].setZero();
      }
    }
    for (int c = 0; c < Cin; ++c) {
      for (int ky = 0; ky < K; ++ky) {
        const T* row = xp + c * plane + Index{ky} * W;
        const T* wk = wt + (c * K + ky) * K * Index{Cout};
        for (int kx = 0; kx < K; ++kx) {
          const Channels weights = Eigen::Map<const Channels>(wk + kx * Index{Cout});
          ((acc[I] += row[at[I] + kx] * weights), ...);
        }
      }
    }
    for (int o = 0; o < Cout; ++o) {
      T* yo = y + o * pixels + first;
      for (int i = 0; i < n; ++i) {
        yo[i] = acc[i][o];
      }
    }
  }
};

}  // namespace edgescale::nn::detail
