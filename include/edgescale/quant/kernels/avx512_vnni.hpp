// edgescale/quant/kernels/avx512_vnni.hpp — the int8 GEMM and requantization for AVX-512 VNNI,
// bit for bit equal to kernels/portable.hpp.
//
//   quant::gemm_s8<quant::GemmPath::avx512_vnni>(packed, x, n, acc);   // quant/gemm_s8.hpp
//
//   acc[c, j] = Σ_k W[c, k]·(x[k, j] + 128) − 128·Σ_k W[c, k]        (DESIGN §3c)
// vpdpbusd multiplies unsigned by signed bytes and adds groups of 4 into int32 lanes: x + 128 is
// x XOR 0x80 read as uint8, and one 64-byte packed group (16 rows x 4 depths) is its signed
// operand as it is. The first sum stays below 255·128·K ≤ 2³¹ − 1 for K ≤ 65536
// (kernels::max_depth), so both sums and their difference are exact in int32.
//
// Blocking: x is packed per call as x XOR 0x80 into a 16 KB stack buffer. The depth is cut into
// equal blocks of at most 256 groups (1024 depths), and a block of x is as many whole 8-column
// tiles as the buffer holds at that depth: K = 1024 is one depth block of 16 columns, K = 300 one
// of 48, so up to K = 1024 each output is stored once rather than accumulated across depth blocks.
// Whole tiles are packed by 8 x 8 transposes of 4-byte words; the weights are read from the packed
// panels as they are. The register tile is 48 rows (3 panels) x 8 columns: 24 named zmm
// accumulators, 3 weight registers, broadcasts from memory (11 loads per 24 vpdpbusd); the rows
// end in tiles of 2 + 2 panels rather than 3 + 1. K ≤ 256 over several columns takes x unpacked
// (`shallow`), 64 columns per block. With 1 or 2 columns (a batch of one) the tile is 64 rows
// (4 panels) instead, so 4 or 8 independent vpdpbusd chains hide its latency while the panels
// stream once.
//
// Compiled on any x86-64 target through
// __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))): only called when the CPU has
// them (quant::gemm_path_supported).
#pragma once

#include <edgescale/core/tensor.hpp>
#include <edgescale/quant/fixed_point.hpp>
#include <edgescale/quant/kernels/avx2.hpp>
#include <edgescale/quant/kernels/intrinsics.hpp>
#include <edgescale/quant/kernels/portable.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>

#if EDGESCALE_QUANT_X86_KERNELS

#define EDGESCALE_QUANT_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

namespace edgescale::quant::kernels::avx512_vnni {
namespace detail {

inline constexpr Index tile_cols = 8;           // columns of x per register tile
inline constexpr Index tile_panels = 3;         // panels per register tile (48 rows)
inline constexpr Index buffer_bytes = 16384;    // the stack buffer of x (+ 64 bytes of tail)
inline constexpr Index max_block_groups = 256;  // groups of 4 depths per packed block, at most
inline constexpr Index shallow_cols = 64;       // columns per block of the shallow path

/// r[0, 8) (8 words each) transposed in place: word q of r[c] becomes word c of r[q].
EDGESCALE_QUANT_VNNI inline void transpose8x8(__m256i* r) {
  const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]);
  const __m256i t1 = _mm256_unpackhi_epi32(r[0], r[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]);
  const __m256i t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]);
  const __m256i t5 = _mm256_unpackhi_epi32(r[4], r[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]);
  const __m256i t7 = _mm256_unpackhi_epi32(r[6], r[7]);
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2);
  const __m256i u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3);
  const __m256i u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i u4 = _mm256_unpacklo_epi64(t4, t6);
  const __m256i u5 = _mm256_unpackhi_epi64(t4, t6);
  const __m256i u6 = _mm256_unpacklo_epi64(t5, t7);
  const __m256i u7 = _mm256_unpackhi_epi64(t5, t7);
  r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
  r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
  r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/// Packs columns [0, cols) of x (leading dimension depth), groups [g0, g0 + groups), as x XOR
