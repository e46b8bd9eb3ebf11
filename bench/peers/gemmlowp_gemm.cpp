// bench/peers/gemmlowp_gemm.cpp — gemmlowp as bench_quant's peer: GemmWithOutputPipeline with an
// empty output pipeline (int32 out, the product gemm_s8 computes; gemmlowp's plain Gemm would
// requantize to uint8 with its own older arithmetic) and DefaultL8R8BitDepthParams (full 8-bit
// operands; its L8R8WithLhsNonzero variant has kernels for ARM only and falls back to the
// reference kernel on x86).
//
// Operand types: gemmlowp multiplies uint8 with offsets, (lhs + lhs_offset)(rhs + rhs_offset); W
// and x are given as W + 128 and x + 128 with both offsets −128, which is exactly W·x in the same
// memory (W row-major, x and acc column-major). One thread (GemmContext::set_max_num_threads(1)).
// gemmlowp has no pre-packed weights in its public API: it packs both operands on every call,
// which the timing includes. Its x86 kernels are SSE4.1 (12x4) or, with GEMMLOWP_ENABLE_AVX2 and
// an AVX2 target, AVX2 (24x8): this file turns the AVX2 one on whenever the target has AVX2.
#if defined(__AVX2__) && !defined(GEMMLOWP_ENABLE_AVX2)
#define GEMMLOWP_ENABLE_AVX2
#endif
#include "quant_gemm.hpp"
#include <gemmlowp/public/gemmlowp.h>

#include <string>
#include <tuple>

namespace edgescale::bench::quant_gemm::gemmlowp_peer {

namespace {

std::vector<std::uint8_t> offset_by_128(const std::vector<std::int8_t>& v) {
  std::vector<std::uint8_t> u(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    u[i] = static_cast<std::uint8_t>(v[i] + 128);
  }
  return u;
}

void run(benchmark::State& state, const Workload& s) {
  const Operands o = operands(s);
  const std::vector<std::uint8_t> w = offset_by_128(o.w);
  const std::vector<std::uint8_t> x = offset_by_128(o.x);
  std::vector<std::int32_t> acc(static_cast<std::size_t>(s.m * s.n));
  gemmlowp::GemmContext context;
  context.set_max_num_threads(1);
  const auto rows = static_cast<int>(s.m);
  const auto depth = static_cast<int>(s.k);
  const auto cols = static_cast<int>(s.n);
  const gemmlowp::MatrixMap<const std::uint8_t, gemmlowp::MapOrder::RowMajor> lhs(w.data(), rows,
                                                                                  depth);
  const gemmlowp::MatrixMap<const std::uint8_t, gemmlowp::MapOrder::ColMajor> rhs(x.data(), depth,
                                                                                  cols);
  gemmlowp::MatrixMap<std::int32_t, gemmlowp::MapOrder::ColMajor> result(acc.data(), rows, cols);
  const std::tuple<> no_output_stages;
  const auto gemm = [&] {
    gemmlowp::GemmWithOutputPipeline<std::uint8_t, std::int32_t,
                                     gemmlowp::DefaultL8R8BitDepthParams>(
        &context, lhs, rhs, &result, -128, -128, no_output_stages);
  };
  gemm();
  const Mismatch wrong = mismatch(o, s, acc.data());
  for (auto _ : state) {
    gemm();
    benchmark::DoNotOptimize(acc.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, s);
  if (wrong.entries > 0) {
    state.SetLabel(wrong.describe());
  }
}

}  // namespace

void register_benchmarks() {
  register_workloads("gemmlowp_u8", &run);
}

std::string describe() {
#if defined(GEMMLOWP_AVX2_64)
  const char* kernel = "AVX2_64_Kernel24x8Depth2";
#elif defined(GEMMLOWP_SSE4_64)
  const char* kernel = "SSE4_64_Kernel12x4Depth2";
#else
  const char* kernel = "reference kernel";
#endif
  return std::string(
             "gemmlowp (Debian libgemmlowp-dev), GemmWithOutputPipeline uint8 (offset "
             "-128) -> int32, DefaultL8R8BitDepthParams, ") +
         kernel + ", 1 thread, packs both operands per call";
}

}  // namespace edgescale::bench::quant_gemm::gemmlowp_peer
