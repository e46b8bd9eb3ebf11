// edgescale/quant/gemm_s8.hpp — the int8 matrix product of quantized layers and its
// requantization: weights packed once, a kernel per instruction set chosen at compile time.
//
//   const quant::PackedS8 w(codes.data(), out, in);       // int8 W, (out, in) row-major, once
//   quant::gemm_s8(w, x_codes, batch, acc.data());        // acc = W·x, int32, exact
//   quant::requantize_s8(acc.data(), out, batch, bias.data(), mult.data(), z_out, lo, hi, y);
//
//   acc[c, j] = Σ_k W[c, k] · x[k, j]                        (no zero points: DESIGN §3c folds
//                                                              −Z_in·Σ_k W[c, k] into the bias)
//   y[c, j]   = clamp(Z_out + M_c·(acc[c, j] + bias[c]), act_min, act_max)
//
// with M_c·v = multiply_by_quantized_multiplier(v, mult[c]) (quant/fixed_point.hpp: TFLite's
// double rounding). x, acc and y are column-major with leading dimensions K, M and M (a batch of
// columns, as nn::Dense stores activations).
//
// Paths (GemmPath), every one bit for bit equal to the portable loop:
//   portable     plain C++ (kernels/portable.hpp), any target;
//   avx2         int8 sign-extended to int16 and vpmaddwd (exact: pairs of int8 products fit);
//                not vpmaddubsw on x + 128, whose saturating int16 pair sums are not exact
//                (2·255·127 > 32767) — except for one column against narrow weights (all in
//                [−127, 127]), where |x|·(w·sign x) keeps each pair within 2·128·127 < 2¹⁵;
//   avx512_vnni  vpdpbusd on x + 128 (as uint8), less 128·Σ_k W[c, k] (DESIGN §3c);
//   amx          Intel AMX tiles (TDPBSSD: int8 x int8 -> int32, 16 384 products per
//                instruction) for batches of 16 and more, the VNNI kernel below that and for
//                requantization; it asks Linux for the tile state once (kernels/amx.hpp) and
//                falls back to the VNNI kernel if refused.
// Measured speeds beside Eigen's float GEMM, oneDNN and gemmlowp: docs/results/quant.md.
// default_gemm_path is the best the compilation target guarantees (its -march macros): a binary
// built for x86-64 runs the portable path unless told otherwise. The x86-64 paths are compiled on
// every x86-64 build (GCC or Clang function attributes), so gemm_s8<GemmPath::avx2> can be called
// on a CPU that gemm_path_supported says has AVX2, whatever -march was; on other architectures only
// portable exists. No path allocates: blocks of x are packed into fixed stack buffers.
//
// Weights are 2- to 8-bit codes in int8: any value, −128 included (every path is exact for it;
// narrow symmetric codes, DESIGN §3c's [−127, 127], run a batch of one faster on AVX2), depth
// K ≤ 65536 (kernels::max_depth: the VNNI path's offset sums stay in int32). Activations are any
// int8.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/quant/fixed_point.hpp>
#include <edgescale/quant/kernels/amx.hpp>
#include <edgescale/quant/kernels/avx2.hpp>
#include <edgescale/quant/kernels/avx512_vnni.hpp>
#include <edgescale/quant/kernels/portable.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace edgescale::quant {

/// The kernels of gemm_s8 and requantize_s8, one per instruction set.
enum class GemmPath { portable, avx2, avx512_vnni, amx };

/// The best path the compilation target guarantees (chosen from its -march macros, never at run
/// time).
inline constexpr GemmPath default_gemm_path =
#if EDGESCALE_QUANT_X86_KERNELS && defined(__AMX_TILE__) && defined(__AMX_INT8__) && \
    defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    GemmPath::amx;
#elif EDGESCALE_QUANT_X86_KERNELS && defined(__AVX512VNNI__) && defined(__AVX512BW__) && \
    defined(__AVX512VL__)
    GemmPath::avx512_vnni;
#elif EDGESCALE_QUANT_X86_KERNELS && defined(__AVX2__)
    GemmPath::avx2;