/// 0x80 in tiles of 8 columns: tile i, group t, column c at xp[i·tile_step + (t·8 + c)·4]
/// (tile_step = 32·groups). Whole tiles take 8 groups at a time by an 8 x 8 transpose of words;
/// the rest (columns of a last partial tile, groups past the last 8 inside the depth) goes word by
/// word. Depths past K meet zero weights; they are packed as 0.
EDGESCALE_QUANT_VNNI inline void pack_x(const std::int8_t* x, Index depth, Index g0, Index groups,
                                        Index cols, std::uint8_t* xp) {
  const Index tile_step = groups * tile_cols * group_depth;
  const Index full = std::min(groups, depth / group_depth - g0);  // groups inside the depth
  const Index vector_groups = full / 8 * 8;
  const Index vector_cols = cols / tile_cols * tile_cols;
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (Index c0 = 0; c0 < vector_cols; c0 += tile_cols) {
    const std::int8_t* src = x + c0 * depth + g0 * group_depth;
    std::uint8_t* dst = xp + (c0 / tile_cols) * tile_step;
    for (Index t = 0; t < vector_groups; t += 8) {
      __m256i r[8];
      for (int c = 0; c < 8; ++c) {
        r[c] = _mm256_xor_si256(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + c * depth + t * 4)), flip);
      }
      transpose8x8(r);
      for (int q = 0; q < 8; ++q) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(dst + (t + q) * 32), r[q]);
      }
    }
  }
  for (Index c = 0; c < cols; ++c) {
    const std::int8_t* src = x + c * depth + g0 * group_depth;
    std::uint8_t* dst = xp + (c / tile_cols) * tile_step + (c % tile_cols) * group_depth;
    for (Index t = c < vector_cols ? vector_groups : 0; t < full; ++t) {
      std::uint32_t word = 0;
      std::memcpy(&word, src + t * group_depth, sizeof word);
      word ^= 0x80808080U;
      std::memcpy(dst + t * tile_cols * group_depth, &word, sizeof word);
    }
    for (Index t = full; t < groups; ++t) {
      const Index left = depth - (g0 + t) * group_depth;
      for (Index q = 0; q < group_depth; ++q) {
        dst[t * tile_cols * group_depth + q] =
            q < left ? static_cast<std::uint8_t>(src[t * group_depth + q] ^ 0x80) : 0;
      }
    }
  }
}

/// out[0, rows) (+)= one panel column of the tile; the first depth block (accumulate false) also
/// takes away 128·Σ_k W[c, k].
EDGESCALE_QUANT_VNNI inline void store_column(__m512i sums, const std::int32_t* row_sums,
                                              std::int32_t* out, Index rows, bool accumulate) {
  const auto mask = static_cast<__mmask16>((1U << rows) - 1U);
  if (accumulate) {
    sums = _mm512_add_epi32(sums, _mm512_maskz_loadu_epi32(mask, out));
  } else {
    sums = _mm512_sub_epi32(sums, _mm512_slli_epi32(_mm512_loadu_si512(row_sums), 7));
  }
  _mm512_mask_storeu_epi32(out, mask, sums);
}

EDGESCALE_QUANT_VNNI inline __m512i broadcast_word(const std::uint8_t* p) {
  std::int32_t word = 0;
  std::memcpy(&word, p, sizeof word);
  return _mm512_set1_epi32(word);
}

// Column c of the register tile: one broadcast of x's 4 bytes, a vpdpbusd per panel.
#define EDGESCALE_QUANT_VNNI_COLUMN(c)              \
  if constexpr (Cols > (c)) {                       \
    const __m512i b = broadcast_word(xp + (c)*ldx); \
    a0##c = _mm512_dpbusd_epi32(a0##c, b, w0);      \
    if constexpr (Panels > 1) {                     \
      a1##c = _mm512_dpbusd_epi32(a1##c, b, w1);    \
    }                                               \
    if constexpr (Panels > 2) {                     \
      a2##c = _mm512_dpbusd_epi32(a2##c, b, w2);    \
    }                                               \
    if constexpr (Panels > 3) {                     \
      a3##c = _mm512_dpbusd_epi32(a3##c, b, w3);    \
    }                                               \
  }
