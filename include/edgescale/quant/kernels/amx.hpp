// edgescale/quant/kernels/amx.hpp — the int8 GEMM on Intel AMX tiles (AMX-TILE, AMX-INT8: Sapphire
// Rapids and later Xeons), bit for bit equal to kernels/portable.hpp.
//
//   quant::gemm_s8<quant::GemmPath::amx>(packed, x, n, acc);   // quant/gemm_s8.hpp
//
// One TDPBSSD multiplies a 16 x 64 int8 tile by a 64 x 16 int8 tile into a 16 x 16 int32 tile:
// 16 384 multiply-adds of signed bytes, exact in int32 (no offset, unlike vpdpbusd). The kernel
// computes accᵀ = xᵀ·Wᵀ, which is how the operands already lie:
//   A (xᵀ): 16 samples x 64 depths — x's columns are samples, contiguous in depth;
//   B (Wᵀ): 16 groups of 4 depths x 16 output rows — exactly 16 consecutive 64-byte groups of one
//           PackedS8 panel (stride 64): the packed layout is AMX's "VNNI" B layout as it is;
//   C:      16 samples x 16 output rows, which are 16 consecutive int32 of acc's column j (stride
//           4·M).
// Register blocking: 2 x 2 tiles (tmm0..3 accumulate 32 samples x 32 rows, tmm4/5 hold A, tmm6/7
// hold B), one depth step of 64 per 4 TDPBSSD. Blocks of 32 samples x 1024 depths of x are copied
// into a 32 KB stack buffer as whole A tiles, each 1 KB contiguous (a tile of x read in place, 16
// rows K bytes apart, ran 1024³ 25 % slower), zero beyond the depth and the samples; a last depth
// step past the panel's groups meets those zeros (PackedS8 keeps 16 zero groups after the last
// panel, so the read stays inside it). Partial C tiles (M or N not a multiple of 16) go through a
// 1 KB stack tile. Deeper products than 1024 accumulate in acc.
//
// Products the tiles do not pay for (amx::worth_tiles: fewer than 16 columns, where a batch of one
// would waste 15 of a tile's 16 rows; depths of 32 or less; tiny products) take the AVX-512 VNNI
// kernel, as does a process the OS does not let use AMX.
//
// AMX needs the operating system's consent: Linux (5.16 and later) grants a process the tile state
// through arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), asked once (amx::available) before
// the first tile instruction. The kernel loads its tile configuration on entry and releases the
// tiles on exit (TILERELEASE), so a thread outside gemm_s8 carries no tile state.
//
// Compiled on any x86-64 target through __attribute__((target("amx-tile,amx-int8,avx512f,..."))):
// only called when the CPU has them (quant::gemm_path_supported).
#pragma once

#include <edgescale/core/tensor.hpp>
#include <edgescale/quant/kernels/avx512_vnni.hpp>
#include <edgescale/quant/kernels/intrinsics.hpp>
#include <edgescale/quant/kernels/portable.hpp>

#include <algorithm>
#include <array>
#include <cstdint>

#if EDGESCALE_QUANT_X86_KERNELS

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define EDGESCALE_QUANT_AMX \
  __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512vnni")))