#else
    GemmPath::portable;
#endif

/// Whether this CPU (and its operating system) can run path p.
[[nodiscard]] inline bool gemm_path_supported(GemmPath p) {
#if EDGESCALE_QUANT_X86_KERNELS
  __builtin_cpu_init();  // needed when called before main (from a static initializer); idempotent
#endif
  switch (p) {
    case GemmPath::portable:
      return true;
#if EDGESCALE_QUANT_X86_KERNELS
    case GemmPath::avx2:
      return __builtin_cpu_supports("avx2") != 0;
    case GemmPath::avx512_vnni:
      return __builtin_cpu_supports("avx512f") != 0 && __builtin_cpu_supports("avx512bw") != 0 &&
             __builtin_cpu_supports("avx512vl") != 0 && __builtin_cpu_supports("avx512vnni") != 0;
    case GemmPath::amx:  // the CPU has AMX-INT8 and the OS granted the tile state
      return gemm_path_supported(GemmPath::avx512_vnni) && kernels::amx::available();
#else
    case GemmPath::avx2:
    case GemmPath::avx512_vnni:
    case GemmPath::amx:
      return false;
#endif
  }
  return false;
}

/// "portable", "avx2", "avx512_vnni" or "amx".
[[nodiscard]] inline const char* gemm_path_name(GemmPath p) {
  switch (p) {
    case GemmPath::portable:
      return "portable";
    case GemmPath::avx2:
      return "avx2";
    case GemmPath::avx512_vnni:
      return "avx512_vnni";
    case GemmPath::amx:
      return "amx";
  }
  return "unknown";
}

/// int8 weights W, M x K, row-major (PyTorch's (out, in) layout), packed once (at conversion) into
/// the layout of kernels/portable.hpp: panels of 16 rows, groups of 4 depths, zero-padded to
/// ceil(M/16)·16 rows and ceil(K/4)·4 depths; one object serves every path.
class PackedS8 {
 public:
  PackedS8() = default;

  /// Copies and packs w (m x k, row-major). Throws argument_error for a null w, m < 1, k < 1 or
  /// k > 65536 (kernels::max_depth).
  PackedS8(const std::int8_t* w, Index m, Index k) : rows_{m}, depth_{k} {
    if (w == nullptr || m < 1 || k < 1) {
      throw argument_error("PackedS8: expected a non-null m x k int8 matrix with m, k >= 1, got " +
                           std::to_string(m) + " x " + std::to_string(k));
    }
    if (k > kernels::max_depth) {
      throw argument_error("PackedS8: depth k = " + std::to_string(k) + " exceeds " +
                           std::to_string(kernels::max_depth) +
                           ", the deepest product the int8 paths keep exact in int32");
    }
    panels_ = (m + kernels::panel_rows - 1) / kernels::panel_rows;
    groups_ = (k + kernels::group_depth - 1) / kernels::group_depth;
    // 16 zero groups after the last panel: the AMX kernel's last depth step may read up to 15
    // groups past a panel (against zero activations), which must stay inside the allocation.
    blocks_.resize(static_cast<std::size_t>(panels_ * groups_ + kernels::panel_tail_groups));
    row_sums_.assign(static_cast<std::size_t>(panels_ * kernels::panel_rows), 0);
    for (Index c = 0; c < m; ++c) {
      const Index p = c / kernels::panel_rows;
      const Index r = c % kernels::panel_rows;
      std::int32_t sum = 0;
      for (Index d = 0; d < k; ++d) {
        const std::int8_t v = w[c * k + d];
        auto& block = blocks_[static_cast<std::size_t>(p * groups_ + d / kernels::group_depth)];
        block.bytes[static_cast<std::size_t>(r * kernels::group_depth + d % kernels::group_depth)] =
            v;
        sum += v;
        narrow_ = narrow_ && v != std::numeric_limits<std::int8_t>::min();
      }
      row_sums_[static_cast<std::size_t>(c)] = sum;
    }
  }