#define EDGESCALE_QUANT_VNNI_STORE_PANEL(p, c)                                                 \
  if constexpr (Panels > (p)) {                                                                \
    const Index rows_p = std::min(panel_rows, rows - (p)*panel_rows);                          \
    if (rows_p > 0) {                                                                          \
      store_column(a##p##c, row_sums + (p)*panel_rows, out + (c)*ldo + (p)*panel_rows, rows_p, \
                   accumulate);                                                                \
    }                                                                                          \
  }
#define EDGESCALE_QUANT_VNNI_STORE(c)      \
  if constexpr (Cols > (c)) {              \
    EDGESCALE_QUANT_VNNI_STORE_PANEL(0, c) \
    EDGESCALE_QUANT_VNNI_STORE_PANEL(1, c) \
    EDGESCALE_QUANT_VNNI_STORE_PANEL(2, c) \
    EDGESCALE_QUANT_VNNI_STORE_PANEL(3, c) \
  }

/// The register tile: out (16·Panels rows x Cols columns, leading dimension ldo; `rows` of them
/// written) (+)= the product of `groups` groups of Panels consecutive panels (w: the first
/// panel's first group; panels `stride` bytes apart) and a packed tile of x.
/// x's 4 bytes of column c, group t are at xp + c·ldx + t·step: the packed tiles (ldx = 4,
/// step = 32) or x XOR 0x80 as it is laid out (ldx = K, step = 4).
/// Its end stays one guarded store_column per accumulator: with a branch-free end (row masks
/// computed once, or accumulate a template parameter) g++ 12 moves or spills the 24 accumulators
/// of a 3-panel tile inside the loop.
template <int Panels, int Cols>
EDGESCALE_QUANT_VNNI inline void tile(const std::int8_t* w, Index stride, Index groups,
                                      const std::uint8_t* xp, Index ldx, Index step,
                                      const std::int32_t* row_sums, std::int32_t* out, Index ldo,
                                      Index rows, bool accumulate) {
  [[maybe_unused]] __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00, a04 = a00,
                           a05 = a00, a06 = a00, a07 = a00;
  [[maybe_unused]] __m512i a10 = a00, a11 = a00, a12 = a00, a13 = a00, a14 = a00, a15 = a00,
                           a16 = a00, a17 = a00;
  [[maybe_unused]] __m512i a20 = a00, a21 = a00, a22 = a00, a23 = a00, a24 = a00, a25 = a00,
                           a26 = a00, a27 = a00;
  [[maybe_unused]] __m512i a30 = a00, a31 = a00, a32 = a00, a33 = a00, a34 = a00, a35 = a00,
                           a36 = a00, a37 = a00;
  for (Index t = 0; t < groups; ++t) {
    [[maybe_unused]] __m512i w1, w2, w3;
    const __m512i w0 = _mm512_load_si512(w);
    if constexpr (Panels > 1) {
      w1 = _mm512_load_si512(w + stride);
    }
    if constexpr (Panels > 2) {
      w2 = _mm512_load_si512(w + 2 * stride);
    }
    if constexpr (Panels > 3) {
      w3 = _mm512_load_si512(w + 3 * stride);
    }
    EDGESCALE_QUANT_VNNI_COLUMN(0)
    EDGESCALE_QUANT_VNNI_COLUMN(1)
    EDGESCALE_QUANT_VNNI_COLUMN(2)
    EDGESCALE_QUANT_VNNI_COLUMN(3)
    EDGESCALE_QUANT_VNNI_COLUMN(4)
    EDGESCALE_QUANT_VNNI_COLUMN(5)
    EDGESCALE_QUANT_VNNI_COLUMN(6)
    EDGESCALE_QUANT_VNNI_COLUMN(7)
    w += group_bytes;
    xp += step;
  }
  EDGESCALE_QUANT_VNNI_STORE(0)
  EDGESCALE_QUANT_VNNI_STORE(1)
  EDGESCALE_QUANT_VNNI_STORE(2)
  EDGESCALE_QUANT_VNNI_STORE(3)
  EDGESCALE_QUANT_VNNI_STORE(4)
  EDGESCALE_QUANT_VNNI_STORE(5)
  EDGESCALE_QUANT_VNNI_STORE(6)
  EDGESCALE_QUANT_VNNI_STORE(7)
}

