// The int8 GEMM and requantization (quant/gemm_s8.hpp): every path this CPU runs against plain
// scalar loops written here, bit for bit — random shapes across the kernels' block sizes (16-row
// panels, 8- and 6-column tiles, VNNI's 48-row tiles, blocks of x 256 and up to 1024 (VNNI:
// unpacked, packed) and 512 (AVX2) deep, 64 and 24 wide; AMX's 16 x 16 tiles, 32-sample blocks,
// 64-deep steps and 1024-deep blocks), extreme codes, the deepest product, and requantization with
// extreme multipliers and saturation. Paths the CPU lacks are compiled only.
// Global operator new is replaced (for test_quant) by one that counts (tests/counting_new.hpp), to
// show that neither function allocates.
#include <edgescale/core/error.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/quant/fixed_point.hpp>
#include <edgescale/quant/gemm_s8.hpp>
#include <edgescale/quant/params.hpp>

#include "counting_new.hpp"
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace edgescale {
namespace {

using quant::GemmPath;
using quant::Multiplier;
using quant::PackedS8;

constexpr std::int32_t int_min = std::numeric_limits<std::int32_t>::min();
constexpr std::int32_t int_max = std::numeric_limits<std::int32_t>::max();

std::vector<std::int8_t> random_codes(Index size, Rng& rng, int lo = -128, int hi = 127) {
  std::vector<std::int8_t> v(static_cast<std::size_t>(size));
  for (auto& e : v) {
    e = static_cast<std::int8_t>(lo + static_cast<int>(uniform_index(rng, hi - lo + 1)));
  }
  return v;
}

// acc = W·x by the definition: W m x k row-major, x k x n and acc m x n column-major.
std::vector<std::int32_t> reference_gemm(const std::vector<std::int8_t>& w,
                                         const std::vector<std::int8_t>& x, Index m, Index k,
                                         Index n) {
  std::vector<std::int32_t> acc(static_cast<std::size_t>(m * n));
  for (Index j = 0; j < n; ++j) {
    for (Index c = 0; c < m; ++c) {
      std::int32_t sum = 0;
      for (Index d = 0; d < k; ++d) {
        sum += std::int32_t{w[static_cast<std::size_t>(c * k + d)]} *
               std::int32_t{x[static_cast<std::size_t>(j * k + d)]};
      }
      acc[static_cast<std::size_t>(j * m + c)] = sum;
    }
  }
  return acc;
}

// The requantization by its definition, in 64-bit arithmetic (no overflow to mirror).
std::vector<std::int8_t> reference_requantize(const std::vector<std::int32_t>& acc, Index m,
                                              Index n, const std::vector<std::int32_t>& bias,
                                              const std::vector<Multiplier>& mult,
                                              std::int32_t zero_point, std::int32_t act_min,
                                              std::int32_t act_max) {
  std::vector<std::int8_t> out(acc.size());
  for (Index j = 0; j < n; ++j) {
    for (Index c = 0; c < m; ++c) {
      const auto i = static_cast<std::size_t>(j * m + c);
      const auto cu = static_cast<std::size_t>(c);
      const auto sum = static_cast<std::int32_t>(static_cast<std::uint32_t>(acc[i]) +
                                                 static_cast<std::uint32_t>(bias[cu]));
      const std::int64_t v =
          std::int64_t{quant::multiply_by_quantized_multiplier(sum, mult[cu])} + zero_point;
      out[i] = static_cast<std::int8_t>(std::clamp<std::int64_t>(v, act_min, act_max));
    }
  }
  return out;
}

// The paths compiled here, and which of them this CPU runs.
std::vector<GemmPath> compiled_paths() {
#if EDGESCALE_QUANT_X86_KERNELS
  return {GemmPath::portable, GemmPath::avx2, GemmPath::avx512_vnni, GemmPath::amx};
#else
  return {GemmPath::portable};
#endif
}

std::vector<GemmPath> runnable_paths() {
  std::vector<GemmPath> paths;
  for (const GemmPath p : compiled_paths()) {
    if (quant::gemm_path_supported(p)) {
      paths.push_back(p);
    }
  }
  return paths;
}

void gemm(GemmPath p, const PackedS8& w, const std::int8_t* x, Index n, std::int32_t* acc) {
  switch (p) {
    case GemmPath::portable:
      quant::gemm_s8<GemmPath::portable>(w, x, n, acc);
      return;
#if EDGESCALE_QUANT_X86_KERNELS
    case GemmPath::avx2:
      quant::gemm_s8<GemmPath::avx2>(w, x, n, acc);
      return;
    case GemmPath::avx512_vnni:
      quant::gemm_s8<GemmPath::avx512_vnni>(w, x, n, acc);
      return;
    case GemmPath::amx:
      quant::gemm_s8<GemmPath::amx>(w, x, n, acc);
      return;
#endif
    default:
      FAIL("path not compiled");
  }
}

void requantize(GemmPath p, const std::vector<std::int32_t>& acc, Index m, Index n,
                const std::vector<std::int32_t>& bias, const std::vector<Multiplier>& mult,
                std::int32_t zero_point, std::int32_t act_min, std::int32_t act_max,
                std::vector<std::int8_t>& out) {
  switch (p) {
    case GemmPath::portable:
      quant::requantize_s8<GemmPath::portable>(acc.data(), m, n, bias.data(), mult.data(),
                                               zero_point, act_min, act_max, out.data());
      return;
#if EDGESCALE_QUANT_X86_KERNELS
    case GemmPath::avx2:
      quant::requantize_s8<GemmPath::avx2>(acc.data(), m, n, bias.data(), mult.data(), zero_point,
                                           act_min, act_max, out.data());
      return;
    case GemmPath::avx512_vnni:
      quant::requantize_s8<GemmPath::avx512_vnni>(acc.data(), m, n, bias.data(), mult.data(),
                                                  zero_point, act_min, act_max, out.data());
      return;
    case GemmPath::amx:
      quant::requantize_s8<GemmPath::amx>(acc.data(), m, n, bias.data(), mult.data(), zero_point,
                                          act_min, act_max, out.data());
      return;
#endif
    default:
      FAIL("path not compiled");
  }
}

// Every runnable path on one packed W against the reference; acc is pre-filled with garbage so a
// missed element shows.
void check_gemm(const std::vector<std::int8_t>& w, const std::vector<std::int8_t>& x, Index m,
                Index k, Index n) {
  const PackedS8 packed(w.data(), m, k);
  REQUIRE(packed.view().narrow == (std::find(w.begin(), w.end(), -128) == w.end()));
  const std::vector<std::int32_t> expected = reference_gemm(w, x, m, k, n);
  for (const GemmPath p : runnable_paths()) {
    std::vector<std::int32_t> acc(expected.size(), 0x5A5A5A5A);
    gemm(p, packed, x.data(), n, acc.data());
    CAPTURE(quant::gemm_path_name(p));
    CAPTURE(m);
    CAPTURE(k);
    CAPTURE(n);
    REQUIRE(acc == expected);
  }
#if EDGESCALE_QUANT_X86_KERNELS
  // gemm_s8<amx> gives the tiles only the shapes they pay for; the tile kernel itself runs every
  // shape here.
  if (quant::gemm_path_supported(GemmPath::amx)) {
    std::vector<std::int32_t> acc(expected.size(), 0x5A5A5A5A);
    quant::kernels::amx::gemm_tiles(packed.view(), x.data(), n, acc.data());
    CAPTURE("amx tiles");
    CAPTURE(m);
    CAPTURE(k);
    CAPTURE(n);
    REQUIRE(acc == expected);
  }
#endif
}

}  // namespace

TEST_CASE("gemm_s8: which paths this build compiled and this CPU runs") {
  std::string ran;
  std::string compiled_only;
  for (const GemmPath p : compiled_paths()) {
    (quant::gemm_path_supported(p) ? ran : compiled_only) +=
        std::string(" ") + quant::gemm_path_name(p);
  }
  if (compiled_only.empty()) {
    compiled_only = " none";
  }
  const std::string report =
      "gemm_s8 paths run:" + ran + "; compiled only:" + compiled_only +
      "; default_gemm_path: " + quant::gemm_path_name(quant::default_gemm_path);
  MESSAGE(report);
  CHECK(quant::gemm_path_supported(GemmPath::portable));
  // The AMX path runs wherever the CPU has AMX; an OS that refuses the tile state (Linux before
  // 5.16) leaves gemm_s8<GemmPath::amx> on its VNNI kernel, so the default path still runs.
  CHECK((quant::gemm_path_supported(quant::default_gemm_path) ||
         (quant::default_gemm_path == GemmPath::amx &&
          quant::gemm_path_supported(GemmPath::avx512_vnni))));
  CHECK(std::string(quant::gemm_path_name(GemmPath::portable)) == "portable");
  CHECK(std::string(quant::gemm_path_name(GemmPath::avx2)) == "avx2");
  CHECK(std::string(quant::gemm_path_name(GemmPath::avx512_vnni)) == "avx512_vnni");
  CHECK(std::string(quant::gemm_path_name(GemmPath::amx)) == "amx");
#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AVX512VNNI__) && \
    defined(__AVX512BW__) && defined(__AVX512VL__)
  CHECK(quant::default_gemm_path == GemmPath::amx);
#elif defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  CHECK(quant::default_gemm_path == GemmPath::avx512_vnni);
#elif defined(__AVX2__)
  CHECK(quant::default_gemm_path == GemmPath::avx2);
#else
  CHECK(quant::default_gemm_path == GemmPath::portable);
#endif
}

TEST_CASE("PackedS8: shape, row sums, padded size and refused input") {
  Rng rng = make_stream(7, "gemm_s8 packing");
  const Index m = 37;
  const Index k = 13;
  const std::vector<std::int8_t> w = random_codes(m * k, rng);
  const PackedS8 packed(w.data(), m, k);
  CHECK(packed.rows() == m);
  CHECK(packed.depth() == k);
  REQUIRE(packed.row_sums().size() == static_cast<std::size_t>(m));
  for (Index c = 0; c < m; ++c) {
    std::int32_t sum = 0;
    for (Index d = 0; d < k; ++d) {
      sum += w[static_cast<std::size_t>(c * k + d)];
    }
    CHECK(packed.row_sums()[static_cast<std::size_t>(c)] == sum);
  }
  // 3 panels of 16 rows x 4 groups of 4 depths, 64 bytes each, 16 zero groups after them (AMX's
  // last depth step), and 48 padded row sums.
  CHECK(packed.bytes() == (3 * 4 + 16) * 64 + 48 * 4);
  CHECK(PackedS8{}.rows() == 0);
  CHECK(PackedS8{}.bytes() == 0);

  CHECK_THROWS_AS(PackedS8(w.data(), 0, k), argument_error);
  CHECK_THROWS_AS(PackedS8(w.data(), m, 0), argument_error);
  CHECK_THROWS_AS(PackedS8(nullptr, m, k), argument_error);
  const std::vector<std::int8_t> deep(static_cast<std::size_t>(quant::kernels::max_depth + 1), 1);
  CHECK_NOTHROW(PackedS8(deep.data(), 1, quant::kernels::max_depth));
  CHECK_THROWS_AS(PackedS8(deep.data(), 1, quant::kernels::max_depth + 1), argument_error);

  std::vector<std::int32_t> acc(4);
  const std::vector<std::int8_t> x(static_cast<std::size_t>(k));
  CHECK_THROWS_AS(quant::gemm_s8(packed, x.data(), -1, acc.data()), argument_error);
  CHECK_THROWS_AS(quant::gemm_s8(packed, nullptr, 1, acc.data()), argument_error);
  quant::gemm_s8(packed, nullptr, 0, nullptr);  // no columns: nothing to do
}

TEST_CASE("gemm_s8: every path equals the scalar product on random shapes") {
  Rng rng = make_stream(11, "gemm_s8 shapes");
  // Weights alternate between narrow codes ([-127, 127]: the AVX2 one-column kernel) and the
  // full int8 range (-128 included: the general tiles).
  int draw = 0;
  const auto weights = [&](Index size) {
    return ++draw % 2 == 0 ? random_codes(size, rng, -127, 127) : random_codes(size, rng);
  };
  // Random shapes from 1 to 70 in each dimension, then the block edges: 15-17 and 31-33 rows
  // (panels, AVX2 half panels, VNNI pairs of panels), 1-9, 23-25, 47-49 and 63-65 columns (6- and
  // 8-wide tiles, 24- and 64-wide blocks), depths not multiples of 4 and across the 256- and
  // 512-deep blocks.
  for (int i = 0; i < 60; ++i) {
    const auto m = static_cast<Index>(1 + uniform_index(rng, 70));
    const auto k = static_cast<Index>(1 + uniform_index(rng, 70));
    const auto n = static_cast<Index>(1 + uniform_index(rng, 70));
    check_gemm(weights(m * k), random_codes(k * n, rng), m, k, n);
  }
  for (const Index m : {1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 65}) {
    for (const Index n : {1, 2, 3, 5, 6, 7, 8, 9, 13}) {
      const Index k = 1 + (m * 7 + n) % 11;
      check_gemm(weights(m * k), random_codes(k * n, rng), m, k, n);
    }
  }
  for (const Index n : {23, 24, 25, 47, 49, 63, 64, 65, 97}) {
    check_gemm(weights(19 * 23), random_codes(23 * n, rng), 19, 23, n);
  }
  for (const Index k : {255, 256, 257, 259, 511, 512, 513, 777, 1025}) {
    for (const Index n : {1, 2, 7}) {
      check_gemm(weights(35 * k), random_codes(k * n, rng), 35, k, n);
    }
  }
  // Convolutions: few rows, shallow patches (up to 256 deep: the VNNI path's unpacked x), many
  // columns — LeNet-5's conv1 (6 x 25 x 784) and conv2 (16 x 150 x 100), 64-column blocks whose
  // bytes are or are not a multiple of 64, and the deepest shallow patch beside one deeper.
  // A batch of one or two in one pass (VNNI: up to 8192 codes of x), and just beyond.
  for (const Index k : {4096, 4097, 8192, 8193}) {
    for (const Index n : {1, 2}) {
      check_gemm(weights(35 * k), random_codes(k * n, rng), 35, k, n);
    }
  }
  // VNNI's packed blocks of x (K > 256 with several columns: whole 8-column tiles transposed,
  // partial tiles and depth tails by the scalar loop; depths over 1024 split into even blocks) and
  // its 48-row register tiles, with 2 + 2 panels for the last rows.
  for (const Index m : {17, 47, 48, 49, 100}) {
    for (const Index k : {257, 300, 784, 1025, 2050}) {
      for (const Index n : {3, 8, 9, 16, 24, 33, 65}) {
        check_gemm(weights(m * k), random_codes(k * n, rng), m, k, n);
      }
    }
  }
  // AMX (batches of 16 and more): 16-row tiles of samples and of output rows, partial in either;
  // blocks of 32 samples; depths in steps of 64, read in place when K is a multiple of 64 and
  // the block full, else copied; 1024-deep blocks accumulating in acc, ragged or not.
  for (const Index m : {1, 17, 33, 100}) {
    for (const Index k : {1, 63, 64, 65, 1000, 1024, 1025, 2048, 2100}) {
      for (const Index n : {16, 17, 32, 33, 65}) {
        check_gemm(weights(m * k), random_codes(k * n, rng), m, k, n);
      }
    }
  }
  check_gemm(weights(6 * 25), random_codes(25 * 784, rng), 6, 25, 784);
  check_gemm(weights(16 * 150), random_codes(150 * 100, rng), 16, 150, 100);
  for (const Index m : {1, 6, 16, 20, 33}) {
    for (const Index k : {1, 3, 9, 25, 64, 150, 255, 256, 257}) {
      for (const Index n : {3, 8, 63, 64, 65, 130}) {
        check_gemm(weights(m * k), random_codes(k * n, rng), m, k, n);
      }
    }
  }
}

TEST_CASE("gemm_s8: extreme codes and the deepest product stay exact") {
  const auto filled = [](Index size, int value) {
    return std::vector<std::int8_t>(static_cast<std::size_t>(size),
                                    static_cast<std::int8_t>(value));
  };
  Rng rng = make_stream(13, "gemm_s8 extremes");
  // Weights at ±127 (narrow symmetric) and −128 (accepted too), activations at −128 and 127; 7
  // columns: a 6-wide tile and a single column.
  for (const int wv : {-128, -127, 127}) {
    for (const int xv : {-128, 127}) {
      CAPTURE(wv);
      CAPTURE(xv);
      check_gemm(filled(33 * 301, wv), filled(301 * 7, xv), 33, 301, 7);
    }
  }
  // Alternating signs and random extremes.
  std::vector<std::int8_t> w = random_codes(17 * 130, rng);
  for (auto& e : w) {
    e = e < 0 ? std::int8_t{-128} : std::int8_t{127};
  }
  std::vector<std::int8_t> x = random_codes(130 * 10, rng);
  for (auto& e : x) {
    e = e < 0 ? std::int8_t{-128} : std::int8_t{127};
  }
  check_gemm(w, x, 17, 130, 10);
  // The deepest product: K = 65536 with every product at its largest, 2^14 · 2^16 = 2^30, both
  // signs; and the sum the VNNI path forms, (−128 + 128)·w, at its most negative: x = 127
  // (x + 128 = 255) against w = −128.
  const Index k = quant::kernels::max_depth;
  check_gemm(filled(17 * k, -128), filled(k * 2, -128), 17, k, 2);
  check_gemm(filled(3 * k, -128), filled(k * 3, 127), 3, k, 3);
  check_gemm(filled(17 * k, -128), filled(k * 16, -128), 17, k, 16);  // AMX tiles
  check_gemm(filled(33 * k, 127), filled(k * 33, -128), 33, k, 33);
  check_gemm(random_codes(5 * k, rng), random_codes(k, rng), 5, k, 1);
  // The same depth through the one-column kernel of narrow weights: |x|·|w| = 128·127 everywhere.
  check_gemm(filled(33 * k, 127), filled(k, -128), 33, k, 1);
  check_gemm(random_codes(5 * k, rng, -127, 127), random_codes(k * 7, rng), 5, k, 7);
}

TEST_CASE("requantize_s8: every path equals multiply_by_quantized_multiplier's loop") {
  Rng rng = make_stream(17, "requantize_s8");
  const auto random_multiplier = [&rng](bool below_one) {
    // Shifts from −31 to 30 (to 0 for multipliers below 1, what layers have), values from 2^30 to
    // just below 2^31, now and then the extremes.
    const int shift = -31 + static_cast<int>(uniform_index(rng, below_one ? 32 : 62));
    auto value = static_cast<std::int32_t>((1U << 30) + uniform_index(rng, 1U << 30));
    const auto pick = uniform_index(rng, 8);
    if (pick == 0) {
      value = int_max;
    } else if (pick == 1) {
      value = 1 << 30;
    }
    return Multiplier{value, shift};
  };
  const auto random_accumulator = [&rng]() {
    // Every magnitude up to 2^31, and the int32 extremes.
    const auto pick = uniform_index(rng, 16);
    if (pick == 0) {
      return int_min;
    }
    if (pick == 1) {
      return int_max;
    }
    const auto magnitude = static_cast<int>(uniform_index(rng, 32));
    const auto v = static_cast<std::int32_t>(uniform_index(rng, std::uint64_t{1} << magnitude));
    return uniform_index(rng, 2) == 0 ? v : -v;
  };
  for (int i = 0; i < 120; ++i) {
    // Half the cases have every multiplier below 1, which the vector paths take on a shorter road
    // (no left shift to saturate, no −2^31 multiplier); the others mix in every shift. From case
    // 60 on, few rows (1 to 40: a convolution's output channels, LeNet-5's 6 among them) over
    // many columns (its output pixels), which the vector paths take as one stream of period
    // lcm(m, 8) when m is not a multiple of 8.
    const bool below_one = i % 2 == 0;
    const bool few_rows = i >= 60;
    const auto m = few_rows
                       ? (i % 10 == 0 ? Index{6} : static_cast<Index>(1 + uniform_index(rng, 40)))
                       : static_cast<Index>(1 + uniform_index(rng, 150));
    const auto n = few_rows ? static_cast<Index>(1 + uniform_index(rng, 800))
                            : static_cast<Index>(1 + uniform_index(rng, 9));
    std::vector<std::int32_t> acc(static_cast<std::size_t>(m * n));
    std::vector<std::int32_t> bias(static_cast<std::size_t>(m));
    std::vector<Multiplier> mult(static_cast<std::size_t>(m));
    for (auto& a : acc) {
      a = random_accumulator();
    }
    for (auto& b : bias) {
      b = uniform_index(rng, 4) == 0 ? 0 : random_accumulator() / 4;
    }
    for (auto& q : mult) {
      q = random_multiplier(below_one);
    }
    // Special rows: the double-rounding overflow (x = m = −2^31), a zero multiplier, a
    // multiplier from quantize_multiplier.
    if (!below_one) {
      mult[0] = Multiplier{int_min, 0};
      acc[0] = int_min;
      bias[0] = 0;
    }
    if (m > 2) {
      mult[1] = Multiplier{};
      mult[2] = quant::quantize_multiplier(0.0123);
    }
    const auto zero_point = static_cast<std::int32_t>(uniform_index(rng, 256)) - 128;
    std::int32_t act_min = -128;
    std::int32_t act_max = 127;
    if (i % 3 == 1) {
      act_min = std::max(-128, zero_point);  // fused ReLU: a narrower clamp
    } else if (i % 3 == 2) {
      act_min = -5;
      act_max = 6;
    }
    const std::vector<std::int8_t> expected =
        reference_requantize(acc, m, n, bias, mult, zero_point, act_min, act_max);
    for (const GemmPath p : runnable_paths()) {
      std::vector<std::int8_t> out(acc.size(), 99);
      requantize(p, acc, m, n, bias, mult, zero_point, act_min, act_max, out);
      CAPTURE(quant::gemm_path_name(p));
      CAPTURE(m);
      CAPTURE(n);
      REQUIRE(out == expected);
    }
  }
}

TEST_CASE("requantize_s8: saturation at both ends, and refused parameters") {
  // Left shifts that overflow int32 (saturate, then the clamp), and accumulators that clamp.
  const std::vector<std::int32_t> acc{int_max, int_min, 1 << 20, -(1 << 20), 3, -3, 0, 100};
  const std::vector<std::int32_t> bias(8, 0);
  const std::vector<Multiplier> mult{{1 << 30, 30},  {1 << 30, 30},  {int_max, 12},  {int_max, 12},
                                     {1 << 30, -31}, {1 << 30, -31}, {int_max, -31}, {1 << 30, 0}};
  const std::vector<std::int8_t> expected{127, -128, 127, -128, 0, 0, 0, 50};
  CHECK(reference_requantize(acc, 8, 1, bias, mult, 0, -128, 127) == expected);
  for (const GemmPath p : runnable_paths()) {
    std::vector<std::int8_t> out(8);
    requantize(p, acc, 8, 1, bias, mult, 0, -128, 127, out);
    CAPTURE(quant::gemm_path_name(p));
    CHECK(out == expected);
  }

  std::vector<std::int8_t> out(8);
  const auto call = [&](std::int32_t zero_point, std::int32_t lo, std::int32_t hi,
                        const std::vector<Multiplier>& q) {
    quant::requantize_s8(acc.data(), 8, 1, bias.data(), q.data(), zero_point, lo, hi, out.data());
  };
  CHECK_THROWS_AS(call(0, 5, 4, mult), argument_error);
  CHECK_THROWS_AS(call(0, -129, 127, mult), argument_error);
  CHECK_THROWS_AS(call(0, -128, 128, mult), argument_error);
  CHECK_THROWS_AS(call(128, -128, 127, mult), argument_error);
  std::vector<Multiplier> bad = mult;
  bad[5].shift = 31;
  CHECK_THROWS_AS(call(0, -128, 127, bad), argument_error);
  bad[5].shift = -32;
  CHECK_THROWS_AS(call(0, -128, 127, bad), argument_error);
}

TEST_CASE("gemm_s8 and requantize_s8 allocate nothing, batch 1 included") {
  Rng rng = make_stream(19, "gemm_s8 allocations");
  const std::vector<std::int8_t> narrow = random_codes(300 * 784, rng, -127, 127);
  const std::vector<std::int8_t> full = random_codes(300 * 784, rng);
  const std::vector<std::int8_t> x = random_codes(784 * 33, rng);
  std::vector<std::int32_t> acc(300 * 33);
  std::vector<std::int8_t> out(acc.size());
  const std::vector<std::int32_t> bias(300, 7);
  const std::vector<Multiplier> mult(300, quant::quantize_multiplier(0.001));
  for (const auto* w : {&narrow, &full}) {
    const long before_packing = test::allocations.load();
    const PackedS8 packed(w->data(), 300, 784);
    CHECK(test::allocations.load() > before_packing);  // the counter counts: packing allocates
    for (const GemmPath p : runnable_paths()) {
      for (const Index n : {1, 33}) {
        const long made = test::count_allocations([&] {
          gemm(p, packed, x.data(), n, acc.data());
          requantize(p, acc, 300, n, bias, mult, -3, -128, 127, out);
        });
        CAPTURE(quant::gemm_path_name(p));
        CAPTURE(n);
        CHECK(made == 0);
      }
    }
  }
}

}  // namespace edgescale

