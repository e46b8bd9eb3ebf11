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
// (2·255·127 > 32767 for x + 128 against w): not exact, not used for the tiles. One column
// against narrow weights (all in [−127, 127]) is the exception: |x|·(w·sign x) keeps each pair
// within 2·128·127 < 2¹⁵, and that kernel (column_tile) does 32 products in 4 instructions.
//
// Blocking: x is packed per call, in blocks of 512 depths x 24 columns, into a 24 KB stack buffer
// as sign-extended int16 (so a broadcast is one load); the weights are read from the packed panels
// as they are (int8, sign-extended on load). The register tile is 8 rows x 6 columns: 12 named
// accumulators, 2 weight registers and one broadcast, 15 of the 16 ymm registers (named, because
// g++ 12 keeps an array of __m256i in memory, and ordered for g++ by an empty asm: see tile). Per
// group that is 12 vpmaddwd + 12 vpaddd against 2 weight loads and 6 broadcasts. A batch of one
// streams each packed panel once, two panels at a time with narrow weights.
//
// Compiled on any x86-64 target through __attribute__((target("avx2"))): only called when the CPU
// has AVX2 (quant::gemm_path_supported).
#pragma once

#include <edgescale/core/tensor.hpp>
#include <edgescale/quant/fixed_point.hpp>
#include <edgescale/quant/kernels/intrinsics.hpp>
#include <edgescale/quant/kernels/portable.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <type_traits>

#if EDGESCALE_QUANT_X86_KERNELS

#define EDGESCALE_QUANT_AVX2 __attribute__((target("avx2")))

