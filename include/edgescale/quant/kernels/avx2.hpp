// edgescale/quant/kernels/avx2.hpp — the int8 GEMM and requantization for AVX2, bit for bit
// equal to kernels/portable.hpp.
//
//   quant::gemm_s8<quant::GemmPath::avx2>(packed, x, n, acc);   // through quant/gemm_s8.hpp
//
//   acc[c, j] = Σ_k W[c, k] · x[k, j]:  per group of 4 depths, vpmaddwd(sext16(W[8 rows, 4 k]),
//             broadcast sext16(x[4 k, j])) gives two exact int32 partial sums per row
//             (|a·b + c·d| ≤ 2·128² < 2³¹), added into int32 accumulators; the pairs are summed at
//             the end of a block (vphaddd).
// vpmaddubsw would do twice the products per instruction, but its int16 pair sums saturate
// (2·255·127 > 32767): not exact, not used.
//
// Blocking: x is packed per call, in blocks of 256 depths x 48 columns, into a 24 KB stack buffer
// as sign-extended int16 (so a broadcast is one load); the weights are read from the packed panels
// as they are (int8, sign-extended on load). The register tile is 8 rows x 6 columns: 12 named
// accumulators, 2 weight registers and one broadcast, 15 of the 16 ymm registers (named, because
// g++ 12 keeps an array of __m256i in memory). Per group that is 12 vpmaddwd + 12 vpaddd against
// 2 weight loads and 6 broadcasts. A batch of one streams each packed panel once.
//
// Compiled on any x86-64 target through __attribute__((target("avx2"))): only called when the CPU
// has AVX2 (quant::gemm_path_supported).
#pragma once

#include <edgescale/core/tensor.hpp>
#include <edgescale/quant/fixed_point.hpp>
#include <edgescale/quant/kernels/portable.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#if EDGESCALE_QUANT_X86_KERNELS
// g++ 12 raises -Wmaybe-uninitialized inside its own avx512fintrin.h (the deliberately undefined
// source operand of _mm512_slli_epi32 and friends): a false positive, silenced as core/eigen.hpp
// does, for the intrinsics headers only (GCC judges by the location it warns about).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#define EDGESCALE_QUANT_AVX2 __attribute__((target("avx2")))

namespace edgescale::quant::kernels::avx2 {
namespace detail {

inline constexpr Index tile_rows = 8;      // half a panel
inline constexpr Index tile_cols = 6;      // columns of x per register tile
inline constexpr Index block_groups = 64;  // groups of 4 depths per packed block of x
inline constexpr Index block_tiles = 8;    // register tiles of columns per packed block
inline constexpr Index block_cols = block_tiles * tile_cols;
inline constexpr Index tile_stride = block_groups * tile_cols * group_depth;  // int16 per tile

/// Packs columns [0, cols) of x (leading dimension depth), groups [g0, g0 + groups), as int16 in
/// tiles of 6 columns: tile i, group t, column c at xp[i·tile_stride + (t·6 + c)·4]. A group past
/// the depth is zero-padded.
EDGESCALE_QUANT_AVX2 inline void pack_x(const std::int8_t* x, Index depth, Index g0, Index groups,
                                        Index cols, std::int16_t* xp) {
  for (Index c = 0; c < cols; ++c) {
    const std::int8_t* src = x + c * depth + g0 * group_depth;
    std::int16_t* dst = xp + (c / tile_cols) * tile_stride + (c % tile_cols) * group_depth;
    const Index full = std::min(groups, (depth - g0 * group_depth) / group_depth);
    for (Index t = 0; t < full; ++t) {
      std::int32_t word = 0;
      std::memcpy(&word, src + t * group_depth, sizeof word);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + t * tile_cols * group_depth),
                       _mm_cvtepi8_epi16(_mm_cvtsi32_si128(word)));
    }
    for (Index t = full; t < groups; ++t) {
      const Index left = depth - (g0 + t) * group_depth;
      for (Index q = 0; q < group_depth; ++q) {
        dst[t * tile_cols * group_depth + q] = q < left ? src[t * group_depth + q] : 0;
      }
    }
  }
}

/// out[0, rows) (+)= the 8 row sums of a tile column: lo holds rows 0-3 and hi rows 4-7, two
/// partial sums per row in adjacent lanes.
EDGESCALE_QUANT_AVX2 inline void store_column(__m256i lo, __m256i hi, std::int32_t* out, Index rows,
                                              bool accumulate) {
  // hadd gives rows (0 1 4 5 | 2 3 6 7); the 64-bit permute puts them in order.
  __m256i sums = _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo, hi), 0xD8);
  auto* dst = reinterpret_cast<__m256i*>(out);
  if (rows == tile_rows) {
    if (accumulate) {
      sums = _mm256_add_epi32(sums, _mm256_loadu_si256(dst));
    }
    _mm256_storeu_si256(dst, sums);
  } else {
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<std::int32_t>(rows)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    if (accumulate) {
      sums = _mm256_add_epi32(sums, _mm256_maskload_epi32(out, mask));
    }
    _mm256_maskstore_epi32(out, mask, sums);
  }
}