#undef EDGESCALE_QUANT_VNNI_COLUMN
#undef EDGESCALE_QUANT_VNNI_STORE_PANEL
#undef EDGESCALE_QUANT_VNNI_STORE

/// A batch of 1 or 2 columns: every row in tiles of up to 4 panels (4 or 8 vpdpbusd chains).
template <int Cols>
EDGESCALE_QUANT_VNNI inline void thin(const PackedView& w, Index g0, Index groups,
                                      const std::uint8_t* xt, Index ldx, Index step,
                                      std::int32_t* out, bool accumulate) {
  const Index stride = w.groups * group_bytes;
  for (Index p = 0; p < w.panels; p += 4) {
    const std::int8_t* wp = w.data + p * stride + g0 * group_bytes;
    const std::int32_t* sums = w.row_sums + p * panel_rows;
    std::int32_t* o = out + p * panel_rows;
    const Index rows = w.rows - p * panel_rows;
    switch (std::min<Index>(4, w.panels - p)) {
      case 4:
        tile<4, Cols>(wp, stride, groups, xt, ldx, step, sums, o, w.rows, rows, accumulate);
        break;
      case 3:
        tile<3, Cols>(wp, stride, groups, xt, ldx, step, sums, o, w.rows, rows, accumulate);
        break;
      case 2:
        tile<2, Cols>(wp, stride, groups, xt, ldx, step, sums, o, w.rows, rows, accumulate);
        break;
      default:
        tile<1, Cols>(wp, stride, groups, xt, ldx, step, sums, o, w.rows, rows, accumulate);
        break;
    }
  }
}

/// Panels consecutive panels (from w, stride bytes apart) against every column tile of a packed
/// block of `cols` columns: the panels' groups (up to 48 KB) stay in L1 or L2 while the tiles of
/// x go by.
/// x as in tile: the packed tiles (ldx = 4, step = 32, tiles 32·groups apart) or x as it is
/// (ldx = K, step = 4, tiles 8·K apart).
template <int Panels>
EDGESCALE_QUANT_VNNI inline void wide(const std::int8_t* w, Index stride, Index groups,
                                      const std::uint8_t* xp, Index ldx, Index step,
                                      Index tile_step, Index cols, const std::int32_t* row_sums,
                                      std::int32_t* out, Index ldo, Index rows, bool accumulate) {
  for (Index jt = 0; jt < cols; jt += tile_cols) {
    const std::uint8_t* xt = xp + (jt / tile_cols) * tile_step;
    std::int32_t* o = out + jt * ldo;
    switch (std::min(tile_cols, cols - jt)) {
      case 8:
        tile<Panels, 8>(w, stride, groups, xt, ldx, step, row_sums, o, ldo, rows, accumulate);
        break;
      case 7:
        tile<Panels, 7>(w, stride, groups, xt, ldx, step, row_sums, o, ldo, rows, accumulate);
        break;
      case 6:
        tile<Panels, 6>(w, stride, groups, xt, ldx, step, row_sums, o, ldo, rows, accumulate);
        break;
      case 5:
        tile<Panels, 5>(w, stride, groups, xt, ldx, step, row_sums, o, ldo, rows, accumulate);
        break;
      case 4:
        tile<Panels, 4>(w, stride, groups, xt, ldx, step, row_sums, o, ldo, rows, accumulate);
        break;
      case 3:
        tile<Panels, 3>(w, stride, groups, xt, ldx, step, row_sums, o, ldo, rows, accumulate);
        break;
      case 2:
        tile<Panels, 2>(w, stride, groups, xt, ldx, step, row_sums, o, ldo, rows, accumulate);
        break;
      default:
        tile<Panels, 1>(w, stride, groups, xt, ldx, step, row_sums, o, ldo, rows, accumulate);
        break;
    }
  }
}