  [[nodiscard]] Index rows() const { return rows_; }
  [[nodiscard]] Index depth() const { return depth_; }

  /// Σ_k W[c, k], one per row: what a caller multiplies by its input zero point to fold
  /// −Z_in·Σ_k W[c, k] into the bias.
  [[nodiscard]] std::span<const std::int32_t> row_sums() const {
    return {row_sums_.data(), static_cast<std::size_t>(rows_)};
  }

  /// Bytes of packed storage: the padded groups and the padded row sums.
  [[nodiscard]] std::size_t bytes() const {
    return blocks_.size() * sizeof(Block) + row_sums_.size() * sizeof(std::int32_t);
  }

  /// What the kernels read (kernels/portable.hpp).
  [[nodiscard]] kernels::PackedView view() const {
    return {blocks_.empty() ? nullptr : blocks_.front().bytes.data(),
            row_sums_.data(),
            rows_,
            depth_,
            panels_,
            groups_,
            narrow_};
  }

 private:
  // One group: 16 rows of 4 depths, aligned for 64-byte vector loads.
  struct alignas(64) Block {
    std::array<std::int8_t, kernels::group_bytes> bytes{};
  };
  std::vector<Block> blocks_;
  std::vector<std::int32_t> row_sums_;
  Index rows_ = 0;
  Index depth_ = 0;
  Index panels_ = 0;
  Index groups_ = 0;
  bool narrow_ = true;
};

namespace detail {

template <GemmPath P>
inline constexpr bool gemm_path_compiled = P == GemmPath::portable || EDGESCALE_QUANT_X86_KERNELS;

}  // namespace detail

/// acc (M x N, column-major, leading dimension M) = W · x exactly in int32, x (K x N, column-major,
/// leading dimension K, int8 codes). No zero points here: the caller folds them into its bias.
/// n = 0 does nothing; throws argument_error for n < 0 or null pointers with n > 0. Allocates
/// nothing.
template <GemmPath P = default_gemm_path>
void gemm_s8(const PackedS8& w, const std::int8_t* x, Index n, std::int32_t* acc) {
  static_assert(detail::gemm_path_compiled<P>,
                "gemm_s8: the avx2, avx512_vnni and amx paths exist on x86-64 (GCC or Clang) "
                "only; use GemmPath::portable or default_gemm_path on this target");
  if (n < 0 || (n > 0 && w.rows() > 0 && (x == nullptr || acc == nullptr))) {
    throw argument_error("gemm_s8: expected n >= 0 columns and non-null x and acc, got n = " +
                         std::to_string(n));
  }
  if (n == 0 || w.rows() == 0) {
    return;
  }
  if constexpr (P == GemmPath::portable) {
    kernels::portable::gemm_s8(w.view(), x, n, acc);
  }
#if EDGESCALE_QUANT_X86_KERNELS
  if constexpr (P == GemmPath::avx2) {
    kernels::avx2::gemm_s8(w.view(), x, n, acc);
  }
  if constexpr (P == GemmPath::avx512_vnni) {
    kernels::avx512_vnni::gemm_s8(w.view(), x, n, acc);
  }
  if constexpr (P == GemmPath::amx) {
    kernels::amx::gemm_s8(w.view(), x, n, acc);
  }
#endif
}