namespace edgescale {

TEST_CASE("quantize_s8: every path equals ActivationParams::quantize, ties, saturation and NaN") {
  // The portable path is kernels::portable::quantize_code, the input stage's own rounding.
  Rng rng = make_stream(31, "quantize_s8");
  std::vector<float> base = {0.0F,
                             -0.0F,
                             0.5F,
                             1.5F,
                             2.5F,
                             -0.5F,
                             -1.5F,
                             -2.5F,
                             127.5F,
                             -128.5F,
                             1e30F,
                             -1e30F,
                             std::numeric_limits<float>::infinity(),
                             -std::numeric_limits<float>::infinity(),
                             std::numeric_limits<float>::quiet_NaN(),
                             std::numeric_limits<float>::denorm_min()};
  for (int i = 0; i < 20000; ++i) {
    base.push_back(standard_normal<float>(rng) * 150.0F);
  }
  for (const quant::ActivationParams& p :
       {quant::ActivationParams{1.0F, 0, -128, 127, 8},
        quant::ActivationParams{0.5F, -128, -128, 127, 8},
        quant::ActivationParams{0.0371F, 17, -128, 127, 8},
        quant::ActivationParams{1.0F, -128, -128, -113, 4},
        quant::ActivationParams{3.0F, 5, -7, 7, 4},
        quant::ActivationParams{std::numeric_limits<float>::epsilon(), -128, -128, 127, 8}}) {
    // x / scale lands on the listed half-integers (ties) when x = listed · scale.
    std::vector<float> xs = base;
    for (const float b : base) {
      xs.push_back(b * p.scale);
    }
    std::vector<std::int8_t> expected(xs.size());
    for (std::size_t i = 0; i < xs.size(); ++i) {
      expected[i] = static_cast<std::int8_t>(p.quantize(xs[i]));
    }
    for (const GemmPath path : runnable_paths()) {
      CAPTURE(quant::gemm_path_name(path));
      for (const Index n :
           {Index{1}, Index{7}, Index{8}, Index{9}, static_cast<Index>(xs.size())}) {
        std::vector<std::int8_t> out(static_cast<std::size_t>(n), 99);
        switch (path) {
          case GemmPath::portable:
            quant::quantize_s8<GemmPath::portable>(xs.data(), n, p.scale, p.zero_point, p.qmin,
                                                   p.qmax, out.data());
            break;
#if EDGESCALE_QUANT_X86_KERNELS
          case GemmPath::avx2:
            quant::quantize_s8<GemmPath::avx2>(xs.data(), n, p.scale, p.zero_point, p.qmin, p.qmax,
                                               out.data());
            break;
          case GemmPath::avx512_vnni:
            quant::quantize_s8<GemmPath::avx512_vnni>(xs.data(), n, p.scale, p.zero_point, p.qmin,
                                                      p.qmax, out.data());
            break;
          case GemmPath::amx:
            quant::quantize_s8<GemmPath::amx>(xs.data(), n, p.scale, p.zero_point, p.qmin, p.qmax,
                                              out.data());
            break;
#endif
        }
        CHECK(std::equal(out.begin(), out.end(), expected.begin()));
      }
    }
  }
  std::int8_t out = 0;
  const float x = 1.0F;
  CHECK_THROWS_AS(quant::quantize_s8(&x, 1, 0.0F, 0, -128, 127, &out), argument_error);
  CHECK_THROWS_AS(quant::quantize_s8(&x, 1, 1.0F, 0, -129, 127, &out), argument_error);
}

}  // namespace edgescale
