// bench/bench_quant.cpp — the int8 GEMM (quant/gemm_s8.hpp) beside Eigen's float GEMM of the same
// shapes and, when found, oneDNN's int8 matmul and gemmlowp, in one executable, one thread.
//
//   scripts/bench_quant.sh                  # configure, build, run pinned to one core, tables
//   build/bench/bench/bench_quant --benchmark_filter='fc784_300/1$'
//
// Built three times (bench/CMakeLists.txt): bench_quant for the build's -march (native), where the
// default path and Eigen use what this CPU has (AMX or AVX-512 VNNI, and AVX-512, on such a CPU);
// bench_quant_avx2 for x86-64-v3 with oneDNN capped at AVX2: what an AVX2-only CPU gets; and
// bench_quant_vnni for icelake-server (AVX-512 VNNI, no AMX; it runs only on a CPU with them) with
// oneDNN capped at VNNI: what a Zen 4 or an Ice Lake gets.
//
// Workloads, names, codes and the GOP/s counter: bench/peers/quant_gemm.hpp. Rows:
//   s8_<path>    gemm_s8<path> (portable, avx2, avx512_vnni, amx), W packed once beforehand; a path
//                this CPU cannot run is reported as an error row
//   s8_requant   gemm_s8 and requantize_s8 of the default path: a whole int8 layer's arithmetic
//   eigen_f32    Eigen::MatrixXf: Y.noalias() = Wt.transpose() * X, W as PyTorch stores it (the
//                column-major K x M Wt), the product nn::Dense computes
//   onednn_<isa> oneDNN matmul s8 x s8 -> s32 (peers/onednn_gemm.cpp)
//   gemmlowp_u8  gemmlowp, uint8 with offsets -> int32 (peers/gemmlowp_gemm.cpp)
#include <edgescale/quant/fixed_point.hpp>
#include <edgescale/quant/gemm_s8.hpp>

#include <Eigen/Core>

#include "peers/quant_gemm.hpp"
#include "run.hpp"
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#if defined(EDGESCALE_BENCH_AVX2_ONLY) && (defined(__AVX512F__) || !defined(__AVX2__))
#error "bench_quant_avx2 stands for an AVX2-only CPU: it must be compiled for x86-64-v3"
#endif
#if defined(EDGESCALE_BENCH_VNNI_ONLY) && (defined(__AMX_TILE__) || !defined(__AVX512VNNI__))
#error "bench_quant_vnni stands for an AVX-512 VNNI CPU without AMX: compile it for icelake-server"
#endif

