// edgescale/quant.hpp — quantization: the Quantizer and Observer concepts, quantizers and
// observers, calibration, post-training conversion to the integer network (BatchNorm folding,
// ReLU fusion, per-layer errors), quantization-aware training (fake quantization, LSQ), the int8
// GEMM kernels, and export to a self-contained device header. docs/quantization.md is the guide.
#pragma once

#include <edgescale/quant/calibrate.hpp>
#include <edgescale/quant/concepts.hpp>
#include <edgescale/quant/export.hpp>
#include <edgescale/quant/fake_quant.hpp>
#include <edgescale/quant/fixed_point.hpp>
#include <edgescale/quant/gemm_s8.hpp>
#include <edgescale/quant/lowering.hpp>
#include <edgescale/quant/observer.hpp>
#include <edgescale/quant/params.hpp>
#include <edgescale/quant/qat.hpp>
#include <edgescale/quant/qnetwork.hpp>
#include <edgescale/quant/quantizer.hpp>
#include <edgescale/quant/stages.hpp>