/// Every panel against a block of `cols` columns of x (as in wide), in register tiles of 3 panels
/// (48 rows, 24 accumulators: 3 weight loads and 8 broadcasts per 24 vpdpbusd) that end in 2 + 2
/// panels rather than 3 + 1, whose single panel would load a broadcast per vpdpbusd.
EDGESCALE_QUANT_VNNI inline void all_panels(const PackedView& w, Index g0, Index groups,
                                            const std::uint8_t* xp, Index ldx, Index step,
                                            Index tile_step, Index cols, std::int32_t* out,
                                            bool accumulate) {
  const Index stride = w.groups * group_bytes;
  for (Index p = 0; p < w.panels;) {
    const Index left = w.panels - p;
    const Index panels = left == 4 || left == 2 ? 2 : std::min(tile_panels, left);
    const std::int8_t* wp = w.data + p * stride + g0 * group_bytes;
    const std::int32_t* sums = w.row_sums + p * panel_rows;
    std::int32_t* o = out + p * panel_rows;
    const Index rows = w.rows - p * panel_rows;
    switch (panels) {
      case 3:
        wide<3>(wp, stride, groups, xp, ldx, step, tile_step, cols, sums, o, w.rows, rows,
                accumulate);
        break;
      case 2:
        wide<2>(wp, stride, groups, xp, ldx, step, tile_step, cols, sums, o, w.rows, rows,
                accumulate);
        break;
      default:
        wide<1>(wp, stride, groups, xp, ldx, step, tile_step, cols, sums, o, w.rows, rows,
                accumulate);
        break;
    }
    p += panels;
  }
}

/// xp[0, bytes) = src XOR 0x80, and 0 in the 64 bytes after (bytes + 64 written).
EDGESCALE_QUANT_VNNI inline void flip_copy(const std::int8_t* src, Index bytes, std::uint8_t* xp) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  Index i = 0;
  for (; i + 64 <= bytes; i += 64) {
    _mm512_storeu_si512(xp + i, _mm512_xor_si512(_mm512_loadu_si512(src + i), flip));
  }
  // The tail's vector (zero past the block) also writes the 3 bytes a last group may read.
  const Index rest = bytes - i;
  const auto tail = static_cast<__mmask64>(rest == 0 ? 0 : ~std::uint64_t{0} >> (64 - rest));
  _mm512_storeu_si512(
      xp + i,
      _mm512_maskz_mov_epi8(tail, _mm512_xor_si512(_mm512_maskz_loadu_epi8(tail, src + i), flip)));
}

/// Depth up to which several columns take `shallow`: 64 columns of it fill the buffer of x.
inline constexpr Index shallow_depth = buffer_bytes / shallow_cols;

/// Shallow products (K ≤ 256: convolutions' im2col patches, whose columns are many and short)
/// over n > 2 columns: x is not repacked per group but copied in blocks of 64 columns as it is
/// (column-major, XOR 0x80, one vector instruction per 64 bytes), and the tiles broadcast each
/// column's 4 bytes from there; the whole depth is one block. A last partial group reads up to 3
/// bytes past its column (the next column's, or 0 after the block), which meet zero weights.
EDGESCALE_QUANT_VNNI inline void shallow(const PackedView& w, const std::int8_t* x, Index n,
                                         std::int32_t* acc, std::uint8_t* xp) {
  for (Index j0 = 0; j0 < n; j0 += shallow_cols) {
    const Index cols = std::min(shallow_cols, n - j0);
    const Index bytes = cols * w.depth;
    flip_copy(x + j0 * w.depth, bytes, xp);
    all_panels(w, 0, w.groups, xp, w.depth, group_depth, tile_cols * w.depth, cols,
               acc + j0 * w.rows, false);
  }
}

