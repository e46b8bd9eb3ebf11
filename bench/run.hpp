// bench/run.hpp — how the bench programs end their main: the compiler named in the context, then
// Google Benchmark's run of what register_all() registered, refusing flags it does not know.
#pragma once

#include <benchmark/benchmark.h>

#include <string>

namespace edgescale::bench {

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
