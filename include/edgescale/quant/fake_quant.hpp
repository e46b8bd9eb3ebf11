// edgescale/quant/fake_quant.hpp — fake quantization for quantization-aware training: the forward
// q̂(v) and its gradients, straight-through (STE) for the value and LSQ for the step, per value,
// per tensor and per output channel.
//
//   const quant::CodeRange codes = quant::unsigned_codes(4);     // Q_N = 0, Q_P = 15
//   float s = quant::lsq_initial_step(mean_abs_v, codes);        // 2·mean|v| / √Q_P
//   float y = quant::fake_quantize(v, s, codes);                 // s·clamp(round(v/s), −Q_N, Q_P)
//   auto g = quant::fake_quantize_gradient(v, s, codes);         // {∂q̂/∂v, ∂q̂/∂s}
//   ds += quant::lsq_gradient_scale<float>(n, codes) * dy * g.step;
//
// With q = clamp(round(v/s), −Q_N, Q_P) the codes around the zero point and x = v/s
// (round = nearest, ties to even: std::nearbyint, as quant/quantizer.hpp):
//   forward   q̂(v) = s·q                    (real = scale·(code − zero point), code = q + Z)
//   STE       ∂q̂/∂v = 1 if −Q_N < x < Q_P, else 0           (Bengio et al. 2013; LSQ Eq. 5)
//   LSQ       ∂q̂/∂s = round(x) − x if −Q_N < x < Q_P; −Q_N if x <= −Q_N; Q_P if x >= Q_P
//             (Esser et al., "Learned Step Size Quantization", ICLR 2020, Eq. 3)
//   scale     the step's gradient is multiplied by g = 1/√(N·Q_P), N the values one step covers:
//             the weights of an output channel, or the features of one sample (LSQ §2.2)
//   init      s = 2·mean|v| / √Q_P (LSQ §2.1), at least float's epsilon
// Code ranges: weights are symmetric narrow, Q_N = Q_P = 2^(b−1) − 1 (int8 weights in
// [−127, 127]); signed activations Q_N = 2^(b−1), Q_P = 2^(b−1) − 1; unsigned activations (after a
// ReLU) Q_N = 0, Q_P = 2^b − 1; a fixed affine quantizer (ActivationParams with zero point Z and
// codes [qmin, qmax]) is Q_N = Z − qmin, Q_P = qmax − Z with its scale as the step.
//
// The float forward computes exactly what the integer network represents: a per-tensor fake
// quantization of floats is ActivationParams::dequantize(quantize(v)) of lsq_params (bit for bit,
// including NaN, which maps to 0), and a weight is s_c·q with q = clamp(nearbyint(w / s_c)) in
// float, the code the converter stores. Bit widths are run-time values here (2 to 8, checked by
// check_bits), so one network type serves 8-bit, 4-bit and mixed precision.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/quant/params.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace edgescale::quant {

/// The integer codes of a fake quantizer around its zero point: q ∈ [−Q_N, Q_P], Q_N, Q_P >= 0.
struct CodeRange {
  std::int32_t qn = 0;  ///< Q_N
  std::int32_t qp = 0;  ///< Q_P
};

/// Throws argument_error unless 2 <= bits <= 8; `who` names the layer or quantizer.
inline void check_bits(int bits, std::string_view who) {
  if (bits < 2 || bits > 8) {
    throw argument_error(std::string(who) + ": " + std::to_string(bits) +
                         " bits; bit widths are 2 to 8");
  }
}

