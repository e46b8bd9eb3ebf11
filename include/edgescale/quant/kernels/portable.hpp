// edgescale/quant/kernels/portable.hpp — the int8 GEMM and requantization in plain C++, the
// reference every other path equals bit for bit; and the packed weight layout all paths read.
//
//   quant::kernels::portable::gemm_s8(packed.view(), x, n, acc);   // through quant/gemm_s8.hpp
//
//   acc[c, j] = Σ_k W[c, k] · x[k, j]                       exactly, in int32 (|acc| ≤ K·2¹⁴)
//   out[c, j] = clamp(Z + M_c(acc[c, j] + bias[c]), lo, hi)  M_c: TFLite's double rounding
//
// One file per instruction set (portable.hpp, avx2.hpp, avx512_vnni.hpp), each with the same two
// functions in its own namespace, as Highway spells its per-target kernels; quant/gemm_s8.hpp
// picks one at compile time and validates the arguments, so the kernels assume valid input.
//
// The packed layout (PackedS8 writes it, every path reads it): W (M x K) in panels of 16 rows;
// a panel is ceil(K/4) groups of 64 bytes, group t holding W[16p + r, 4t + q] at byte 4r + q —
// 16 rows of 4 consecutive depths, zero beyond M and K, and 16 zero groups after the last panel.
// So one 64-byte group is an AVX-512 VNNI operand as it is (16 lanes of 4 int8), four 16-byte AVX2
// operands (4 rows of 4 depths each), and 16 consecutive groups one AMX B tile; a panel is read
// front to back once per column block: the whole matrix streams sequentially, which is what a
// batch-1 product (memory-bound) wants.
#pragma once

#include <edgescale/core/tensor.hpp>
#include <edgescale/quant/fixed_point.hpp>

#include <algorithm>
#include <array>
#include <cstdint>

// The x86-64 kernels (avx2.hpp, avx512_vnni.hpp) are compiled for their instruction set through
// function attributes, which GCC and Clang take on any x86-64 target. Defining
// EDGESCALE_QUANT_X86_KERNELS=0 leaves them out (the portable path alone, as on other targets).
#ifndef EDGESCALE_QUANT_X86_KERNELS
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define EDGESCALE_QUANT_X86_KERNELS 1
#else
#define EDGESCALE_QUANT_X86_KERNELS 0
#endif
#endif

namespace edgescale::quant::kernels {

/// Rows per panel and depths per group of the packed layout (see the top of this file).
inline constexpr Index panel_rows = 16;
inline constexpr Index group_depth = 4;
inline constexpr Index group_bytes = panel_rows * group_depth;

/// Zero groups PackedS8 stores after the last panel (kernels/amx.hpp reads up to 15 past a panel).
inline constexpr Index panel_tail_groups = 16;

/// The deepest product every path computes exactly in int32: the AVX-512 VNNI path sums
/// (x + 128)·w, up to 255·128·K in magnitude, which stays below 2³¹ for K ≤ 2¹⁶.
inline constexpr Index max_depth = Index{1} << 16;

/// What the kernels read of PackedS8: the packed groups (64-byte aligned) and the row sums (one per
/// padded row, zero beyond M).
struct PackedView {
  const std::int8_t* data = nullptr;
  const std::int32_t* row_sums = nullptr;
  Index rows = 0;       // M
  Index depth = 0;      // K
  Index panels = 0;     // ceil(M / 16)
  Index groups = 0;     // ceil(K / 4), per panel
  bool narrow = false;  // every weight in [−127, 127] (no −128)
};

namespace portable {

/// acc (M x n, column-major) = W · x (x: K x n, column-major): per panel and column, 16 int32 sums
/// over the groups, the plain triple loop of the definition on the packed layout.
inline void gemm_s8(const PackedView& w, const std::int8_t* x, Index n, std::int32_t* acc) {
  for (Index j = 0; j < n; ++j) {
    const std::int8_t* xj = x + j * w.depth;
    std::int32_t* out = acc + j * w.rows;
    for (Index p = 0; p < w.panels; ++p) {
      std::array<std::int32_t, panel_rows> sums{};
      const std::int8_t* group = w.data + p * w.groups * group_bytes;
      for (Index t = 0; t < w.groups; ++t, group += group_bytes) {
        const Index depths = std::min(group_depth, w.depth - t * group_depth);
        for (Index q = 0; q < depths; ++q) {
          const std::int32_t xv = xj[t * group_depth + q];
          for (Index r = 0; r < panel_rows; ++r) {
            sums[static_cast<std::size_t>(r)] += group[r * group_depth + q] * xv;
          }
        }
      }
      const Index rows = std::min(panel_rows, w.rows - p * panel_rows);
      std::copy_n(sums.begin(), rows, out + p * panel_rows);
    }
  }
}

/// acc + bias in int32 arithmetic, wrapping modulo 2³² as the vector paths' adds do.
[[nodiscard]] constexpr std::int32_t wrapping_add(std::int32_t a, std::int32_t b) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(a) + static_cast<std::uint32_t>(b));
}

/// out[c, j] = clamp(zero_point + M_c·(acc[c, j] + bias[c]), act_min, act_max): the clamp is
/// taken before adding the zero point (on [act_min − Z, act_max − Z]), which is the same value
/// without an int32 overflow.
inline void requantize_s8(const std::int32_t* acc, Index m, Index n, const std::int32_t* bias,
                          const Multiplier* mult, std::int32_t zero_point, std::int32_t act_min,
                          std::int32_t act_max, std::int8_t* out) {
  const std::int32_t lo = act_min - zero_point;
  const std::int32_t hi = act_max - zero_point;
  for (Index j = 0; j < n; ++j) {
    for (Index c = 0; c < m; ++c) {
      const std::int32_t v =
          multiply_by_quantized_multiplier(wrapping_add(acc[j * m + c], bias[c]), mult[c]);
      out[j * m + c] = static_cast<std::int8_t>(std::clamp(v, lo, hi) + zero_point);
    }
  }
}

/// One float to its code: zero_point + round(x / scale) ties to even, saturated to [qmin, qmax],
/// NaN to the zero point (ActivationParams::quantize), without a library call: the quotient is
/// clamped to ±1024 (beyond every code whatever the zero point, so saturation is unchanged) and
/// rounded by adding and subtracting 1.5·2²³, which rounds to nearest even in IEEE single
/// precision for |v| < 2²² (float evaluated in float, as on x86-64 and AArch64; never built with
/// -ffast-math).
[[nodiscard]] inline std::int8_t quantize_code(float x, float scale, float zero_point, float qmin,
                                               float qmax) {
  float v = x / scale;
  v = v == v ? v : 0.0F;
  v = std::min(std::max(v, -1024.0F), 1024.0F);
  constexpr float magic = 12582912.0F;  // 1.5 · 2^23
  v = (v + magic) - magic;
  v = std::min(std::max(v + zero_point, qmin), qmax);
  return static_cast<std::int8_t>(v);
}

/// out[i] = quantize_code(x[i]) for i < n.
inline void quantize_s8(const float* x, Index n, float scale, std::int32_t zero_point,
                        std::int32_t qmin, std::int32_t qmax, std::int8_t* out) {
  for (Index i = 0; i < n; ++i) {
    out[i] = quantize_code(x[i], scale, static_cast<float>(zero_point), static_cast<float>(qmin),
                           static_cast<float>(qmax));
  }
}

}  // namespace portable
}  // namespace edgescale::quant::kernels