#define EDGESCALE_QUANT_AMX_OUTLINED \
  __attribute__((noinline, target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512vnni")))

namespace edgescale::quant::kernels::amx {

/// When the tiles pay (measured against the VNNI kernel on a Sapphire Rapids core,
/// docs/results/quant.md): a batch of at least 16 columns (a tile's rows), a depth above 32 (a
/// 64-deep step mostly padding loses to VNNI's shallow kernel: LeNet-5's conv1, K = 25, runs 0.8x),
/// and at least 2^15 multiply-adds (configuring and releasing the tiles costs about what a
/// 10 x 100 x 16 product does).
inline constexpr Index min_cols = 16;
inline constexpr Index min_depth = 33;
inline constexpr Index min_products = Index{1} << 15;
[[nodiscard]] inline bool worth_tiles(const PackedView& w, Index n) {
  return n >= min_cols && w.depth >= min_depth && w.rows * w.depth * n >= min_products;
}

namespace detail {

inline constexpr Index tile_rows = 16;      // samples (A, C) or groups (B) per tile
inline constexpr Index tile_depth = 64;     // depths per step: A's bytes per row
inline constexpr Index block_samples = 32;  // samples per block of x (2 A tiles)
inline constexpr Index block_depth = 1024;  // depths per block of x
inline constexpr Index step_groups = tile_depth / group_depth;  // packed groups per step (16)
inline constexpr Index a_tile_bytes = tile_rows * tile_depth;   // one A tile, 1 KB
inline constexpr Index a_step_bytes = 2 * a_tile_bytes;         // a depth step of a block: 2 tiles

/// The tile configuration (palette 1): every tile 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  std::uint8_t palette;
  std::uint8_t start_row;
  std::uint8_t reserved[14];
  std::uint16_t colsb[16];
  std::uint8_t rows[16];
};
inline constexpr TileConfig full_tiles = {
    1, 0, {}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

/// A compiler barrier: GCC's _tile_loadd does not tell the compiler it reads memory, so stores to
/// a buffer about to be loaded into a tile must be forced out first.
inline void memory_barrier() {
  __asm__ __volatile__("" ::: "memory");
}

/// CPUID leaf `leaf`, sub-leaf `sub`: {eax, ebx, ecx, edx}. Inline assembly rather than the
/// compiler's <cpuid.h>, so that the core needs no header beyond the standard library's and the
/// intrinsics' (tests/static/check_includes.cmake).
inline std::array<std::uint32_t, 4> cpuid(std::uint32_t leaf, std::uint32_t sub) {
  std::array<std::uint32_t, 4> r{};
  __asm__ __volatile__("cpuid"
                       : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                       : "a"(leaf), "c"(sub));
  return r;
}

/// Whether CPUID reports AMX-TILE and AMX-INT8 (leaf 7, sub-leaf 0, EDX bits 24 and 25).
inline bool cpu_has_amx() {
  if (cpuid(0, 0)[0] < 7) {  // the highest standard leaf
    return false;
  }
  const std::uint32_t edx = cpuid(7, 0)[3];
  return (edx >> 24 & 1U) != 0 && (edx >> 25 & 1U) != 0;
}

/// Asks Linux for the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA
/// = 18); false elsewhere or when refused (kernels before 5.16, or a disabled feature).
inline bool request_tile_permission() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr long req_xcomp_perm = 0x1023;
  constexpr long xfeature_xtiledata = 18;
  return syscall(SYS_arch_prctl, req_xcomp_perm, xfeature_xtiledata) == 0;
#else
  return false;
#endif
}

}  // namespace detail

/// Whether this process may run the AMX kernel: the CPU has AMX-INT8 and the OS granted the tile
/// state. Asked once per process (the grant is process-wide), thread-safe.
inline bool available() {
  static const bool ok = detail::cpu_has_amx() && detail::request_tile_permission();
  return ok;
}

namespace detail {

/// Tile T = 16 x 16 int32 of acc at (sample j, row c): from acc when accumulating (through the
/// stack tile when partial), else zero. The tile number is a literal (GCC's intrinsics stringify
/// it into the instruction).
/// The first `rows` int32 of 16-wide tile rows: a lane mask.
EDGESCALE_QUANT_AMX inline __mmask16 row_mask(Index rows) {
  return static_cast<__mmask16>((1U << static_cast<unsigned>(rows)) - 1U);
}

/// Tile T = 16 x 16 int32 of acc at (sample j, row c): from acc when accumulating (through the
/// stack tile when partial: `samples` x `rows` live, zero elsewhere), else zero. T is a literal
/// (GCC's intrinsics stringify it into the instruction).
#define EDGESCALE_QUANT_AMX_INIT_C(T, j, c, samples, rows)                                   \
  if (!accumulate) {                                                                         \
    _tile_zero(T);                                                                           \
  } else if ((samples) == tile_rows && (rows) == tile_rows) {                                \
    _tile_loadd(T, acc + (j)*ldo + (c), ldo * 4);                                            \
  } else {                                                                                   \
    const __mmask16 live_ = row_mask(rows);                                                  \
    for (Index s_ = 0; s_ < tile_rows; ++s_) {                                               \
      _mm512_store_si512(scratch + s_ * tile_rows,                                           \
                         s_ < (samples)                                                      \
                             ? _mm512_maskz_loadu_epi32(live_, acc + ((j) + s_) * ldo + (c)) \
                             : _mm512_setzero_si512());                                      \
    }                                                                                        \
    memory_barrier();                                                                        \
    _tile_loadd(T, scratch, tile_rows * 4);                                                  \
  }
#define EDGESCALE_QUANT_AMX_STORE_C(T, j, c, samples, rows)                  \
  if ((samples) == tile_rows && (rows) == tile_rows) {                       \
    _tile_stored(T, acc + (j)*ldo + (c), ldo * 4);                           \
  } else {                                                                   \
    _tile_stored(T, scratch, tile_rows * 4);                                 \
    const __mmask16 live_ = row_mask(rows);                                  \
    for (Index s_ = 0; s_ < (samples); ++s_) {                               \
      _mm512_mask_storeu_epi32(acc + ((j) + s_) * ldo + (c), live_,          \
                               _mm512_load_si512(scratch + s_ * tile_rows)); \
    }                                                                        \
  }

// OP(T, j, c, samples, rows) on each accumulator tile a block uses: tmm0 (first samples, first
// panel), tmm1 (second panel), tmm2 and tmm3 (second half of the samples).
#define EDGESCALE_QUANT_AMX_EACH_C(OP)              \
  OP(0, j0, c0, s0, r0)                             \
  if constexpr (Panels > 1) {                       \
    OP(1, j0, c0 + tile_rows, s0, r1)               \
  }                                                 \
  if constexpr (Halves > 1) {                       \
    OP(2, j0 + tile_rows, c0, s1, r0)               \
    if constexpr (Panels > 1) {                     \
      OP(3, j0 + tile_rows, c0 + tile_rows, s1, r1) \
    }                                               \
  }

/// acc rows [c0, c0 + 16·Panels) x samples [j0, j0 + 16·Halves) (+)= W·x over `steps` depth steps:
/// a the packed block of x (pack_block), b the first panel's first group of the block (panels
/// `stride` bytes apart). `samples` and `rows` are the live counts (≤ 32).
template <int Halves, int Panels>
EDGESCALE_QUANT_AMX inline void block(const std::int8_t* a, const std::int8_t* b, Index stride,
                                      Index steps, std::int32_t* acc, Index ldo, Index j0, Index c0,
                                      Index samples, Index rows, bool accumulate,
                                      std::int32_t* scratch) {
  const Index s0 = std::min(samples, tile_rows);
  const Index s1 = samples - s0;
  const Index r0 = std::min(rows, tile_rows);
  const Index r1 = rows - r0;
  EDGESCALE_QUANT_AMX_EACH_C(EDGESCALE_QUANT_AMX_INIT_C)
  for (Index t = 0; t < steps; ++t) {
    _tile_loadd(4, a, tile_depth);
    _tile_loadd(6, b, group_bytes);
    _tile_dpbssd(0, 4, 6);
    if constexpr (Panels > 1) {
      _tile_loadd(7, b + stride, group_bytes);
      _tile_dpbssd(1, 4, 7);
    }
    if constexpr (Halves > 1) {
      _tile_loadd(5, a + a_tile_bytes, tile_depth);
      _tile_dpbssd(2, 5, 6);
      if constexpr (Panels > 1) {
        _tile_dpbssd(3, 5, 7);
      }
    }
    a += a_step_bytes;
    b += step_groups * group_bytes;
  }
  EDGESCALE_QUANT_AMX_EACH_C(EDGESCALE_QUANT_AMX_STORE_C)
}

#undef EDGESCALE_QUANT_AMX_EACH_C
#undef EDGESCALE_QUANT_AMX_INIT_C
#undef EDGESCALE_QUANT_AMX_STORE_C

/// Every row of W against one packed block of samples (a), `steps` depth steps from group g0.
template <int Halves>
EDGESCALE_QUANT_AMX inline void rows(const PackedView& w, const std::int8_t* a, Index g0,
                                     Index steps, std::int32_t* acc, Index j0, Index samples,
                                     bool accumulate, std::int32_t* scratch) {
  const Index stride = w.groups * group_bytes;
  for (Index p = 0; p < w.panels; p += 2) {
    const std::int8_t* b = w.data + p * stride + g0 * group_bytes;
    const Index live = std::min(2 * panel_rows, w.rows - p * panel_rows);
    if (w.panels - p >= 2) {
      block<Halves, 2>(a, b, stride, steps, acc, w.rows, j0, p * panel_rows, samples, live,
                       accumulate, scratch);
    } else {
      block<Halves, 1>(a, b, stride, steps, acc, w.rows, j0, p * panel_rows, samples, live,
                       accumulate, scratch);
    }
  }
}

/// Packs `samples` (≤ 32) columns of x (ldx bytes apart), `depth` bytes each from x, as `steps`
/// depth steps of A tiles: step t, sample r at xp + t·2048 + (r / 16)·1024 + (r % 16)·64, zero
/// beyond depth, and beyond the samples up to the 16 or 32 rows the tiles read (their rows of C
/// are never stored).
EDGESCALE_QUANT_AMX inline void pack_block(const std::int8_t* x, Index ldx, Index samples,
                                           Index depth, Index steps, std::int8_t* xp) {
  const Index rows = samples > tile_rows ? block_samples : tile_rows;
  for (Index r = 0; r < rows; ++r) {
    const bool live = r < samples;  // a padded row reads nothing (mask 0)
    const std::int8_t* src = live ? x + r * ldx : x;
    std::int8_t* dst = xp + (r / tile_rows) * a_tile_bytes + (r % tile_rows) * tile_depth;
    for (Index t = 0; t < steps; ++t) {
      const Index left = live ? std::clamp<Index>(depth - t * tile_depth, 0, tile_depth) : 0;
      const auto mask =
          static_cast<__mmask64>(left == 0 ? 0 : ~std::uint64_t{0} >> (tile_depth - left));
      _mm512_store_si512(dst + t * a_step_bytes,
                         _mm512_maskz_loadu_epi8(mask, src + t * tile_depth));
    }
  }
  memory_barrier();  // the tiles load what was just stored
}

}  // namespace detail

/// acc (M x n, column-major) = W · x on the tiles, whatever the shape (n ≥ 1): what gemm_s8 runs
/// when the tiles pay, and what the tests run on every shape. Only when available(). Not inlined,
/// so that its 33 KB of stack buffers and the VNNI kernel's 16 KB never share one frame.
EDGESCALE_QUANT_AMX_OUTLINED inline void gemm_tiles(const PackedView& w, const std::int8_t* x,
                                                    Index n, std::int32_t* acc) {
  using namespace detail;
  alignas(64) std::int8_t xp[block_samples * block_depth];
  alignas(64) std::int32_t scratch[tile_rows * tile_rows];
  memory_barrier();  // the caller's stores to x are complete before a tile reads it
  _tile_loadconfig(&full_tiles);
  for (Index k0 = 0; k0 < w.depth; k0 += block_depth) {
    const Index depth = std::min(block_depth, w.depth - k0);
    const Index steps = (depth + tile_depth - 1) / tile_depth;
    const Index g0 = k0 / group_depth;
    const bool accumulate = k0 > 0;
    for (Index j0 = 0; j0 < n; j0 += block_samples) {
      const Index samples = std::min(block_samples, n - j0);
      pack_block(x + j0 * w.depth + k0, w.depth, samples, depth, steps, xp);
      if (samples > tile_rows) {
        rows<2>(w, xp, g0, steps, acc, j0, samples, accumulate, scratch);
      } else {
        rows<1>(w, xp, g0, steps, acc, j0, samples, accumulate, scratch);
      }
    }
  }
  _tile_release();
}

/// acc (M x n, column-major) = W · x (x: K x n, column-major), exact in int32: on the tiles when
/// they pay (worth_tiles) and the OS allows them, else the AVX-512 VNNI kernel.
EDGESCALE_QUANT_AMX inline void gemm_s8(const PackedView& w, const std::int8_t* x, Index n,
                                        std::int32_t* acc) {
  if (worth_tiles(w, n) && available()) {
    gemm_tiles(w, x, n, acc);
  } else {
    avx512_vnni::gemm_s8(w, x, n, acc);
  }
}

}  // namespace edgescale::quant::kernels::amx

#undef EDGESCALE_QUANT_AMX
#undef EDGESCALE_QUANT_AMX_OUTLINED
#endif  // EDGESCALE_QUANT_X86_KERNELS