/// Weights: symmetric narrow codes, Q_N = Q_P = 2^(b−1) − 1 ([−127, 127] for 8 bits, [−7, 7] for
/// 4).
inline CodeRange narrow_codes(int bits) {
  check_bits(bits, "quant::narrow_codes");
  const std::int32_t qp = (std::int32_t{1} << (bits - 1)) - 1;
  return {qp, qp};
}
/// Signed activations: Q_N = 2^(b−1), Q_P = 2^(b−1) − 1.
inline CodeRange signed_codes(int bits) {
  check_bits(bits, "quant::signed_codes");
  return {std::int32_t{1} << (bits - 1), (std::int32_t{1} << (bits - 1)) - 1};
}
/// Unsigned activations: Q_N = 0, Q_P = 2^b − 1.
inline CodeRange unsigned_codes(int bits) {
  check_bits(bits, "quant::unsigned_codes");
  return {0, (std::int32_t{1} << bits) - 1};
}
/// The codes of a fixed affine quantization around its zero point: Q_N = Z − qmin, Q_P = qmax − Z.
inline CodeRange codes_of(const ActivationParams& p) {
  return {p.zero_point - p.qmin, p.qmax - p.zero_point};
}

/// The int8-container parameters of a b-bit LSQ activation quantizer with step `step`: signed
/// codes as they are (zero point 0, [−2^(b−1), 2^(b−1) − 1]); unsigned codes u ∈ [0, 2^b − 1]
/// stored as u − 128 (zero point −128), as quant/params.hpp describes.
inline ActivationParams lsq_params(float step, int bits, bool is_signed) {
  const CodeRange c = is_signed ? signed_codes(bits) : unsigned_codes(bits);
  const std::int32_t zero = is_signed ? 0 : -128;
  return {step, zero, zero - c.qn, zero + c.qp, bits};
}

/// LSQ's gradient scale g = 1/√(N·Q_P) for a step that covers N values.
template <class T>
T lsq_gradient_scale(Index n, const CodeRange& codes) {
  return static_cast<T>(1.0 / std::sqrt(static_cast<double>(n) * static_cast<double>(codes.qp)));
}

/// The smallest step: float's epsilon (as quantizer.hpp's zero-width ranges).
inline constexpr double min_step = std::numeric_limits<float>::epsilon();

/// LSQ's initial step 2·mean|v| / √Q_P from the mean absolute value, at least min_step.
template <class T>
T lsq_initial_step(T mean_abs, const CodeRange& codes) {
  const double s = 2.0 * static_cast<double>(mean_abs) / std::sqrt(static_cast<double>(codes.qp));
  return static_cast<T>(std::max(s, min_step));
}

// ---- one value ----

/// q̂(v) = s·clamp(round(v/s), −Q_N, Q_P); NaN maps to 0 (the zero point), as
/// ActivationParams::quantize. A zero is +0 (`+ T(0)`), as the integer network's dequantized
/// zero point.
template <class T>
T fake_quantize(T v, T step, const CodeRange& codes) {
  const T r = std::nearbyint(v / step);
  if (!(r == r)) {
    return T(0);
  }
  return step * (std::clamp(r, static_cast<T>(-codes.qn), static_cast<T>(codes.qp)) + T(0));
}

/// ∂q̂/∂v (STE) and ∂q̂/∂s (LSQ, unscaled) at one value.
template <class T>
struct FakeQuantGradient {
  T input;
  T step;
};

/// The STE and LSQ gradients of q̂ at v (see the top of this file); a NaN value has none.
template <class T>
FakeQuantGradient<T> fake_quantize_gradient(T v, T step, const CodeRange& codes) {
  const T x = v / step;
  if (!(x == x)) {
    return {T(0), T(0)};
  }
  if (x <= static_cast<T>(-codes.qn)) {
    return {T(0), static_cast<T>(-codes.qn)};
  }
  if (x >= static_cast<T>(codes.qp)) {
    return {T(0), static_cast<T>(codes.qp)};
  }
  return {T(1), std::nearbyint(x) - x};
}

// ---- a tensor with one step ----

/// out = q̂(v) for every value (out may be v's memory).
template <class T>
void fake_quantize(const ConstBatchView<T>& v, T step, const CodeRange& codes, BatchView<T> out) {
  const T* in = v.data();
  T* y = out.data();
  for (Index i = 0; i < v.size(); ++i) {
    y[i] = fake_quantize(in[i], step, codes);
  }
}