/// Requantization of acc (M x N col-major) to int8 out (M x N col-major), per output row c:
///   v = acc + bias[c] (int32, wrapping);  v = multiply_by_quantized_multiplier(v, mult[c]);
///   out = clamp(v + zero_point, act_min, act_max)  (computed without overflow).
/// Throws argument_error unless −128 ≤ act_min ≤ act_max ≤ 127, zero_point is in [−128, 127], every
/// mult[c].shift is in [−31, 30] (what quantize_multiplier gives) and the pointers are non-null
/// (for m, n > 0). Allocates nothing.
template <GemmPath P = default_gemm_path>
void requantize_s8(const std::int32_t* acc, Index m, Index n, const std::int32_t* bias,
                   const Multiplier* mult, std::int32_t zero_point, std::int32_t act_min,
                   std::int32_t act_max, std::int8_t* out) {
  static_assert(detail::gemm_path_compiled<P>,
                "requantize_s8: the avx2, avx512_vnni and amx paths exist on x86-64 (GCC or "
                "Clang) only; use GemmPath::portable or default_gemm_path on this target");
  constexpr std::int32_t qmin = std::numeric_limits<std::int8_t>::min();
  constexpr std::int32_t qmax = std::numeric_limits<std::int8_t>::max();
  if (m < 0 || n < 0 || act_min < qmin || act_max > qmax || act_min > act_max ||
      zero_point < qmin || zero_point > qmax) {
    throw argument_error(
        "requantize_s8: expected m, n >= 0, -128 <= act_min <= act_max <= 127 "
        "and a zero point in [-128, 127], got m = " +
        std::to_string(m) + ", n = " + std::to_string(n) +
        ", act_min = " + std::to_string(act_min) + ", act_max = " + std::to_string(act_max) +
        ", zero_point = " + std::to_string(zero_point));
  }
  if (m == 0 || n == 0) {
    return;
  }
  if (acc == nullptr || bias == nullptr || mult == nullptr || out == nullptr) {
    throw argument_error("requantize_s8: null acc, bias, mult or out");
  }
  std::uint32_t widest = 0;  // the shifts checked without a branch per row (a max), then found
  for (Index c = 0; c < m; ++c) {
    widest = std::max(widest, static_cast<std::uint32_t>(mult[c].shift) + 31U);
  }
  for (Index c = 0; widest > 61U && c < m; ++c) {
    if (mult[c].shift < -31 || mult[c].shift > 30) {
      throw argument_error("requantize_s8: mult[" + std::to_string(c) +
                           "].shift = " + std::to_string(mult[c].shift) + " is outside [-31, 30]");
    }
  }
  if constexpr (P == GemmPath::portable) {
    kernels::portable::requantize_s8(acc, m, n, bias, mult, zero_point, act_min, act_max, out);
  }
#if EDGESCALE_QUANT_X86_KERNELS
  if constexpr (P == GemmPath::avx2) {
    kernels::avx2::requantize_s8(acc, m, n, bias, mult, zero_point, act_min, act_max, out);
  }
  if constexpr (P == GemmPath::avx512_vnni || P == GemmPath::amx) {
    kernels::avx512_vnni::requantize_s8(acc, m, n, bias, mult, zero_point, act_min, act_max, out);
  }
#endif
}

/// out[i] = zero_point + round(x[i] / scale), ties to even, saturated to [qmin, qmax], NaN to
/// the zero point — ActivationParams::quantize over n floats (the integer network's input), bit
/// for bit on every path.
template <GemmPath P = default_gemm_path>
void quantize_s8(const float* x, Index n, float scale, std::int32_t zero_point, std::int32_t qmin,
                 std::int32_t qmax, std::int8_t* out) {
  static_assert(detail::gemm_path_compiled<P>,
                "quantize_s8: the avx2, avx512_vnni and amx paths exist on x86-64 (GCC or Clang) "
                "only; use GemmPath::portable or default_gemm_path on this target");
  if (n < 0 || qmin < -128 || qmax > 127 || qmin > qmax || !(scale > 0)) {
    throw argument_error(
        "quantize_s8: expected n >= 0, -128 <= qmin <= qmax <= 127 and a positive "
        "scale");
  }
  if (n == 0) {
    return;
  }
  if constexpr (P == GemmPath::portable) {
    kernels::portable::quantize_s8(x, n, scale, zero_point, qmin, qmax, out);
  }
#if EDGESCALE_QUANT_X86_KERNELS
  if constexpr (P == GemmPath::avx2) {
    kernels::avx2::quantize_s8(x, n, scale, zero_point, qmin, qmax, out);
  }
  if constexpr (P == GemmPath::avx512_vnni || P == GemmPath::amx) {
    kernels::avx512_vnni::quantize_s8(x, n, scale, zero_point, qmin, qmax, out);
  }
#endif
}

}  // namespace edgescale::quant