namespace edgescale::quant::kernels::avx2 {
namespace detail {

inline constexpr Index tile_rows = 8;       // half a panel
inline constexpr Index tile_cols = 6;       // columns of x per register tile
inline constexpr Index block_groups = 128;  // groups of 4 depths per packed block of x
inline constexpr Index block_tiles = 4;     // register tiles of columns per packed block
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

/// out[0, min(rows, 8)) (+)= the 8 lanes of sums (nothing for rows ≤ 0).
EDGESCALE_QUANT_AVX2 inline void store_rows(__m256i sums, std::int32_t* out, Index rows,
                                            bool accumulate) {
  auto* dst = reinterpret_cast<__m256i*>(out);
  if (rows >= tile_rows) {
    if (accumulate) {
      sums = _mm256_add_epi32(sums, _mm256_loadu_si256(dst));
    }
    _mm256_storeu_si256(dst, sums);
  } else if (rows > 0) {
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<std::int32_t>(rows)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    if (accumulate) {
      sums = _mm256_add_epi32(sums, _mm256_maskload_epi32(out, mask));
    }
    _mm256_maskstore_epi32(out, mask, sums);
  }
}

/// out[0, rows) (+)= the 8 row sums of a tile column: lo holds rows 0-3 and hi rows 4-7, two
/// partial sums per row in adjacent lanes.
EDGESCALE_QUANT_AVX2 inline void store_column(__m256i lo, __m256i hi, std::int32_t* out, Index rows,
                                              bool accumulate) {
  // hadd gives rows (0 1 4 5 | 2 3 6 7); the 64-bit permute puts them in order.
  store_rows(_mm256_permute4x64_epi64(_mm256_hadd_epi32(lo, hi), 0xD8), out, rows, accumulate);
}

// g++ 12 computes every column's broadcasts and products of a group before their adds, and then
// keeps 7 of the 12 accumulators on the stack; an empty asm that takes a column's two
// accumulators in ymm registers right after its adds keeps that order, and every accumulator in
// a register (checked with objdump on the inner loops). clang keeps them there on its own.
#if defined(__clang__)
#define EDGESCALE_QUANT_AVX2_KEEP(a, b)
#else
#define EDGESCALE_QUANT_AVX2_KEEP(a, b) __asm__("" : "+x"(a), "+x"(b));
#endif

// One column c of the register tile: broadcast x's 4 int16 of this group, two vpmaddwd (rows 0-3
// and 4-7), two adds.
#define EDGESCALE_QUANT_AVX2_COLUMN(c)                                                            \
  if constexpr (Cols > (c)) {                                                                     \
    const __m256i b =                                                                             \
        _mm256_broadcastq_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(xp + (c)*ldx))); \
    a0##c = _mm256_add_epi32(a0##c, _mm256_madd_epi16(w0, b));                                    \
    a1##c = _mm256_add_epi32(a1##c, _mm256_madd_epi16(w1, b));                                    \
    EDGESCALE_QUANT_AVX2_KEEP(a0##c, a1##c)                                                       \
  }
#define EDGESCALE_QUANT_AVX2_STORE(c)                            \
  if constexpr (Cols > (c)) {                                    \
    store_column(a0##c, a1##c, out + (c)*ldo, rows, accumulate); \
  }

/// The register tile: out (8 rows x Cols columns, leading dimension ldo; rows ≤ 8 written) (+)=
/// the product of `groups` groups of a half panel (w: its first group, 64 bytes apart) and a
/// packed tile of x.
/// x's 4 int16 of column c, group t are at xp + c·ldx + t·step: the packed tiles (ldx = 4,
/// step = 24) or x sign-extended as it is laid out (ldx = K, step = 4).
template <int Cols>
EDGESCALE_QUANT_AVX2 inline void tile(const std::int8_t* w, Index groups, const std::int16_t* xp,
                                      Index ldx, Index step, std::int32_t* out, Index ldo,
                                      Index rows, bool accumulate) {
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
    xp += step;
  }
  EDGESCALE_QUANT_AVX2_STORE(0)
  EDGESCALE_QUANT_AVX2_STORE(1)
  EDGESCALE_QUANT_AVX2_STORE(2)
  EDGESCALE_QUANT_AVX2_STORE(3)
  EDGESCALE_QUANT_AVX2_STORE(4)
  EDGESCALE_QUANT_AVX2_STORE(5)
}

#undef EDGESCALE_QUANT_AVX2_COLUMN
#undef EDGESCALE_QUANT_AVX2_KEEP

// ---- one column against narrow weights (every W in [−127, 127]: PackedView::narrow) ----
// x·w = |x|·(w·sign(x)): vpsignb gives w·sign(x) (exact for w ≠ −128), vpmaddubsw multiplies it by
// |x| as uint8 (≤ 128) and adds pairs, |sum| ≤ 2·128·127 = 32512 < 2¹⁵ (exact, no saturation),
// and vpmaddwd by ones adds those pairs into int32 lanes: one lane per row, 4 depths. That is 4
// instructions per 32 products against 6 for vpmovsxbw + vpmaddwd + vpaddd, and the weights are
// loaded as they are packed (32 bytes: 8 rows x 4 depths): a batch of one runs about 1.4 times
// faster (docs/results/quant.md).

/// Packs column x (depth K), groups [g0, g0 + groups), for the one-column kernel: per group the
/// 4 bytes of x, then their magnitudes (|−128| = 128 as uint8); zero past the depth.
EDGESCALE_QUANT_AVX2 inline void pack_column(const std::int8_t* x, Index depth, Index g0,
                                             Index groups, std::int32_t* xs) {
  const std::int8_t* src = x + g0 * group_depth;
  const Index full = std::min(groups, (depth - g0 * group_depth) / group_depth);
  for (Index t = 0; t < full; ++t) {
    std::int32_t word = 0;
    std::memcpy(&word, src + t * group_depth, sizeof word);
    xs[2 * t] = word;
    xs[2 * t + 1] = _mm_cvtsi128_si32(_mm_abs_epi8(_mm_cvtsi32_si128(word)));
  }
  for (Index t = full; t < groups; ++t) {
    std::int8_t bytes[group_depth] = {};
    const Index left = depth - (g0 + t) * group_depth;
    for (Index q = 0; q < left; ++q) {
      bytes[q] = src[t * group_depth + q];
    }
    std::int32_t word = 0;
    std::memcpy(&word, bytes, sizeof word);
    xs[2 * t] = word;
    xs[2 * t + 1] = _mm_cvtsi128_si32(_mm_abs_epi8(_mm_cvtsi32_si128(word)));
  }
}

EDGESCALE_QUANT_AVX2 inline __m256i signed_products(__m256i acc, __m256i w, __m256i x,
                                                    __m256i magnitude) {
  const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(w, x));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

/// out (Panels·16 rows; `rows` of them written) (+)= one column: Panels panels (w: the first
/// one's first group, panels stride bytes apart) times the packed column xs.
template <int Panels>
EDGESCALE_QUANT_AVX2 inline void column_tile(const std::int8_t* w, Index stride, Index groups,
                                             const std::int32_t* xs, std::int32_t* out, Index rows,
                                             bool accumulate) {
  __m256i a0 = _mm256_setzero_si256();
  [[maybe_unused]] __m256i a1 = a0, a2 = a0, a3 = a0;
  for (Index t = 0; t < groups; ++t) {
    const __m256i x = _mm256_set1_epi32(xs[2 * t]);
    const __m256i magnitude = _mm256_set1_epi32(xs[2 * t + 1]);
    const auto* g = reinterpret_cast<const __m256i*>(w + t * group_bytes);
    a0 = signed_products(a0, _mm256_load_si256(g), x, magnitude);
    a1 = signed_products(a1, _mm256_load_si256(g + 1), x, magnitude);
    if constexpr (Panels > 1) {
      const auto* h = reinterpret_cast<const __m256i*>(w + stride + t * group_bytes);
      a2 = signed_products(a2, _mm256_load_si256(h), x, magnitude);
      a3 = signed_products(a3, _mm256_load_si256(h + 1), x, magnitude);
    }
  }
  store_rows(a0, out, rows, accumulate);
  store_rows(a1, out + tile_rows, rows - tile_rows, accumulate);
  if constexpr (Panels > 1) {
    store_rows(a2, out + 2 * tile_rows, rows - 2 * tile_rows, accumulate);
    store_rows(a3, out + 3 * tile_rows, rows - 3 * tile_rows, accumulate);
  }
}

/// acc[0, M) (+)= W[:, groups g0 .. g0 + groups) · the packed column xs, two panels at a time.
EDGESCALE_QUANT_AVX2 inline void column(const PackedView& w, Index g0, Index groups,
                                        const std::int32_t* xs, std::int32_t* out,
                                        bool accumulate) {
  const Index stride = w.groups * group_bytes;
  for (Index p = 0; p < w.panels; p += 2) {
    const std::int8_t* wp = w.data + p * stride + g0 * group_bytes;
    const Index rows = w.rows - p * panel_rows;
    if (p + 1 < w.panels) {
      column_tile<2>(wp, stride, groups, xs, out + p * panel_rows, rows, accumulate);
    } else {
      column_tile<1>(wp, stride, groups, xs, out + p * panel_rows, rows, accumulate);
    }
  }
}
#undef EDGESCALE_QUANT_AVX2_STORE

// ---- requantization ----

inline constexpr Index requantize_rows = 64;  // rows whose parameters are unpacked at a time

/// The per-row parameters of requantize_rows rows, unpacked once per call into lanes: the bias,
/// the multiplier (its odd lanes moved down for vpmuldq), the shifts, and the rounding divide's
/// mask 2^right − 1 and half of it.
struct RequantizeRows {
  alignas(32) std::int32_t bias[requantize_rows];
  alignas(32) std::int32_t value[requantize_rows];
  alignas(32) std::int32_t value_odd[requantize_rows];
  alignas(32) std::int32_t left[requantize_rows];
  alignas(32) std::int32_t right[requantize_rows];
  alignas(32) std::int32_t mask[requantize_rows];
  alignas(32) std::int32_t half[requantize_rows];
};

EDGESCALE_QUANT_AVX2 inline __m256i load_lanes(const std::int32_t* p) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
}

