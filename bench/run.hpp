// bench/run.hpp — what the bench programs' main has in common: one Eigen thread, Eigen and the
// compiler named in the context, then Google Benchmark's run of what register_all() registered,
// refusing flags it does not know.
#pragma once

#include <edgescale/core/eigen.hpp>

#include <benchmark/benchmark.h>

#include <string>

namespace edgescale::bench {

/// One Eigen thread, and "eigen" (its version and the instruction sets it uses) in the context.
inline void use_one_eigen_thread() {
  Eigen::setNbThreads(1);
  benchmark::AddCustomContext("eigen", std::to_string(EIGEN_WORLD_VERSION) + "." +
                                           std::to_string(EIGEN_MAJOR_VERSION) + "." +
                                           std::to_string(EIGEN_MINOR_VERSION) + ", " +
                                           Eigen::SimdInstructionSetsInUse());
}

/// Adds "compiler" (g++ or clang++ and its version) to the run's context.
inline void add_compiler_context() {
#if defined(__clang__)
  benchmark::AddCustomContext("compiler", std::string("clang++ ") + __clang_version__);
#elif defined(__GNUC__)
  benchmark::AddCustomContext("compiler", std::string("g++ ") + __VERSION__);
#endif
}

/// Initialises Google Benchmark from the command line, runs the benchmarks registered so far and
/// returns main's exit code (1 for a flag it does not know).
inline int run_benchmarks(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace edgescale::bench