/// Deeper products (K > 256), and batches of one or two too deep for one pass: x packed block by
/// block (pack_x), the depth in equal blocks of at most 256 groups (1024 deep) and as many whole
/// tiles of columns as fill the buffer (at least one).
EDGESCALE_QUANT_VNNI inline void packed(const PackedView& w, const std::int8_t* x, Index n,
                                        std::int32_t* acc, std::uint8_t* xp) {
  const Index depth_blocks = (w.groups + max_block_groups - 1) / max_block_groups;
  const Index block_groups = (w.groups + depth_blocks - 1) / depth_blocks;
  const Index tile_bytes = block_groups * tile_cols * group_depth;
  const Index block_cols = std::max<Index>(1, buffer_bytes / tile_bytes) * tile_cols;
  for (Index j0 = 0; j0 < n; j0 += block_cols) {
    const Index cols = std::min(block_cols, n - j0);
    for (Index g0 = 0; g0 < w.groups; g0 += block_groups) {
      const Index groups = std::min(block_groups, w.groups - g0);
      pack_x(x + j0 * w.depth, w.depth, g0, groups, cols, xp);
      const bool accumulate = g0 > 0;
      std::int32_t* out = acc + j0 * w.rows;
      if (cols == 1) {
        thin<1>(w, g0, groups, xp, group_depth, tile_cols * group_depth, out, accumulate);
      } else if (cols == 2) {
        thin<2>(w, g0, groups, xp, group_depth, tile_cols * group_depth, out, accumulate);
      } else {
        all_panels(w, g0, groups, xp, group_depth, tile_cols * group_depth,
                   groups * tile_cols * group_depth, cols, out, accumulate);
      }
    }
  }
}

}  // namespace detail

/// acc (M x n, column-major) = W · x (x: K x n, column-major), exact in int32.
EDGESCALE_QUANT_VNNI inline void gemm_s8(const PackedView& w, const std::int8_t* x, Index n,
                                         std::int32_t* acc) {
  using namespace detail;
  alignas(64) std::uint8_t xp[buffer_bytes + 64];
  if (n > 2 && w.depth <= shallow_depth) {
    shallow(w, x, n, acc, xp);
    return;
  }
  if (n <= 2 && n * w.depth <= buffer_bytes) {
    // A batch of one or two (up to 8192 deep): x copied as it is, the whole depth in one pass, so
    // each panel streams once and the accumulators stay in registers.
    flip_copy(x, n * w.depth, xp);
    if (n == 1) {
      thin<1>(w, 0, w.groups, xp, w.depth, group_depth, acc, false);
    } else {
      thin<2>(w, 0, w.groups, xp, w.depth, group_depth, acc, false);
    }
    return;
  }
  packed(w, x, n, acc, xp);
}

namespace detail {

/// avx2::detail::multiply_by_quantized_multiplier on 16 lanes (entries i .. i + 16 of p).
template <bool General>
EDGESCALE_QUANT_VNNI inline __m512i multiply_by_quantized_multiplier(
    __m512i x, const avx2::detail::RequantizeRows& p, Index i) {
  const __m512i int_max = _mm512_set1_epi32(std::numeric_limits<std::int32_t>::max());
  const __m512i int_min = _mm512_set1_epi32(std::numeric_limits<std::int32_t>::min());
  const __m512i value = _mm512_loadu_si512(p.value + i);
  if constexpr (General) {
    const __m512i left = _mm512_loadu_si512(p.left + i);
    const __m512i shifted = _mm512_sllv_epi32(x, left);
    const __mmask16 kept = _mm512_cmpeq_epi32_mask(_mm512_srav_epi32(shifted, left), x);
    const __m512i saturated = _mm512_xor_si512(_mm512_srai_epi32(x, 31), int_max);
    x = _mm512_mask_blend_epi32(kept, saturated, shifted);
  }
  const __m512i nudge = _mm512_set1_epi64(std::int64_t{1} << 30);
  const __m512i even = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, value), nudge), 31);
  const __m512i odd = _mm512_slli_epi64(
      _mm512_add_epi64(
          _mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_loadu_si512(p.value_odd + i)), nudge),
      1);
  __m512i high = _mm512_mask_blend_epi32(0xAAAA, even, odd);
  if constexpr (General) {
    const __mmask16 overflow =
        _mm512_cmpeq_epi32_mask(x, int_min) & _mm512_cmpeq_epi32_mask(value, int_min);
    high = _mm512_mask_mov_epi32(high, overflow, int_max);
  }
  const __m512i remainder = _mm512_and_si512(high, _mm512_loadu_si512(p.mask + i));
  const __m512i threshold =
      _mm512_sub_epi32(_mm512_loadu_si512(p.half + i), _mm512_srai_epi32(high, 31));
  const __m512i quotient = _mm512_srav_epi32(high, _mm512_loadu_si512(p.right + i));
  return _mm512_mask_add_epi32(quotient, _mm512_cmpgt_epi32_mask(remainder, threshold), quotient,
                               _mm512_set1_epi32(1));
}