EDGESCALE_QUANT_AVX2 inline void store_lanes(std::int32_t* p, __m256i v) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(p), v);
}

// The multipliers are read 4 at a time as (value, shift) pairs of 32-bit integers.
static_assert(std::is_standard_layout_v<Multiplier> &&
                  sizeof(Multiplier) == 2 * sizeof(std::int32_t) && sizeof(int) == 4 &&
                  offsetof(Multiplier, value) == 0 && offsetof(Multiplier, shift) == 4,
              "requantize_s8 (AVX2) reads Multiplier as two 32-bit integers");

/// x · M for the 8 rows r .. r + 8 of p, as multiply_by_quantized_multiplier
/// (quant/fixed_point.hpp) computes it. General: some row shifts left (M ≥ 1, so x·2^left may
/// saturate) or has the multiplier −2³¹ (whose product with x = −2³¹ saturates);
/// quantize_multiplier's multipliers below 1 need neither, and skip both.
template <bool General>
EDGESCALE_QUANT_AVX2 inline __m256i multiply_by_quantized_multiplier(__m256i x,
                                                                     const RequantizeRows& p,
                                                                     Index r) {
  const __m256i int_max = _mm256_set1_epi32(std::numeric_limits<std::int32_t>::max());
  const __m256i value = load_lanes(p.value + r);
  if constexpr (General) {
    // x·2^left, saturated: where shifting back does not give x, x had bits to lose.
    const __m256i left = load_lanes(p.left + r);
    const __m256i shifted = _mm256_sllv_epi32(x, left);
    const __m256i kept = _mm256_cmpeq_epi32(_mm256_srav_epi32(shifted, left), x);
    const __m256i saturated = _mm256_xor_si256(_mm256_srai_epi32(x, 31), int_max);
    x = _mm256_blendv_epi8(saturated, shifted, kept);
  }
  // The high multiply: floor((x·m + 2³⁰) / 2³¹), which is the ties-up rounding of the scalar code
  // for either sign of the product; bits 31-62 of the 64-bit sum, for even lanes (vpmuldq) and
  // odd lanes (moved down first).
  const __m256i nudge = _mm256_set1_epi64x(std::int64_t{1} << 30);
  const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, value), nudge), 31);
  const __m256i odd = _mm256_slli_epi64(
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), load_lanes(p.value_odd + r)),
                       nudge),
      1);
  __m256i high = _mm256_blend_epi32(even, odd, 0xAA);
  if constexpr (General) {
    // The one overflow, x = m = −2³¹, saturates.
    const __m256i int_min = _mm256_set1_epi32(std::numeric_limits<std::int32_t>::min());
    const __m256i overflow =
        _mm256_and_si256(_mm256_cmpeq_epi32(x, int_min), _mm256_cmpeq_epi32(value, int_min));
    high = _mm256_blendv_epi8(high, int_max, overflow);
  }
  // Division by 2^right rounded half away from zero: the remainder against half the divisor
  // (one more for a negative dividend).
  const __m256i remainder = _mm256_and_si256(high, load_lanes(p.mask + r));
  const __m256i threshold = _mm256_sub_epi32(load_lanes(p.half + r), _mm256_srai_epi32(high, 31));
  return _mm256_sub_epi32(_mm256_srav_epi32(high, load_lanes(p.right + r)),
                          _mm256_cmpgt_epi32(remainder, threshold));
}