namespace {

using namespace edgescale;
namespace qg = edgescale::bench::quant_gemm;

template <quant::GemmPath P>
void ours(benchmark::State& state, const qg::Workload& s) {
  if (!quant::gemm_path_supported(P)) {
    state.SkipWithError(
        (std::string("this CPU cannot run the ") + quant::gemm_path_name(P) + " path").c_str());
    return;
  }
  const qg::Operands o = qg::operands(s);
  const quant::PackedS8 w(o.w.data(), s.m, s.k);
  std::vector<std::int32_t> acc(static_cast<std::size_t>(s.m * s.n));
  quant::gemm_s8<P>(w, o.x.data(), s.n, acc.data());
  if (!qg::matches(o, s, acc.data())) {
    state.SkipWithError("gemm_s8's product differs from W·x");
    return;
  }
  for (auto _ : state) {
    quant::gemm_s8<P>(w, o.x.data(), s.n, acc.data());
    benchmark::DoNotOptimize(acc.data());
    benchmark::ClobberMemory();
  }
  qg::set_counters(state, s);
}

/// gemm_s8 then requantize_s8 (per-row multipliers near 2^-10, zero point 3, ReLU clamp).
void ours_layer(benchmark::State& state, const qg::Workload& s) {
  const qg::Operands o = qg::operands(s);
  const quant::PackedS8 w(o.w.data(), s.m, s.k);
  std::vector<std::int32_t> acc(static_cast<std::size_t>(s.m * s.n));
  std::vector<std::int8_t> out(acc.size());
  std::vector<std::int32_t> bias(static_cast<std::size_t>(s.m));
  std::vector<quant::Multiplier> mult(static_cast<std::size_t>(s.m));
  for (std::size_t c = 0; c < mult.size(); ++c) {
    bias[c] = static_cast<std::int32_t>(c % 1000) - 500;
    mult[c] = quant::quantize_multiplier(0.001 * (1.0 + 0.01 * static_cast<double>(c % 50)));
  }
  for (auto _ : state) {
    quant::gemm_s8(w, o.x.data(), s.n, acc.data());
    quant::requantize_s8(acc.data(), s.m, s.n, bias.data(), mult.data(), 3, 3, 127, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  qg::set_counters(state, s);
}

void eigen_f32(benchmark::State& state, const qg::Workload& s) {
  const qg::Operands o = qg::operands(s);
  Eigen::MatrixXf wt(s.k, s.m);  // PyTorch's (out, in) row-major memory
  Eigen::MatrixXf x(s.k, s.n);
  Eigen::MatrixXf y(s.m, s.n);
  for (Index i = 0; i < wt.size(); ++i) {
    wt.data()[i] = o.w[static_cast<std::size_t>(i)];
  }
  for (Index i = 0; i < x.size(); ++i) {
    x.data()[i] = o.x[static_cast<std::size_t>(i)];
  }
  y.noalias() = wt.transpose() * x;
  // Exact in float: every partial sum is an integer of magnitude at most 127·128·K < 2^24.
  const Eigen::MatrixXi yi = y.cast<int>();
  if (!qg::matches(o, s, yi.data())) {
    state.SkipWithError("Eigen's product differs from W·x");
    return;
  }
  for (auto _ : state) {
    y.noalias() = wt.transpose() * x;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  qg::set_counters(state, s);
}

void register_all() {
  qg::register_workloads("s8_portable", &ours<quant::GemmPath::portable>);
#if EDGESCALE_QUANT_X86_KERNELS
  qg::register_workloads("s8_avx2", &ours<quant::GemmPath::avx2>);
  qg::register_workloads("s8_avx512_vnni", &ours<quant::GemmPath::avx512_vnni>);
  qg::register_workloads("s8_amx", &ours<quant::GemmPath::amx>);
#endif
  qg::register_workloads("s8_requant", &ours_layer);
  qg::register_workloads("eigen_f32", &eigen_f32);
#ifdef EDGESCALE_HAVE_ONEDNN
  qg::onednn::register_benchmarks();
#endif
#ifdef EDGESCALE_HAVE_GEMMLOWP
  qg::gemmlowp_peer::register_benchmarks();
#endif
}

std::string paths_run() {
  std::string text;
  for (const auto p : {quant::GemmPath::portable, quant::GemmPath::avx2,
                       quant::GemmPath::avx512_vnni, quant::GemmPath::amx}) {
    text += std::string(text.empty() ? "" : ", ") + quant::gemm_path_name(p) +
            (quant::gemm_path_supported(p) ? " runs" : " cannot run here");
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  edgescale::bench::use_one_eigen_thread();
  benchmark::AddCustomContext("gemm_s8", std::string("default path ") +
                                             quant::gemm_path_name(quant::default_gemm_path) +
                                             "; " + paths_run());
#ifdef EDGESCALE_HAVE_ONEDNN
  benchmark::AddCustomContext("onednn", qg::onednn::describe());
#else
  benchmark::AddCustomContext("onednn", "not built (libdnnl-dev not found)");
#endif
#ifdef EDGESCALE_HAVE_GEMMLOWP
  benchmark::AddCustomContext("gemmlowp", qg::gemmlowp_peer::describe());
#else
  benchmark::AddCustomContext("gemmlowp", "not built (libgemmlowp-dev not found)");
#endif
  edgescale::bench::add_compiler_context();
  register_all();
  return edgescale::bench::run_benchmarks(argc, argv);
}