/// The stream acc[0, total) to out, entry i with the parameters of p at i mod period (a multiple
/// of 16).
template <bool General>
EDGESCALE_QUANT_VNNI inline void requantize_stream(const std::int32_t* acc, Index total,
                                                   Index period,
                                                   const avx2::detail::RequantizeRows& p,
                                                   std::int32_t zero_point, std::int32_t act_min,
                                                   std::int32_t act_max, std::int8_t* out) {
  const __m512i lo = _mm512_set1_epi32(act_min - zero_point);
  const __m512i hi = _mm512_set1_epi32(act_max - zero_point);
  const __m512i zero = _mm512_set1_epi32(zero_point);
  for (Index i0 = 0; i0 < total; i0 += period) {
    for (Index r = 0; r < period && i0 + r < total; r += 16) {
      const Index left = total - i0 - r;
      const auto mask =
          static_cast<__mmask16>(left >= 16 ? 0xFFFFU : (1U << static_cast<unsigned>(left)) - 1U);
      __m512i v = _mm512_add_epi32(_mm512_maskz_loadu_epi32(mask, acc + i0 + r),
                                   _mm512_loadu_si512(p.bias + r));
      v = multiply_by_quantized_multiplier<General>(v, p, r);
      v = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi), zero);
      _mm512_mask_cvtepi32_storeu_epi8(out + i0 + r, mask, v);
    }
  }
}

