// edgescale/core/eigen.hpp — the one place the library includes Eigen.
//
// Every edgescale header that needs Eigen includes this header, never <Eigen/...> itself, so the
// few adjustments Eigen needs are made once. A program that includes <Eigen/Core> itself should
// include an edgescale header (or this one) first: the adjustments below act only on the first
// inclusion of Eigen in a translation unit.
#pragma once

// g++ 12 with AVX-512 (-march=native on such a machine, or -march=x86-64-v4) raises
// -Wmaybe-uninitialized inside its own avx512fintrin.h as inlined from Eigen's AVX-512 reductions
// (predux of Packet16f and friends): a false positive in code that is neither ours nor the
// user's, which -Werror turns into a failed build. GCC decides whether to report a warning by the
// location of the code it warns about, so ignoring the warning while Eigen's headers (and the
// intrinsics headers they pull in) are first read silences exactly those reports, while a
// maybe-uninitialized variable in our code or the user's is still reported. clang does not raise
// it, and keeps its own diagnostics.
// The same headers raise -Wuninitialized too: the sum of a fixed-size Array<double, 8> (a direct
// convolution's weight-gradient accumulator) inlines Eigen's predux of Packet8d, whose
// _mm512_extractf64x4_pd passes _mm256_undefined_pd() — deliberately undefined — as the
// unused source of a masked extract. Ignored the same way, for the same reason.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <Eigen/Core>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
