// edgescale/quant/params.hpp — the quantization parameters of one activation tensor, as the
// integer network stores them: int8 codes whatever the bit width.
//
//   auto p = quant::ActivationParams::from_quantizer(observer.quantizer<quant::Affine<4>>());
//   // p.scale, p.zero_point; codes live in [p.qmin, p.qmax] ⊂ [−128, 127]: 16 codes for 4 bits
//   float r = p.dequantize(code);                  // scale · (code − zero_point)
//
// Every activation of the integer network is an int8 container: a b-bit unsigned code u in
// [0, 2^b − 1] with zero point Z_u is stored as u − 128 with zero point Z_u − 128, so a 4-bit
// activation uses the 16 codes [−128, −113] and one kernel serves every width (the clamp of the
// requantization keeps values inside them). A signed b-bit code is stored as is. real =
// scale · (code − zero_point) in both cases.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/quant/quantizer.hpp>

#include <cmath>
#include <cstdint>
#include <string>

namespace edgescale::quant {

/// One per-tensor activation quantization in the int8 container (see the top of this file).
struct ActivationParams {
  float scale = 1.0F;
  std::int32_t zero_point = 0;
  std::int32_t qmin = -128;
  std::int32_t qmax = 127;
  int bits = 8;

  [[nodiscard]] float dequantize(std::int32_t code) const {
    return scale * static_cast<float>(code - zero_point);
  }
  /// zero_point + round(x / scale) (ties to even), saturated to [qmin, qmax]; NaN maps to the
  /// zero point.
  [[nodiscard]] std::int32_t quantize(float x) const {
    const float r = std::nearbyint(x / scale);
    if (!(r == r)) {
      return zero_point;
    }
    const float shifted = r + static_cast<float>(zero_point);
    if (shifted <= static_cast<float>(qmin)) {
      return qmin;
    }
    if (shifted >= static_cast<float>(qmax)) {
      return qmax;
    }
    return static_cast<std::int32_t>(shifted);
  }

  /// Throws argument_error unless the parameters describe codes of `bits` bits inside int8 (2^bits
  /// or, narrow, 2^bits − 1 codes) with a positive finite scale and the zero point inside the
  /// codes.
  void check(const char* who) const {
    const bool ok = bits >= 2 && bits <= 8 && std::isfinite(scale) && scale > 0 && qmin >= -128 &&
                    qmax <= 127 && qmin < qmax && qmax - qmin <= (1 << bits) - 1 &&
                    qmax - qmin >= (1 << bits) - 2 && zero_point >= qmin && zero_point <= qmax;
    if (!ok) {
      throw argument_error(std::string(who) + ": invalid activation quantization (scale " +
                           std::to_string(scale) + ", zero point " + std::to_string(zero_point) +
                           ", codes [" + std::to_string(qmin) + ", " + std::to_string(qmax) +
                           "], " + std::to_string(bits) + " bits)");
    }
  }

  /// quant::Affine<bits, unsigned> of [lo, hi] (widened to include 0) in the container; bits 2 to
  /// 8 at run time (argument_error otherwise, or for a NaN or infinite bound).
  [[nodiscard]] static ActivationParams affine(float lo, float hi, int bits) {
    switch (bits) {
      case 2:
        return from_quantizer(Affine<2>::from_range(lo, hi));
      case 3:
        return from_quantizer(Affine<3>::from_range(lo, hi));
      case 4:
        return from_quantizer(Affine<4>::from_range(lo, hi));
      case 5:
        return from_quantizer(Affine<5>::from_range(lo, hi));
      case 6:
        return from_quantizer(Affine<6>::from_range(lo, hi));
      case 7:
        return from_quantizer(Affine<7>::from_range(lo, hi));
      case 8:
        return from_quantizer(Affine<8>::from_range(lo, hi));
      default:
        throw argument_error("ActivationParams::affine: bit width " + std::to_string(bits) +
                             " (bit widths are 2 to 8)");
    }
  }

  /// The container form of a per-tensor quantizer (quant/quantizer.hpp): unsigned codes shifted
  /// by −128, signed codes as they are. Symmetric signed quantizers keep their narrow range.
  template <class Q>
  [[nodiscard]] static ActivationParams from_quantizer(const Q& q) {
    if (q.channels() != 1) {
      throw argument_error("ActivationParams: activations are quantized per tensor, got " +
                           std::to_string(q.channels()) + " channels");
    }
    const std::int32_t shift = Q::is_signed ? 0 : -128;
    return {q.scale(0), q.zero_point(0) + shift, Q::qmin + shift, Q::qmax + shift, Q::bits};
  }
};

}  // namespace edgescale::quant