/// out (chunk rows x n columns, leading dimension m) from acc, with the parameters p.
template <bool General>
EDGESCALE_QUANT_AVX2 inline void requantize_rows_of(const std::int32_t* acc, Index m, Index n,
                                                    Index chunk, const RequantizeRows& p,
                                                    std::int32_t zero_point, std::int32_t act_min,
                                                    std::int32_t act_max, std::int8_t* out) {
  const __m256i lo = _mm256_set1_epi32(act_min - zero_point);
  const __m256i hi = _mm256_set1_epi32(act_max - zero_point);
  const __m256i zero = _mm256_set1_epi32(zero_point);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (Index j = 0; j < n; ++j) {
    for (Index r = 0; r < chunk; r += tile_rows) {
      const Index rows = std::min(tile_rows, chunk - r);
      const std::int32_t* src = acc + j * m + r;
      const __m256i a =
          rows == tile_rows
              ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src))
              : _mm256_maskload_epi32(
                    src, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rows)), lane));
      __m256i v = _mm256_add_epi32(a, load_lanes(p.bias + r));
      v = multiply_by_quantized_multiplier<General>(v, p, r);
      v = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(v, lo), hi), zero);
      // 8 int32 in [−128, 127] to 8 int8 (saturating packs, exact here).
      const __m128i words =
          _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
      const __m128i bytes = _mm_packs_epi16(words, words);
      std::int8_t* dst = out + j * m + r;
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