/// One column (n = 1), 16 rows at a time with the parameters unpacked in registers (no table):
/// (value, shift) pairs deinterleaved by two permutes, then the general road where a lane needs
/// it.
EDGESCALE_QUANT_VNNI inline void requantize_column(const std::int32_t* acc, Index m,
                                                   const std::int32_t* bias, const Multiplier* mult,
                                                   std::int32_t zero_point, std::int32_t act_min,
                                                   std::int32_t act_max, std::int8_t* out) {
  const __m512i lo = _mm512_set1_epi32(act_min - zero_point);
  const __m512i hi = _mm512_set1_epi32(act_max - zero_point);
  const __m512i zero_point_v = _mm512_set1_epi32(zero_point);
  const __m512i zero = _mm512_setzero_si512();
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i int_max = _mm512_set1_epi32(std::numeric_limits<std::int32_t>::max());
  const __m512i int_min = _mm512_set1_epi32(std::numeric_limits<std::int32_t>::min());
  const __m512i nudge = _mm512_set1_epi64(std::int64_t{1} << 30);
  const __m512i evens =
      _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const auto* pairs = reinterpret_cast<const std::int32_t*>(mult);
  for (Index r = 0; r < m; r += 16) {
    const Index left_rows = m - r;
    const auto mask = static_cast<__mmask16>(
        left_rows >= 16 ? 0xFFFFU : (1U << static_cast<unsigned>(left_rows)) - 1U);
    const auto mask_lo = static_cast<__mmask16>(
        left_rows >= 8 ? 0xFFFFU : (1U << static_cast<unsigned>(2 * left_rows)) - 1U);
    const auto mask_hi = static_cast<__mmask16>(
        left_rows >= 16
            ? 0xFFFFU
            : (left_rows <= 8 ? 0U : (1U << static_cast<unsigned>(2 * (left_rows - 8))) - 1U));
    const __m512i first = _mm512_maskz_loadu_epi32(mask_lo, pairs + 2 * r);
    const __m512i second = _mm512_maskz_loadu_epi32(mask_hi, pairs + 2 * r + 16);
    const __m512i value = _mm512_permutex2var_epi32(first, evens, second);
    const __m512i shift = _mm512_permutex2var_epi32(first, odds, second);
    const __m512i right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
    const __m512i low_bits = _mm512_sub_epi32(_mm512_sllv_epi32(one, right), one);
    __m512i x = _mm512_add_epi32(_mm512_maskz_loadu_epi32(mask, acc + r),
                                 _mm512_maskz_loadu_epi32(mask, bias + r));
    const __mmask16 special =
        _mm512_cmpgt_epi32_mask(shift, zero) | _mm512_cmpeq_epi32_mask(value, int_min);
    if (special != 0) {
      const __m512i left = _mm512_max_epi32(shift, zero);
      const __m512i shifted = _mm512_sllv_epi32(x, left);
      const __mmask16 kept = _mm512_cmpeq_epi32_mask(_mm512_srav_epi32(shifted, left), x);
      const __m512i saturated = _mm512_xor_si512(_mm512_srai_epi32(x, 31), int_max);
      x = _mm512_mask_blend_epi32(kept, saturated, shifted);
    }
    const __m512i even = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, value), nudge), 31);
    const __m512i odd = _mm512_slli_epi64(
        _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(value, 32)),
                         nudge),
        1);
    __m512i high = _mm512_mask_blend_epi32(0xAAAA, even, odd);
    if (special != 0) {
      const __mmask16 overflow =
          _mm512_cmpeq_epi32_mask(x, int_min) & _mm512_cmpeq_epi32_mask(value, int_min);
      high = _mm512_mask_mov_epi32(high, overflow, int_max);
    }
    const __m512i remainder = _mm512_and_si512(high, low_bits);
    const __m512i threshold =
        _mm512_sub_epi32(_mm512_srai_epi32(low_bits, 1), _mm512_srai_epi32(high, 31));
    const __m512i quotient = _mm512_srav_epi32(high, right);
    __m512i v = _mm512_mask_add_epi32(quotient, _mm512_cmpgt_epi32_mask(remainder, threshold),
                                      quotient, one);
    v = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi), zero_point_v);
    _mm512_mask_cvtepi32_storeu_epi8(out + r, mask, v);
  }
}

}  // namespace detail

/// Requantization: several columns of rows whose period lcm(m, 16) is at most 64 (convolutions'
/// few output channels over many pixels) go by as one stream of 16-lane vectors (only the last
/// one partial); other shapes take the AVX2 kernel (M·N work beside the product's M·N·K).
EDGESCALE_QUANT_VNNI inline void requantize_s8(const std::int32_t* acc, Index m, Index n,
                                               const std::int32_t* bias, const Multiplier* mult,
                                               std::int32_t zero_point, std::int32_t act_min,
                                               std::int32_t act_max, std::int8_t* out) {
  const Index period = std::lcm(m, Index{16});
  if (n > 1 && period <= avx2::detail::requantize_rows) {
    avx2::detail::RequantizeRows p;
    if (avx2::detail::unpack_period(bias, mult, m, period, p)) {
      detail::requantize_stream<true>(acc, m * n, period, p, zero_point, act_min, act_max, out);
    } else {
      detail::requantize_stream<false>(acc, m * n, period, p, zero_point, act_min, act_max, out);
    }
    return;
  }
  if (n == 1) {
    detail::requantize_column(acc, m, bias, mult, zero_point, act_min, act_max, out);
    return;
  }
  avx2::requantize_s8(acc, m, n, bias, mult, zero_point, act_min, act_max, out);
}

/// Input quantization: the AVX2 kernel (n work beside a layer's M·N·K).
EDGESCALE_QUANT_VNNI inline void quantize_s8(const float* x, Index n, float scale,
                                             std::int32_t zero_point, std::int32_t qmin,
                                             std::int32_t qmax, std::int8_t* out) {
  avx2::quantize_s8(x, n, scale, zero_point, qmin, qmax, out);
}

}  // namespace edgescale::quant::kernels::avx512_vnni

#undef EDGESCALE_QUANT_VNNI
#endif  // EDGESCALE_QUANT_X86_KERNELS