// One column c of the register tile: broadcast x's 4 int16 of this group, two vpmaddwd (rows 0-3
// and 4-7), two adds.
#define EDGESCALE_QUANT_AVX2_COLUMN(c)                                            \
  if constexpr (Cols > (c)) {                                                     \
    const __m256i b = _mm256_broadcastq_epi64(                                    \
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(xp + (c)*group_depth))); \
    a0##c = _mm256_add_epi32(a0##c, _mm256_madd_epi16(w0, b));                    \
    a1##c = _mm256_add_epi32(a1##c, _mm256_madd_epi16(w1, b));                    \
  }
#define EDGESCALE_QUANT_AVX2_STORE(c)                            \
  if constexpr (Cols > (c)) {                                    \
    store_column(a0##c, a1##c, out + (c)*ldo, rows, accumulate); \
  }

/// The register tile: out (8 rows x Cols columns, leading dimension ldo; rows ≤ 8 written) (+)=
/// the product of `groups` groups of a half panel (w: its first group, 64 bytes apart) and a
/// packed tile of x.
template <int Cols>
EDGESCALE_QUANT_AVX2 inline void tile(const std::int8_t* w, Index groups, const std::int16_t* xp,
                                      std::int32_t* out, Index ldo, Index rows, bool accumulate) {
  [[maybe_unused]] __m256i a00 = _mm256_setzero_si256(), a10 = a00, a01 = a00, a11 = a00, a02 = a00,
                           a12 = a00, a03 = a00, a13 = a00, a04 = a00, a14 = a00, a05 = a00,
                           a15 = a00;
  for (Index t = 0; t < groups; ++t) {
    const __m256i w0 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(w)));
    const __m256i w1 =
        _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(w + 16)));
    EDGESCALE_QUANT_AVX2_COLUMN(0)
    EDGESCALE_QUANT_AVX2_COLUMN(1)
    EDGESCALE_QUANT_AVX2_COLUMN(2)
    EDGESCALE_QUANT_AVX2_COLUMN(3)
    EDGESCALE_QUANT_AVX2_COLUMN(4)
    EDGESCALE_QUANT_AVX2_COLUMN(5)
    w += group_bytes;
    xp += tile_cols * group_depth;
  }
  EDGESCALE_QUANT_AVX2_STORE(0)
  EDGESCALE_QUANT_AVX2_STORE(1)
  EDGESCALE_QUANT_AVX2_STORE(2)
  EDGESCALE_QUANT_AVX2_STORE(3)
  EDGESCALE_QUANT_AVX2_STORE(4)
  EDGESCALE_QUANT_AVX2_STORE(5)
}

#undef EDGESCALE_QUANT_AVX2_COLUMN
#undef EDGESCALE_QUANT_AVX2_STORE

// x · M for 8 lanes, as multiply_by_quantized_multiplier (quant/fixed_point.hpp) computes it.
EDGESCALE_QUANT_AVX2 inline __m256i multiply_by_quantized_multiplier(__m256i x, __m256i value,
                                                                     __m256i left, __m256i right) {
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i int_min = _mm256_set1_epi32(std::numeric_limits<std::int32_t>::min());
  // x·2^left, saturated: where shifting back does not give x, x had bits to lose.
  const __m256i shifted = _mm256_sllv_epi32(x, left);
  const __m256i kept = _mm256_cmpeq_epi32(_mm256_srav_epi32(shifted, left), x);
  const __m256i saturated = _mm256_xor_si256(_mm256_srai_epi32(x, 31),
                                             _mm256_set1_epi32(std::numeric_limits<int>::max()));
  x = _mm256_blendv_epi8(saturated, shifted, kept);
  // The high multiply: floor((x·m + 2³⁰) / 2³¹), which is the ties-up rounding of the scalar code
  // for either sign of the product; bits 31-62 of the 64-bit sum, for even lanes (vpmuldq) and
  // odd lanes (shifted down first).
  const __m256i nudge = _mm256_set1_epi64x(std::int64_t{1} << 30);
  const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, value), nudge), 31);
  const __m256i odd = _mm256_slli_epi64(
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(value, 32)),
                       nudge),
      1);
  __m256i high = _mm256_blend_epi32(even, odd, 0xAA);
  // The one overflow, x = m = −2³¹, saturates.
  const __m256i overflow =
      _mm256_and_si256(_mm256_cmpeq_epi32(x, int_min), _mm256_cmpeq_epi32(value, int_min));
  high = _mm256_blendv_epi8(high, _mm256_set1_epi32(std::numeric_limits<int>::max()), overflow);
  // Division by 2^right rounded half away from zero: the remainder against half the divisor
  // (one more for a negative dividend).
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
  const __m256i remainder = _mm256_and_si256(high, mask);
  const __m256i threshold =
      _mm256_sub_epi32(_mm256_srai_epi32(mask, 1), _mm256_srai_epi32(high, 31));
  return _mm256_sub_epi32(_mm256_srav_epi32(high, right), _mm256_cmpgt_epi32(remainder, threshold));
}

inline constexpr Index requantize_rows = 64;  // rows whose parameters are unpacked at a time