/// The row parameters for a flat stream: entry i of p is row i mod m, for i < period (a multiple
/// of 8, at most requantize_rows); returns whether some row needs the general road.
inline bool unpack_period(const std::int32_t* bias, const Multiplier* mult, Index m, Index period,
                          RequantizeRows& p) {
  bool general = false;
  for (Index i = 0; i < period; ++i) {
    const Index c = i % m;
    const std::int32_t shift = mult[c].shift;
    const std::int32_t right = shift < 0 ? -shift : 0;
    const auto mask = static_cast<std::int32_t>((std::uint32_t{1} << right) - 1U);
    p.bias[i] = bias[c];
    p.value[i] = mult[c].value;
    p.value_odd[i] = mult[(i | 1) % m].value;
    p.left[i] = shift > 0 ? shift : 0;
    p.right[i] = right;
    p.mask[i] = mask;
    p.half[i] = mask >> 1;
    general = general || shift > 0 || mult[c].value == std::numeric_limits<std::int32_t>::min();
  }
  return general;
}

/// Small m (not a multiple of 8) over several columns: acc and out are one contiguous stream of
/// m·n values whose row repeats with period lcm(m, 8), so the stream goes by in whole vectors
/// (only the last one partial) rather than column by column with a partial vector each.
template <bool General>
EDGESCALE_QUANT_AVX2 inline void requantize_flat(const std::int32_t* acc, Index total, Index period,
                                                 const RequantizeRows& p, std::int32_t zero_point,
                                                 std::int32_t act_min, std::int32_t act_max,
                                                 std::int8_t* out) {
  const Index periods = total / period;
  requantize_rows_of<General>(acc, period, periods, period, p, zero_point, act_min, act_max, out);
  const Index rest = total - periods * period;
  if (rest > 0) {
    requantize_rows_of<General>(acc + periods * period, period, 1, rest, p, zero_point, act_min,
                                act_max, out + periods * period);
  }
}

/// Depth up to which several columns take `shallow`: 24 columns of it fill the buffer of x.
inline constexpr Index shallow_depth = tile_stride * block_tiles / block_cols;

/// Shallow products (K ≤ 512: convolutions' im2col patches, many short columns) over n > 2
/// columns: x is not repacked per group but sign-extended to int16 in blocks of 24 columns as it
/// is (column-major, 16 codes per instruction), and the tiles broadcast each column's 4 values
/// from there; the whole depth is one block. A last partial group reads up to 3 values past its
/// column (the next column's, or 0 after the block), which meet zero weights.
EDGESCALE_QUANT_AVX2 inline void shallow(const PackedView& w, const std::int8_t* x, Index n,
                                         std::int32_t* acc, std::int16_t* xp) {
  for (Index j0 = 0; j0 < n; j0 += block_cols) {
    const Index cols = std::min(block_cols, n - j0);
    const Index values = cols * w.depth;
    const std::int8_t* src = x + j0 * w.depth;
    Index i = 0;
    for (; i + 16 <= values; i += 16) {
      _mm256_storeu_si256(
          reinterpret_cast<__m256i*>(xp + i),
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    }
    for (; i < values; ++i) {
      xp[i] = src[i];
    }
    for (Index q = 0; q < group_depth; ++q) {
      xp[values + q] = 0;
    }
    for (Index r0 = 0; r0 < w.rows; r0 += tile_rows) {
      const Index rows = std::min(tile_rows, w.rows - r0);
      const std::int8_t* wp =
          w.data + (r0 / panel_rows) * w.groups * group_bytes + (r0 % panel_rows) * group_depth;
      for (Index jt = 0; jt < cols; jt += tile_cols) {
        const std::int16_t* xt = xp + jt * w.depth;
        std::int32_t* out = acc + (j0 + jt) * w.rows + r0;
        switch (std::min(tile_cols, cols - jt)) {
          case 6:
            tile<6>(wp, w.groups, xt, w.depth, group_depth, out, w.rows, rows, false);
            break;
          case 5:
            tile<5>(wp, w.groups, xt, w.depth, group_depth, out, w.rows, rows, false);
            break;
          case 4:
            tile<4>(wp, w.groups, xt, w.depth, group_depth, out, w.rows, rows, false);
            break;
          case 3:
            tile<3>(wp, w.groups, xt, w.depth, group_depth, out, w.rows, rows, false);
            break;
          case 2:
            tile<2>(wp, w.groups, xt, w.depth, group_depth, out, w.rows, rows, false);
            break;
          default:
            tile<1>(wp, w.groups, xt, w.depth, group_depth, out, w.rows, rows, false);
            break;
        }
      }
    }
  }
}

}  // namespace detail

