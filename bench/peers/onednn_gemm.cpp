// bench/peers/onednn_gemm.cpp — oneDNN's int8 matmul as bench_quant's peer: the same product in the
// same memory. dst (N x M, s32, row-major) = src (N x K, s8, row-major) · weights (K x M, s8) is
// acc = W·x with acc and x column-major and W row-major, as gemm_s8 takes them. The weights are
// given to oneDNN in its own layout (format_tag::any, reordered once, as PackedS8 packs once); the
// primitive is created once; only execute() and the stream's wait are timed. src is s8 (our x), so
// oneDNN compensates its u8 x s8 instructions itself, as gemm_s8's VNNI path does. Without VNNI
// (AVX2) oneDNN 2.6 forms its products with vpmaddubsw, whose int16 pair sums saturate: its result
// then differs from W·x where a pair exceeds 32767 (the row's label says how much).
//
// The instruction set is oneDNN's choice (its JIT dispatches at run time) unless capped: with
// EDGESCALE_BENCH_AVX2_ONLY (bench_quant_avx2) it is capped at AVX2; the environment
// variable DNNL_MAX_CPU_ISA caps it too. Rows are named onednn_<isa>, the ISA oneDNN reports.
#include "quant_gemm.hpp"
#include <oneapi/dnnl/dnnl.hpp>

#include <string>
#include <unordered_map>

namespace edgescale::bench::quant_gemm::onednn {

namespace {

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

void cap_isa() {
#if defined(EDGESCALE_BENCH_AVX2_ONLY) || defined(EDGESCALE_BENCH_VNNI_ONLY)
  static const bool capped = [] {
#ifdef EDGESCALE_BENCH_AVX2_ONLY
    dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx2);
#else
    dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx512_core_vnni);
#endif
    return true;
  }();
  (void)capped;
#endif
}

void run(benchmark::State& state, const Workload& s) {
  cap_isa();
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  const Operands o = operands(s);
  std::vector<std::int32_t> acc(static_cast<std::size_t>(s.m * s.n));

  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::desc src_md({s.n, s.k}, dt::s8, tag::ab);
  const dnnl::memory::desc weights_any({s.k, s.m}, dt::s8, tag::any);
  const dnnl::memory::desc dst_md({s.n, s.m}, dt::s32, tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, weights_any, dst_md), engine);
  // W row-major M x K is the K x M weights matrix with tag ba; reordered once into oneDNN's layout.
  dnnl::memory weights_plain({{s.k, s.m}, dt::s8, tag::ba}, engine,
                             const_cast<std::int8_t*>(o.w.data()));
  dnnl::memory weights(pd.weights_desc(), engine);
  dnnl::reorder(weights_plain, weights).execute(stream, weights_plain, weights);
  stream.wait();
  dnnl::memory src(src_md, engine, const_cast<std::int8_t*>(o.x.data()));
  dnnl::memory dst(dst_md, engine, acc.data());
  const dnnl::matmul matmul(pd);
  const std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};

  matmul.execute(stream, args);
  stream.wait();
  const Mismatch wrong = mismatch(o, s, acc.data());
  for (auto _ : state) {
    matmul.execute(stream, args);
    stream.wait();
    benchmark::DoNotOptimize(acc.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, s);
  state.SetLabel(pd.impl_info_str() + (wrong.entries > 0 ? ", " + wrong.describe() : ""));
}

}  // namespace

void register_benchmarks() {
  cap_isa();
  register_workloads(std::string("onednn_") + isa_name(dnnl::get_effective_cpu_isa()), &run);
}

std::string describe() {
  cap_isa();
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) + ", matmul s8 x s8 -> s32, effective ISA " +
         isa_name(dnnl::get_effective_cpu_isa());
}

}  // namespace edgescale::bench::quant_gemm::onednn