EDGESCALE_QUANT_AVX2 inline __m256i load_lanes(const std::int32_t* p) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
}

}  // namespace detail

/// acc (M x n, column-major) = W · x (x: K x n, column-major), exact in int32.
EDGESCALE_QUANT_AVX2 inline void gemm_s8(const PackedView& w, const std::int8_t* x, Index n,
                                         std::int32_t* acc) {
  using namespace detail;
  alignas(64) std::int16_t xp[block_tiles * tile_stride];
  for (Index j0 = 0; j0 < n; j0 += block_cols) {
    const Index cols = std::min(block_cols, n - j0);
    for (Index g0 = 0; g0 < w.groups; g0 += block_groups) {
      const Index groups = std::min(block_groups, w.groups - g0);
      pack_x(x + j0 * w.depth, w.depth, g0, groups, cols, xp);
      const bool accumulate = g0 > 0;
      for (Index r0 = 0; r0 < w.rows; r0 += tile_rows) {
        const Index rows = std::min(tile_rows, w.rows - r0);
        const std::int8_t* wp = w.data + ((r0 / panel_rows) * w.groups + g0) * group_bytes +
                                (r0 % panel_rows) * group_depth;
        for (Index jt = 0; jt < cols; jt += tile_cols) {
          const std::int16_t* xt = xp + (jt / tile_cols) * tile_stride;
          std::int32_t* out = acc + (j0 + jt) * w.rows + r0;
          switch (std::min(tile_cols, cols - jt)) {
            case 6:
              tile<6>(wp, groups, xt, out, w.rows, rows, accumulate);
              break;
            case 5:
              tile<5>(wp, groups, xt, out, w.rows, rows, accumulate);
              break;
            case 4:
              tile<4>(wp, groups, xt, out, w.rows, rows, accumulate);
              break;
            case 3:
              tile<3>(wp, groups, xt, out, w.rows, rows, accumulate);
              break;
            case 2:
              tile<2>(wp, groups, xt, out, w.rows, rows, accumulate);
              break;
            default:
              tile<1>(wp, groups, xt, out, w.rows, rows, accumulate);
              break;
          }
        }
      }
    }
  }
}

/// out = clamp(zero_point + M_c·(acc + bias[c]), act_min, act_max), 8 rows at a time; the
/// per-row parameters are unpacked for 64 rows at a time onto the stack.
EDGESCALE_QUANT_AVX2 inline void requantize_s8(const std::int32_t* acc, Index m, Index n,
                                               const std::int32_t* bias, const Multiplier* mult,
                                               std::int32_t zero_point, std::int32_t act_min,
                                               std::int32_t act_max, std::int8_t* out) {
  using namespace detail;
  alignas(32) std::int32_t p_bias[requantize_rows];
  alignas(32) std::int32_t p_value[requantize_rows];
  alignas(32) std::int32_t p_left[requantize_rows];
  alignas(32) std::int32_t p_right[requantize_rows];
  const __m256i lo = _mm256_set1_epi32(act_min - zero_point);
  const __m256i hi = _mm256_set1_epi32(act_max - zero_point);
  const __m256i zero = _mm256_set1_epi32(zero_point);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (Index c0 = 0; c0 < m; c0 += requantize_rows) {
    const Index chunk = std::min(requantize_rows, m - c0);
    for (Index r = 0; r < requantize_rows; ++r) {
      const bool in = r < chunk;
      const Multiplier q = in ? mult[c0 + r] : Multiplier{};
      p_bias[r] = in ? bias[c0 + r] : 0;
      p_value[r] = q.value;
      p_left[r] = q.shift > 0 ? q.shift : 0;
      p_right[r] = q.shift > 0 ? 0 : -q.shift;
    }
    for (Index j = 0; j < n; ++j) {
      for (Index r = 0; r < chunk; r += tile_rows) {
        const Index rows = std::min(tile_rows, chunk - r);
        const std::int32_t* src = acc + j * m + c0 + r;
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rows)), lane);
        const __m256i a = rows == tile_rows
                              ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src))
                              : _mm256_maskload_epi32(src, mask);
        __m256i v = _mm256_add_epi32(a, load_lanes(p_bias + r));
        v = multiply_by_quantized_multiplier(v, load_lanes(p_value + r), load_lanes(p_left + r),
                                             load_lanes(p_right + r));
        v = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(v, lo), hi), zero);
        // 8 int32 in [−128, 127] to 8 int8 (saturating packs, exact here).
        const __m128i words =
            _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        const __m128i bytes = _mm_packs_epi16(words, words);
        std::int8_t* dst = out + j * m + c0 + r;
        if (rows == tile_rows) {
          _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), bytes);
        } else {
          alignas(16) std::int8_t tail[16];
          _mm_store_si128(reinterpret_cast<__m128i*>(tail), bytes);
          std::memcpy(dst, tail, static_cast<std::size_t>(rows));
        }
      }
    }
  }
}

}  // namespace edgescale::quant::kernels::avx2

#undef EDGESCALE_QUANT_AVX2
#endif  // EDGESCALE_QUANT_X86_KERNELS