/// acc (M x n, column-major) = W · x (x: K x n, column-major), exact in int32. With narrow weights
/// a block's single last column (a batch of one, or the one left over by the 6-column tiles)
/// takes the one-column kernel.
EDGESCALE_QUANT_AVX2 inline void gemm_s8(const PackedView& w, const std::int8_t* x, Index n,
                                         std::int32_t* acc) {
  using namespace detail;
  alignas(64) std::int16_t xp[block_tiles * tile_stride + group_depth];
  if (n > 2 && w.depth <= shallow_depth) {
    shallow(w, x, n, acc, xp);
    return;
  }
  alignas(64) std::int32_t xs[2 * block_groups];
  for (Index j0 = 0; j0 < n; j0 += block_cols) {
    const Index cols = std::min(block_cols, n - j0);
    const Index tiled = w.narrow && cols % tile_cols == 1 ? cols - 1 : cols;
    for (Index g0 = 0; g0 < w.groups; g0 += block_groups) {
      const Index groups = std::min(block_groups, w.groups - g0);
      const bool accumulate = g0 > 0;
      if (tiled < cols) {
        pack_column(x + (j0 + tiled) * w.depth, w.depth, g0, groups, xs);
        column(w, g0, groups, xs, acc + (j0 + tiled) * w.rows, accumulate);
      }
      if (tiled == 0) {
        continue;
      }
      pack_x(x + j0 * w.depth, w.depth, g0, groups, tiled, xp);
      for (Index r0 = 0; r0 < w.rows; r0 += tile_rows) {
        const Index rows = std::min(tile_rows, w.rows - r0);
        const std::int8_t* wp = w.data + ((r0 / panel_rows) * w.groups + g0) * group_bytes +
                                (r0 % panel_rows) * group_depth;
        for (Index jt = 0; jt < tiled; jt += tile_cols) {
          const std::int16_t* xt = xp + (jt / tile_cols) * tile_stride;
          std::int32_t* out = acc + (j0 + jt) * w.rows + r0;
          switch (std::min(tile_cols, tiled - jt)) {
            case 6:
              tile<6>(wp, groups, xt, group_depth, tile_cols * group_depth, out, w.rows, rows,
                      accumulate);
              break;
            case 5:
              tile<5>(wp, groups, xt, group_depth, tile_cols * group_depth, out, w.rows, rows,
                      accumulate);
              break;
            case 4:
              tile<4>(wp, groups, xt, group_depth, tile_cols * group_depth, out, w.rows, rows,
                      accumulate);
              break;
            case 3:
              tile<3>(wp, groups, xt, group_depth, tile_cols * group_depth, out, w.rows, rows,
                      accumulate);
              break;
            case 2:
              tile<2>(wp, groups, xt, group_depth, tile_cols * group_depth, out, w.rows, rows,
                      accumulate);
              break;
            default:
              tile<1>(wp, groups, xt, group_depth, tile_cols * group_depth, out, w.rows, rows,
                      accumulate);
              break;
          }
        }
      }
    }
  }
}