/// out = p.dequantize(p.quantize(v)): a fixed quantization in the integer network's container.
/// For floats this is ActivationParams' own arithmetic; for other scalar types the same formula
/// in T (codes_of(p), step p.scale).
template <class T>
void fake_quantize(const ConstBatchView<T>& v, const ActivationParams& p, BatchView<T> out) {
  const T* in = v.data();
  T* y = out.data();
  if constexpr (std::is_same_v<T, float>) {
    for (Index i = 0; i < v.size(); ++i) {
      y[i] = p.dequantize(p.quantize(in[i]));
    }
  } else {
    fake_quantize(v, static_cast<T>(p.scale), codes_of(p), out);
  }
}

/// dx = dy ⊙ ∂q̂/∂v (STE; dx may be dy's memory); returns Σ dy ⊙ ∂q̂/∂s (LSQ, before the
/// gradient scale g), summed in double.
template <class T>
T fake_quantize_backward(const ConstBatchView<T>& v, T step, const CodeRange& codes,
                         const ConstBatchView<T>& dy, BatchView<T> dx) {
  const T* in = v.data();
  const T* g = dy.data();
  T* out = dx.data();
  double step_sum = 0;
  for (Index i = 0; i < v.size(); ++i) {
    const FakeQuantGradient<T> d = fake_quantize_gradient(in[i], step, codes);
    step_sum += static_cast<double>(g[i]) * static_cast<double>(d.step);
    out[i] = g[i] * d.input;
  }
  return static_cast<T>(step_sum);
}

// ---- weights, one step per output channel ----
// w holds the channels one after the other (PyTorch's (out, ...) row-major weights): channel c is
// w[c·N, (c + 1)·N) with N = w.size() / steps.size().

namespace detail {
inline Index channel_size(std::size_t values, std::size_t channels, const char* who) {
  if (channels == 0 || values % channels != 0) {
    throw shape_error(std::string(who) + ": " + std::to_string(values) +
                      " weights do not split into " + std::to_string(channels) + " channels");
  }
  return static_cast<Index>(values / channels);
}
}  // namespace detail

/// out[c·N + k] = q̂(w[c·N + k]) with step steps[c] (out may be w's memory).
template <class T>
void fake_quantize_channels(std::span<const T> w, std::span<const T> steps, const CodeRange& codes,
                            std::span<T> out) {
  const Index n = detail::channel_size(w.size(), steps.size(), "quant::fake_quantize_channels");
  for (std::size_t c = 0; c < steps.size(); ++c) {
    const std::size_t first = c * static_cast<std::size_t>(n);
    for (std::size_t k = first; k < first + static_cast<std::size_t>(n); ++k) {
      out[k] = fake_quantize(w[k], steps[c], codes);
    }
  }
}

/// From dŵ (the gradient w.r.t. the fake-quantized weights) writes dw = dŵ ⊙ ∂ŵ/∂w (STE; dw may
/// be dŵ's memory) and dsteps[c] = g·Σ_k dŵ ⊙ ∂ŵ/∂s_c with g = 1/√(N·Q_P) (LSQ, scaled).
template <class T>
void fake_quantize_channels_backward(std::span<const T> w, std::span<const T> steps,
                                     const CodeRange& codes, std::span<const T> dw_hat,
                                     std::span<T> dw, std::span<T> dsteps) {
  const Index n =
      detail::channel_size(w.size(), steps.size(), "quant::fake_quantize_channels_backward");
  const T g = lsq_gradient_scale<T>(n, codes);
  for (std::size_t c = 0; c < steps.size(); ++c) {
    const std::size_t first = c * static_cast<std::size_t>(n);
    double step_sum = 0;
    for (std::size_t k = first; k < first + static_cast<std::size_t>(n); ++k) {
      const FakeQuantGradient<T> d = fake_quantize_gradient(w[k], steps[c], codes);
      step_sum += static_cast<double>(dw_hat[k]) * static_cast<double>(d.step);
      dw[k] = dw_hat[k] * d.input;
    }
    dsteps[c] = g * static_cast<T>(step_sum);
  }
}

}  // namespace edgescale::quant
