// edgescale/nn/extern_kernels.hpp — the matrix products every layer shares, compiled once per
// program instead of once per translation unit.
//
// A header-only library compiles its kernels in every file that uses them. The products all
// layers are made of (nn/detail/gemm.hpp) are a good part of a file's compile time; a program of
// several files can compile them once: include this header in each file, and in exactly one of
// them define EDGESCALE_INSTANTIATE_KERNELS first.
//
//   // kernels.cpp — the one file that compiles them
//   #define EDGESCALE_INSTANTIATE_KERNELS
//   #include <edgescale/nn/extern_kernels.hpp>
//
//   // every other file
//   #include <edgescale/nn/extern_kernels.hpp>
//   #include <edgescale/nn.hpp>
//
// Without this header nothing changes but compile time: the program is the same.
#pragma once

#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/detail/gemm.hpp>

#if defined(EDGESCALE_INSTANTIATE_KERNELS)
#define EDGESCALE_KERNEL_INSTANCE template
#else
#define EDGESCALE_KERNEL_INSTANCE extern template
#endif

namespace edgescale::nn::detail {

// clang-format off
EDGESCALE_KERNEL_INSTANCE void gemm_nn<float>(const ConstBatchView<float>&, const ConstBatchView<float>&, BatchView<float>);
EDGESCALE_KERNEL_INSTANCE void gemm_tn<float>(const ConstBatchView<float>&, const ConstBatchView<float>&, BatchView<float>);
EDGESCALE_KERNEL_INSTANCE void gemm_nt<float>(const ConstBatchView<float>&, const ConstBatchView<float>&, BatchView<float>);
EDGESCALE_KERNEL_INSTANCE void gemm_nn<double>(const ConstBatchView<double>&, const ConstBatchView<double>&, BatchView<double>);
EDGESCALE_KERNEL_INSTANCE void gemm_tn<double>(const ConstBatchView<double>&, const ConstBatchView<double>&, BatchView<double>);
EDGESCALE_KERNEL_INSTANCE void gemm_nt<double>(const ConstBatchView<double>&, const ConstBatchView<double>&, BatchView<double>);
// clang-format on

}  // namespace edgescale::nn::detail

#undef EDGESCALE_KERNEL_INSTANCE
