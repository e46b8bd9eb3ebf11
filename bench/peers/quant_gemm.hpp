// bench/peers/quant_gemm.hpp — what bench_quant measures, shared by our side (bench_quant.cpp) and
// the peers (peers/onednn_gemm.cpp, peers/gemmlowp_gemm.cpp), which compile against their own
// headers only (no edgescale or Eigen here).
//
// The product is acc (M x N, int32, column-major) = W (M x K, int8, row-major: PyTorch's (out, in)
// layout) · x (K x N, int8, column-major: a batch of columns), as quant::gemm_s8 computes it.
// Workloads "<shape>/<N>":
//   gemm1024/1024   M = K = N = 1024
//   gemm256/256     M = K = N = 256
//   fc784_300/N     LeNet-300-100's layers, K -> M, at batch N = 1, 32, 256
//   fc300_100/N
//   fc100_10/N
// Codes: W uniform in [-127, 127] (narrow symmetric), x uniform in [-128, 127]; the same values
// for every implementation (the float GEMM gets them as floats). Every implementation's result is
// checked once, at 61 sampled entries, before it is timed: ours and Eigen's must be exact; a peer
// that is not is timed anyway, its row labelled INEXACT with how far off it was.
// Names: "<impl>/<shape>/<N>"; counter GOP/s = 2·M·N·K per iteration (multiply and add), rates per
// second of process CPU time (MeasureProcessCPUTime: every thread of the process is charged).
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace edgescale::bench::quant_gemm {

struct Workload {
  const char* shape;
  std::int64_t m;  // output rows (out features)
  std::int64_t k;  // depth (in features)
  std::int64_t n;  // columns of x (batch)
};

inline std::vector<Workload> workloads() {
  std::vector<Workload> all{{"gemm1024", 1024, 1024, 1024}, {"gemm256", 256, 256, 256}};
  for (const std::int64_t n : {1, 32, 256}) {
    all.push_back({"fc784_300", 300, 784, n});
    all.push_back({"fc300_100", 100, 300, n});
    all.push_back({"fc100_10", 10, 100, n});
  }
  return all;
}

/// size codes uniform in [lo, hi], a fixed function of (seed, index) (splitmix64).
inline std::vector<std::int8_t> codes(std::int64_t size, std::uint64_t seed, int lo, int hi) {
  std::vector<std::int8_t> v(static_cast<std::size_t>(size));
  std::uint64_t state = seed;
  for (auto& e : v) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
    z ^= z >> 31U;
    e = static_cast<std::int8_t>(lo +
                                 static_cast<int>(z % static_cast<std::uint64_t>(hi - lo + 1)));
  }
  return v;
}

struct Operands {
  std::vector<std::int8_t> w;  // M x K, row-major
  std::vector<std::int8_t> x;  // K x N, column-major
};

inline Operands operands(const Workload& s) {
  return {codes(s.m * s.k, 1, -127, 127), codes(s.k * s.n, 2, -128, 127)};
}

/// How acc (M x N, column-major) differs from W·x at 61 entries spread over the matrix.
struct Mismatch {
  int entries = 0;                 // of the 61 sampled
  std::int64_t largest_error = 0;  // |acc − W·x|, largest
  [[nodiscard]] std::string describe() const {
    return "INEXACT: " + std::to_string(entries) +
           " of 61 sampled entries differ from W·x, by up to " + std::to_string(largest_error);
  }
};

inline Mismatch mismatch(const Operands& o, const Workload& s, const std::int32_t* acc) {
  Mismatch found;
  for (std::int64_t i = 0; i < 61; ++i) {
    const std::int64_t c = (i * 7919) % s.m;
    const std::int64_t j = (i * 104729) % s.n;
    std::int64_t sum = 0;
    for (std::int64_t d = 0; d < s.k; ++d) {
      sum += std::int64_t{o.w[static_cast<std::size_t>(c * s.k + d)]} *
             o.x[static_cast<std::size_t>(j * s.k + d)];
    }
    const std::int64_t error = acc[j * s.m + c] - sum;
    if (error != 0) {
      ++found.entries;
      found.largest_error = std::max(found.largest_error, error < 0 ? -error : error);
    }
  }
  return found;
}

inline bool matches(const Operands& o, const Workload& s, const std::int32_t* acc) {
  return mismatch(o, s, acc).entries == 0;
}

inline void set_counters(benchmark::State& state, const Workload& s) {
  state.counters["GOP/s"] = benchmark::Counter(2e-9 * static_cast<double>(s.m * s.n * s.k),
                                               benchmark::Counter::kIsIterationInvariantRate);
  state.counters["M"] = static_cast<double>(s.m);
  state.counters["K"] = static_cast<double>(s.k);
  state.counters["N"] = static_cast<double>(s.n);
}

/// Registers "<impl>/<shape>/<N>" for every workload: run(state, workload).
template <class Run>
void register_workloads(const std::string& impl, Run run) {
  for (const Workload& s : workloads()) {
    benchmark::RegisterBenchmark((impl + "/" + s.shape + "/" + std::to_string(s.n)).c_str(),
                                 [run, s](benchmark::State& state) { run(state, s); })
        ->MeasureProcessCPUTime()
        ->Unit(benchmark::kMicrosecond);
  }
}

// The peers, compiled in when found (bench/CMakeLists.txt): each registers its workloads and says
// what it is (version, instruction set, operand types) for the run's context.
namespace onednn {
void register_benchmarks();
std::string describe();
}  // namespace onednn
namespace gemmlowp_peer {
void register_benchmarks();
std::string describe();
}  // namespace gemmlowp_peer

}  // namespace edgescale::bench::quant_gemm