/// out = clamp(zero_point + M_c·(acc + bias[c]), act_min, act_max), 8 rows at a time; the
/// per-row parameters are unpacked into lanes for 64 rows at a time, on the stack, and a block of
/// rows whose multipliers are all below 1 takes the shorter road.
EDGESCALE_QUANT_AVX2 inline void requantize_s8(const std::int32_t* acc, Index m, Index n,
                                               const std::int32_t* bias, const Multiplier* mult,
                                               std::int32_t zero_point, std::int32_t act_min,
                                               std::int32_t act_max, std::int8_t* out) {
  using namespace detail;
  RequantizeRows p;
  if (m % tile_rows != 0 && n > 1) {
    const Index period = std::lcm(m, tile_rows);
    if (period <= requantize_rows) {
      if (unpack_period(bias, mult, m, period, p)) {
        requantize_flat<true>(acc, m * n, period, p, zero_point, act_min, act_max, out);
      } else {
        requantize_flat<false>(acc, m * n, period, p, zero_point, act_min, act_max, out);
      }
      return;
    }
  }
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i zero = _mm256_setzero_si256();
  for (Index c0 = 0; c0 < m; c0 += requantize_rows) {
    const Index chunk = std::min(requantize_rows, m - c0);
    // Unpack 8 rows at a time: two loads of 4 interleaved (value, shift) pairs, deinterleaved.
    __m256i general = zero;
    for (Index r = 0; r < chunk; r += tile_rows) {
      const auto rows = static_cast<int>(std::min(tile_rows, chunk - r));
      const __m256i in = _mm256_cmpgt_epi32(_mm256_set1_epi32(rows), lane);
      const auto* pairs = reinterpret_cast<const int*>(mult + c0 + r);
      const __m256i pair_lane = _mm256_srli_epi32(lane, 1);  // row of each int of a pair load
      const __m256i first =
          _mm256_maskload_epi32(pairs, _mm256_cmpgt_epi32(_mm256_set1_epi32(rows), pair_lane));
      const __m256i second =
          rows > 4 ? _mm256_maskload_epi32(
                         pairs + 8, _mm256_cmpgt_epi32(_mm256_set1_epi32(rows - 4), pair_lane))
                   : zero;
      const __m256i split = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
      const __m256i a = _mm256_permutevar8x32_epi32(first, split);   // v0-v3 s0-s3
      const __m256i b = _mm256_permutevar8x32_epi32(second, split);  // v4-v7 s4-s7
      const __m256i value = _mm256_permute2x128_si256(a, b, 0x20);
      const __m256i shift = _mm256_permute2x128_si256(a, b, 0x31);
      const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
      const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
      store_lanes(p.bias + r, _mm256_maskload_epi32(bias + c0 + r, in));
      store_lanes(p.value + r, value);
      store_lanes(p.value_odd + r, _mm256_shuffle_epi32(value, 0xF5));
      store_lanes(p.left + r, _mm256_max_epi32(shift, zero));
      store_lanes(p.right + r, right);
      store_lanes(p.mask + r, mask);
      store_lanes(p.half + r, _mm256_srai_epi32(mask, 1));
      // A left shift or the multiplier −2³¹ needs the general road (see
      // multiply_by_quantized_multiplier).
      const __m256i int_min = _mm256_set1_epi32(std::numeric_limits<std::int32_t>::min());
      const __m256i special =
          _mm256_or_si256(_mm256_cmpgt_epi32(shift, zero), _mm256_cmpeq_epi32(value, int_min));
      general = _mm256_or_si256(general, _mm256_and_si256(in, special));
    }
    if (_mm256_testz_si256(general, general) == 0) {
      requantize_rows_of<true>(acc + c0, m, n, chunk, p, zero_point, act_min, act_max, out + c0);
    } else {
      requantize_rows_of<false>(acc + c0, m, n, chunk, p, zero_point, act_min, act_max, out + c0);
    }
  }
}

/// portable::quantize_s8 eight floats at a time: IEEE division, NaN to 0 by an ordered compare,
/// the clamp to ±1024, vroundps to nearest even (exact: the same value as the portable rounding),
/// the zero point, the clamp to the codes, then packing to bytes; the tail goes through the
/// portable code.
EDGESCALE_QUANT_AVX2 inline void quantize_s8(const float* x, Index n, float scale,
                                             std::int32_t zero_point, std::int32_t qmin,
                                             std::int32_t qmax, std::int8_t* out) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256 limit = _mm256_set1_ps(1024.0F);
  const __m256 neg_limit = _mm256_set1_ps(-1024.0F);
  const __m256 z = _mm256_set1_ps(static_cast<float>(zero_point));
  const __m256 lo = _mm256_set1_ps(static_cast<float>(qmin));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(qmax));
  Index i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), s);
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    v = _mm256_min_ps(_mm256_max_ps(v, neg_limit), limit);
    v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, z), lo), hi);
    const __m256i w = _mm256_cvttps_epi32(v);
    const __m128i words =
        _mm_packs_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), _mm_packs_epi16(words, words));
  }
  portable::quantize_s8(x + i, n - i, scale, zero_point, qmin, qmax, out + i);
}

}  // namespace edgescale::quant::kernels::avx2

#undef EDGESCALE_QUANT_AVX2
#endif  // EDGESCALE_QUANT_X86_KERNELS
