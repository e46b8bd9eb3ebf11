// edgescale/quant/kernels/intrinsics.hpp — <immintrin.h> for the x86-64 kernels (avx2.hpp,
// avx512_vnni.hpp), when they are compiled (EDGESCALE_QUANT_X86_KERNELS, set by portable.hpp).
#pragma once

#include <edgescale/quant/kernels/portable.hpp>

#if EDGESCALE_QUANT_X86_KERNELS
// g++ 12 raises -Wmaybe-uninitialized inside its own avx512fintrin.h (the deliberately undefined
// source operand of _mm512_slli_epi32 and friends): a false positive, silenced as core/eigen.hpp
// does, for the intrinsics headers only (GCC judges by the location it warns about).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif
