// edgescale/quant/export.hpp — the deployment side of an integer network: one self-contained
// C++ header of the model and its runtime (a microcontroller needs nothing else), and its size in
// bytes, dense and sparse.
//
//   auto qnet = quant::convert(net, cal);
//   std::ofstream file("lenet5.hpp");
//   quant::export_header(qnet, file, {.name = "lenet5", .comment = "LeNet-5, Fashion-MNIST"});
//   quant::ModelSize size = quant::model_size(qnet);  // fp32_bytes, quantized_bytes, sparse_bytes
//
// and on the device (C++17, <cstdint> and <cstddef> only, no heap):
//
//   #include "lenet5.hpp"
//   static lenet5::Buffers buffers;                     // all scratch, sized for the largest stage
//   std::int8_t logits[lenet5::output_size];
//   int label = lenet5::predict(image, buffers, logits);  // image: input_size floats, CHW
//   float scores[lenet5::output_size];
//   lenet5::dequantize(logits, scores);                 // output scale · (code − zero point)
//
// The header holds the model as constexpr arrays (a struct per weighted stage: int8 weights in
// the GEMM order of Requantizer::codes(), for a convolution (ky, kx, c) patches of HWC codes;
// int32 biases with the zero-point correction folded in; int32 multipliers and shifts; the output
// zero point and clamp) and the integer runtime restated for static shapes: the same arithmetic
// as quant/stages.hpp, code for code — the float input quantized to HWC codes (round half to
// even, as std::nearbyint), Dense, Conv2D over im2col patches padded with the input zero point
// (one patch at a time, so the scratch is one patch, not the whole im2col matrix), max and
// average pooling, unfused ReLU, flatten HWC → CHW, and TFLite's double-rounding requantization
// of quant/fixed_point.hpp. Stages that do nothing (a fused ReLU, a folded BatchNorm, the flatten
// of a vector) emit nothing. A stage type the exporter does not know (a user's) is a compile
// error naming it, never a wrong header. Weights are stored one int8 each whatever their width
// (the kernels read bytes); model_size's packed figure is what a bit-packing format would store.
//
// Model size. For each weighted stage ℓ (Dense, Conv2D) with n_ℓ weights, C_ℓ output channels,
// nz_ℓ nonzero weight codes and storage width b_ℓ = Requantizer::weight_bits() (2 to 8):
//   fp32       4·n_ℓ + 4·C_ℓ                     a float weight each, and a float bias per channel
//                                                (BatchNorm folded: the network that was quantized)
//   quantized  ⌈n_ℓ·b_ℓ/8⌉ + 9·C_ℓ               weights packed at b_ℓ bits, then per channel an
//                                                int32 bias, an int32 multiplier, a 1-byte shift
//   sparse     ⌈nz_ℓ·b_ℓ/8⌉ + ⌈n_ℓ/8⌉ + 9·C_ℓ    only the nonzero codes packed, a 1-bit-per-weight
//                                                bitmap of where they are, the same per channel
// and the network's quantized and sparse sizes add 7 bytes per quantized activation tensor (the
// input and each weighted stage's output: a float scale, an int8 zero point and the int8 clamp
// [min, max]). The sparse form pays 1 bit per weight, so it beats the dense one when more than
// 1/b_ℓ of a layer's weights are zero (1/8 at 8 bits): a pruned network's saving shows there.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/quant/params.hpp>
#include <edgescale/quant/qnetwork.hpp>
#include <edgescale/quant/stages.hpp>

#include <algorithm>
#include <cctype>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <locale>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace edgescale::quant {

/// The bytes of one weighted stage (see the top of this file).
struct LayerSize {
  std::size_t stage = 0;     ///< its index in the integer network (0 is the input)
  std::size_t weights = 0;   ///< n: weight codes
  std::size_t nonzero = 0;   ///< nz: nonzero weight codes
  std::size_t channels = 0;  ///< C: output channels
  int bits = 8;              ///< b: the storage width of its codes
  std::size_t fp32_bytes = 0;
  std::size_t quantized_bytes = 0;
  std::size_t sparse_bytes = 0;
};

/// An integer network's size as fp32, quantized, and quantized with a sparsity bitmap.
struct ModelSize {
  std::size_t fp32_bytes = 0;
  std::size_t quantized_bytes = 0;   ///< includes activation_bytes
  std::size_t sparse_bytes = 0;      ///< includes activation_bytes
  std::size_t activation_bytes = 0;  ///< 7 bytes per quantized activation tensor
  std::size_t weights = 0;
  std::size_t nonzero_weights = 0;
  std::vector<LayerSize> layers;  ///< the weighted stages, in order
};

/// Bytes of one quantized activation tensor's parameters: float scale, int8 zero point, int8
/// clamp bounds.
inline constexpr std::size_t activation_param_bytes = 4 + 1 + 2;

namespace detail {

template <class Stage>
concept HasRequantizer = requires(const Stage& s) {
  { s.requantizer() } -> std::same_as<const Requantizer&>;
};

[[nodiscard]] inline LayerSize layer_size(std::size_t stage, const Requantizer& rq) {
  LayerSize s;
  s.stage = stage;
  s.weights = rq.codes().size();
  for (const std::int8_t c : rq.codes()) {
    s.nonzero += c != 0 ? 1 : 0;
  }
  s.channels = static_cast<std::size_t>(rq.out_channels());
  s.bits = rq.weight_bits();
  const auto bits = static_cast<std::size_t>(s.bits);
  const std::size_t per_channel = 4 + 4 + 1;  // int32 bias, int32 multiplier, shift
  s.fp32_bytes = 4 * s.weights + 4 * s.channels;
  s.quantized_bytes = (s.weights * bits + 7) / 8 + per_channel * s.channels;
  s.sparse_bytes = (s.nonzero * bits + 7) / 8 + (s.weights + 7) / 8 + per_channel * s.channels;
  return s;
}

}  // namespace detail

/// The size of `qnet` as fp32, quantized and sparse (formulas at the top of this file). Stages
/// without weights (pooling, ReLU, flatten, folded BatchNorm) cost nothing; a user's stage counts
/// when it exposes a Requantizer through `requantizer()`.
template <StaticShape In, class... Stages>
[[nodiscard]] ModelSize model_size(const QNetwork<In, Stages...>& qnet) {
  ModelSize size;
  size.activation_bytes = activation_param_bytes;  // the input
  qnet.for_each_stage([&](std::size_t index, const auto& stage) {
    if constexpr (detail::HasRequantizer<std::remove_cvref_t<decltype(stage)>>) {
      const LayerSize layer = detail::layer_size(index, stage.requantizer());
      size.fp32_bytes += layer.fp32_bytes;
      size.quantized_bytes += layer.quantized_bytes;
      size.sparse_bytes += layer.sparse_bytes;
      size.weights += layer.weights;
      size.nonzero_weights += layer.nonzero;
      size.activation_bytes += activation_param_bytes;  // its output
      size.layers.push_back(layer);
    }
  });
  size.quantized_bytes += size.activation_bytes;
  size.sparse_bytes += size.activation_bytes;
  return size;
}

// ---- export_header ----

/// What export_header writes.
struct ExportOptions {
  /// The C++ namespace of the model: an identifier, or identifiers joined by :: (C++17 nested
  /// namespaces).
  std::string name = "edgescale_model";
  /// Written at the top of the header, each line as a // comment (what the model is, its data).
  std::string comment{};
};

namespace detail {

/// The integer runtime of an exported header, C++17 with <cstdint> only: quant/stages.hpp and
/// quant/fixed_point.hpp restated for shapes known at compile time (see the top of this file).
inline constexpr std::string_view export_runtime =
    R"runtime(/// The integer runtime: edgescale's integer stages (quant/stages.hpp) for static shapes. Codes are
/// int8, images HWC (channels innermost), accumulators int32; requantization is TFLite's.
namespace kernels {

/// a*b / 2^31 rounded to nearest, ties toward +inf (TFLite's SaturatingRoundingDoublingHighMul);
/// INT32_MAX for a = b = INT32_MIN, the one product that overflows.
constexpr std::int32_t saturating_rounding_doubling_high_mul(std::int32_t a, std::int32_t b) {
  const std::int64_t ab = static_cast<std::int64_t>(a) * static_cast<std::int64_t>(b);
  const std::int64_t nudge = ab >= 0 ? (std::int64_t{1} << 30) : 1 - (std::int64_t{1} << 30);
  return a == b && a == -2147483647 - 1
             ? 2147483647
             : static_cast<std::int32_t>((ab + nudge) / (std::int64_t{1} << 31));
}

/// x / 2^exponent rounded half away from zero, exponent in [0, 31] (TFLite's RoundingDivideByPOT;
/// >> of a negative value shifts arithmetically on the compilers this targets, and by definition
/// since C++20).
constexpr std::int32_t rounding_divide_by_pot(std::int32_t x, int exponent) {
  const auto mask = static_cast<std::int32_t>((std::int64_t{1} << exponent) - 1);
  const std::int32_t remainder = x & mask;
  const std::int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/// x*M for M = multiplier*2^(shift - 31), rounding twice as TFLite does: a positive shift
/// multiplies x first (saturating at the int32 range), a negative one divides after the high
/// multiply.
constexpr std::int32_t multiply_by_quantized_multiplier(std::int32_t x, std::int32_t multiplier,
                                                        int shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  std::int64_t shifted = static_cast<std::int64_t>(x) * (std::int64_t{1} << left);
  if (shifted > 2147483647) {
    shifted = 2147483647;
  } else if (shifted < -2147483647 - 1) {
    shifted = -2147483647 - 1;
  }
  return rounding_divide_by_pot(
      saturating_rounding_doubling_high_mul(static_cast<std::int32_t>(shifted), multiplier),
      right);
}

/// The code of output channel o of weighted layer L: Z_out + M_o*(acc + bias'_o), clamped to
/// [act_min, act_max] (a fused ReLU is the narrower act_min).
template <class L>
std::int8_t requantize(std::int32_t acc, int o) {
  const std::int32_t v =
      multiply_by_quantized_multiplier(acc + L::bias[o], L::multiplier[o], L::shift[o]) +
      L::output_zero_point;
  return static_cast<std::int8_t>(v < L::act_min ? L::act_min : v > L::act_max ? L::act_max : v);
}

/// sum_k w[k]*x[k] in int32.
template <int N>
std::int32_t dot(const std::int8_t* w, const std::int8_t* x) {
  std::int32_t acc = 0;
  for (int k = 0; k < N; ++k) {
    acc += std::int32_t{w[k]} * std::int32_t{x[k]};
  }
  return acc;
}

/// v rounded to the nearest integer, ties to even (std::nearbyint in the default rounding mode),
/// for |v| < 2^31.
inline std::int32_t round_half_to_even(float v) {
  auto t = static_cast<std::int32_t>(v);             // toward zero
  const float fraction = v - static_cast<float>(t);  // exact
  if (fraction > 0.5F || (fraction == 0.5F && t % 2 != 0)) {
    ++t;
  } else if (fraction < -0.5F || (fraction == -0.5F && t % 2 != 0)) {
    --t;
  }
  return t;
}

/// A float's code under the input quantization Q: Z + round(x / S) (ties to even), saturated to
/// [qmin, qmax]; NaN gives Z.
template <class Q>
std::int8_t quantize(float x) {
  const float v = x / Q::scale;
  std::int32_t q = Q::zero_point;
  if (v >= 1e9F) {
    q = Q::qmax;
  } else if (v <= -1e9F) {
    q = Q::qmin;
  } else if (v == v) {
    q = round_half_to_even(v) + Q::zero_point;
    q = q < Q::qmin ? Q::qmin : q > Q::qmax ? Q::qmax : q;
  }
  return static_cast<std::int8_t>(q);
}

/// The float input (CHW, the float network's layout) to HWC codes; a vector is `channels` values
/// of one pixel.
template <class Q>
void quantize_input(const float* x, std::int8_t* y) {
  for (int c = 0; c < Q::channels; ++c) {
    for (int p = 0; p < Q::pixels; ++p) {
      y[p * Q::channels + c] = quantize<Q>(x[c * Q::pixels + p]);
    }
  }
}

/// A fully connected layer: y[o] = requantize(sum_k W[o, k]*x[k], o).
template <class L>
void dense(const std::int8_t* x, std::int8_t* y) {
  for (int o = 0; o < L::out; ++o) {
    y[o] = requantize<L>(dot<L::in>(L::weights + o * L::in, x), o);
  }
}

/// A convolution over HWC codes: per output pixel its im2col patch ((ky, kx, c) order, positions
/// outside the image at the input zero point, the code of a real 0), then a dot product per output
/// channel. A 1x1 convolution of stride 1 without padding reads the pixel itself.
template <class L>
void conv2d(const std::int8_t* x, std::int8_t* patch, std::int8_t* y) {
  for (int oy = 0; oy < L::out_height; ++oy) {
    for (int ox = 0; ox < L::out_width; ++ox) {
      const std::int8_t* column = patch;
      if constexpr (L::direct) {
        column = x + (oy * L::width + ox) * L::in_channels;
      } else {
        std::int8_t* dst = patch;
        for (int ky = 0; ky < L::kernel; ++ky) {
          const int iy = oy * L::stride - L::padding + ky;
          for (int kx = 0; kx < L::kernel; ++kx, dst += L::in_channels) {
            const int ix = ox * L::stride - L::padding + kx;
            if (iy < 0 || iy >= L::height || ix < 0 || ix >= L::width) {
              for (int c = 0; c < L::in_channels; ++c) {
                dst[c] = static_cast<std::int8_t>(L::input_zero_point);
              }
            } else {
              const std::int8_t* src = x + (iy * L::width + ix) * L::in_channels;
              for (int c = 0; c < L::in_channels; ++c) {
                dst[c] = src[c];
              }
            }
          }
        }
      }
      std::int8_t* out = y + (oy * L::out_width + ox) * L::out_channels;
      for (int o = 0; o < L::out_channels; ++o) {
        out[o] = requantize<L>(dot<L::patch>(L::weights + o * L::patch, column), o);
      }
    }
  }
}

/// Max pooling of K x K windows, stride S, on HWC codes (the quantization is monotonic: the
/// maximum code is the code of the maximum).
template <int C, int H, int W, int K, int S>
void max_pool(const std::int8_t* x, std::int8_t* y) {
  constexpr int out_height = (H - K) / S + 1;
  constexpr int out_width = (W - K) / S + 1;
  for (int oy = 0; oy < out_height; ++oy) {
    for (int ox = 0; ox < out_width; ++ox) {
      std::int8_t* out = y + (oy * out_width + ox) * C;
      const std::int8_t* window = x + (oy * S * W + ox * S) * C;
      for (int c = 0; c < C; ++c) {
        out[c] = window[c];
      }
      for (int ky = 0; ky < K; ++ky) {
        for (int kx = 0; kx < K; ++kx) {
          const std::int8_t* v = window + (ky * W + kx) * C;
          for (int c = 0; c < C; ++c) {
            out[c] = v[c] > out[c] ? v[c] : out[c];
          }
        }
      }
    }
  }
}

/// Average pooling of K x K windows, stride S, on HWC codes: the sum over the window divided by
/// K^2 rounding half away from zero (TFLite's reference kernel).
template <int C, int H, int W, int K, int S>
void avg_pool(const std::int8_t* x, std::int8_t* y) {
  constexpr int out_height = (H - K) / S + 1;
  constexpr int out_width = (W - K) / S + 1;
  constexpr int count = K * K;
  for (int oy = 0; oy < out_height; ++oy) {
    for (int ox = 0; ox < out_width; ++ox) {
      std::int8_t* out = y + (oy * out_width + ox) * C;
      const std::int8_t* window = x + (oy * S * W + ox * S) * C;
      for (int c = 0; c < C; ++c) {
        int sum = 0;
        for (int ky = 0; ky < K; ++ky) {
          for (int kx = 0; kx < K; ++kx) {
            sum += window[(ky * W + kx) * C + c];
          }
        }
        sum = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
        out[c] = static_cast<std::int8_t>(sum);
      }
    }
  }
}

/// ReLU on codes, in place: max(q, Z).
template <int N, std::int32_t Z>
void relu(std::int8_t* x) {
  constexpr auto zero = static_cast<std::int8_t>(Z);
  for (int i = 0; i < N; ++i) {
    x[i] = x[i] < zero ? zero : x[i];
  }
}

/// HWC codes to the CHW order of the float network's flatten.
template <int C, int Pixels>
void hwc_to_chw(const std::int8_t* x, std::int8_t* y) {
  for (int p = 0; p < Pixels; ++p) {
    for (int c = 0; c < C; ++c) {
      y[c * Pixels + p] = x[p * C + c];
    }
  }
}

/// The index of the largest code, the first of equals.
template <int N>
int argmax(const std::int8_t* x) {
  int best = 0;
  for (int i = 1; i < N; ++i) {
    best = x[i] > x[best] ? i : best;
  }
  return best;
}

}  // namespace kernels
)runtime";

/// False for every type: the condition of the unknown stage's static_assert (dependent on it).
template <class>
inline constexpr bool known_stage = false;

/// What the exporter knows while it walks the stages.
struct ExportState {
  std::ostringstream model;    // constant data: the input's quantization, a struct per layer
  std::ostringstream forward;  // the statements of forward()
  ActivationParams current;    // the quantization of the codes the next stage reads
  Index size = 0;              // their number per sample
  int buffer = 0;              // the activation buffer that holds them
  Index max_codes = 0;         // the largest stage output
  Index max_patch = 0;         // the largest im2col patch
  std::size_t stage = 0;       // the stage being written (0: the input)
  std::string last_weighted;   // "layer N" of the last weighted stage, for comments

  ExportState() {
    model.imbue(std::locale::classic());
    forward.imbue(std::locale::classic());
  }
  [[nodiscard]] std::string layer() const { return "layer" + std::to_string(stage - 1); }
  [[nodiscard]] std::string in() const { return "buffers.codes[" + std::to_string(buffer) + "]"; }
  [[nodiscard]] std::string out() const {
    return "buffers.codes[" + std::to_string(1 - buffer) + "]";
  }
  /// The stage wrote `codes` codes per sample into the other buffer.
  void swap(Index codes) {
    buffer = 1 - buffer;
    produced(codes);
  }
  void produced(Index codes) {
    size = codes;
    max_codes = std::max(max_codes, codes);
  }
};

/// A float that reads back as the same float (9 significant digits).
[[nodiscard]] inline std::string float_literal(float v) {
  std::ostringstream s;
  s.imbue(std::locale::classic());
  s << std::scientific << std::setprecision(8) << v << 'F';
  return s.str();
}

[[nodiscard]] inline std::string int_literal(std::int64_t v) {
  return v == -2147483648LL ? std::string("(-2147483647 - 1)") : std::to_string(v);
}

/// `static constexpr type name[n] = {...};`, the values in lines of at most 100 columns.
template <class T>
void write_array(std::ostream& out, std::string_view type, std::string_view name,
                 std::span<const T> values) {
  out << "  static constexpr " << type << ' ' << name << '[' << values.size() << "] = {";
  std::size_t column = 100;
  for (const T v : values) {
    const std::string text = int_literal(v);
    if (column + text.size() + 2 > 100) {
      out << "\n     ";
      column = 5;
    }
    out << ' ' << text << ',';
    column += text.size() + 2;
  }
  out << "\n  };\n";
}

/// The requantization of a weighted stage: output zero point, clamp, weights, bias, multipliers.
inline void write_requantizer(std::ostream& out, const Requantizer& rq, std::size_t stage) {
  const std::size_t expected = static_cast<std::size_t>(rq.out_channels() * rq.fan_in());
  if (rq.codes().size() != expected || rq.codes().empty()) {
    throw argument_error("quant::export_header: stage " + std::to_string(stage) +
                         " holds no weights (a default-constructed stage)");
  }
  const ActivationParams& o = rq.output_params();
  out << "  static constexpr std::int32_t output_zero_point = " << o.zero_point
      << ", act_min = " << rq.act_min() << ", act_max = " << rq.act_max() << ";\n";
  write_array(out, "std::int8_t", "weights", rq.codes());
  write_array(out, "std::int32_t", "bias", rq.bias());
  std::vector<std::int32_t> values;
  std::vector<std::int32_t> shifts;
  for (const Multiplier& m : rq.multipliers()) {
    values.push_back(m.value);
    shifts.push_back(m.shift);
  }
  write_array(out, "std::int32_t", "multiplier", std::span<const std::int32_t>(values));
  write_array(out, "std::int8_t", "shift", std::span<const std::int32_t>(shifts));
}

/// "1x28x28" or "400".
template <StaticShape S>
[[nodiscard]] std::string shape_text() {
  // Appended piece by piece: g++ 12 at -O3 raises a false -Wrestrict on "x" + std::string.
  std::string s;
  for (std::size_t i = 0; i < S::rank; ++i) {
    if (i > 0) {
      s += 'x';
    }
    s += std::to_string(S::dims[i]);
  }
  return s;
}

/// How stage type Stage is written (specialised below for the stages of quant/stages.hpp).
template <class Stage>
struct stage_export {
  static_assert(known_stage<Stage>,
                "quant::export_header: this stage type has no C++ export (the instantiation of "
                "stage_export<...> in this diagnostic names it); only the stages of "
                "quant/stages.hpp export");
  static void emit(const Stage& /*stage*/, ExportState& /*state*/) {}
};

template <StaticShape S>
struct stage_export<QuantizeStage<S>> {
  static void emit(const QuantizeStage<S>& stage, ExportState& st) {
    const ActivationParams& p = stage.output_params();
    constexpr Index channels = S::rank == 3 ? Index{S::dims[0]} : Index{S::size};
    st.model << "/// The float input: " << S::size << " values ("
             << (S::rank == 3 ? "a " + shape_text<S>() + " CHW image" : std::string("a vector"))
             << "), quantized per tensor to " << p.bits << "-bit codes.\n"
             << "struct input_params {\n"
             << "  static constexpr int size = " << S::size << ", channels = " << channels
             << ", pixels = " << S::size / channels << ";\n"
             << "  static constexpr float scale = " << float_literal(p.scale) << ";\n"
             << "  static constexpr std::int32_t zero_point = " << p.zero_point
             << ", qmin = " << p.qmin << ", qmax = " << p.qmax << ";\n};\n\n";
    st.forward << "  kernels::quantize_input<input_params>(input, " << st.in() << ");\n";
    st.current = p;
    st.produced(S::size);
  }
};

template <int In, int Out>
struct stage_export<DenseStage<In, Out>> {
  static void emit(const DenseStage<In, Out>& stage, ExportState& st) {
    const Requantizer& rq = stage.requantizer();
    const std::string what = "Dense " + std::to_string(In) + " -> " + std::to_string(Out);
    st.model << "/// " << st.layer() << ": " << what << "; " << rq.weight_bits()
             << "-bit weights, (out, in) order.\nstruct " << st.layer() << " {\n"
             << "  static constexpr int in = " << In << ", out = " << Out << ";\n";
    write_requantizer(st.model, rq, st.stage);
    st.model << "};\n\n";
    st.forward << "  // " << st.layer() << ": " << what << "\n"
               << "  kernels::dense<" << st.layer() << ">(" << st.in() << ", " << st.out()
               << ");\n";
    st.current = rq.output_params();
    st.last_weighted = st.layer();
    st.swap(Out);
  }
};

template <ImageShape InS, int Cout, int K, int S, int P>
struct stage_export<Conv2DStage<InS, Cout, K, S, P>> {
  using stage_type = Conv2DStage<InS, Cout, K, S, P>;
  static void emit(const stage_type& stage, ExportState& st) {
    const Requantizer& rq = stage.requantizer();
    using OutS = typename stage_type::output_shape;
    const std::string what = "Conv2D " + shape_text<InS>() + " -> " + shape_text<OutS>() + ", " +
                             std::to_string(K) + "x" + std::to_string(K) + " kernels, stride " +
                             std::to_string(S) + ", padding " + std::to_string(P);
    st.model << "/// " << st.layer() << ": " << what << ";\n/// " << rq.weight_bits()
             << "-bit weights, (out, ky, kx, c) order: a row per output channel, in patch order.\n"
             << "struct " << st.layer() << " {\n"
             << "  static constexpr int in_channels = " << InS::dims[0]
             << ", height = " << InS::dims[1] << ", width = " << InS::dims[2] << ";\n"
             << "  static constexpr int out_channels = " << Cout
             << ", out_height = " << stage_type::out_height
             << ", out_width = " << stage_type::out_width << ";\n"
             << "  static constexpr int kernel = " << K << ", stride = " << S << ", padding = " << P
             << ", patch = " << stage_type::patch << ";\n"
             << "  static constexpr bool direct = " << (stage_type::direct ? "true" : "false")
             << ";  // a 1x1 convolution of stride 1 without padding: no patch\n"
             << "  static constexpr std::int32_t input_zero_point = "
             << rq.input_params().zero_point << ";  // the padding\n";
    write_requantizer(st.model, rq, st.stage);
    st.model << "};\n\n";
    st.forward << "  // " << st.layer() << ": " << what << "\n"
               << "  kernels::conv2d<" << st.layer() << ">(" << st.in() << ", buffers.patch, "
               << st.out() << ");\n";
    if constexpr (!stage_type::direct) {
      st.max_patch = std::max(st.max_patch, stage_type::patch);
    }
    st.current = rq.output_params();
    st.last_weighted = st.layer();
    st.swap(OutS::size);
  }
};

template <ImageShape InS, int K, int S>
void emit_pool(ExportState& st, std::string_view kind, std::string_view kernel) {
  using geometry = QPool<InS, K, S>;
  st.forward << "  // " << st.layer() << ": " << kind << " " << K << "x" << K << ", stride " << S
             << ", " << shape_text<InS>() << " -> " << shape_text<typename geometry::output_shape>()
             << "\n"
             << "  kernels::" << kernel << '<' << geometry::c << ", " << geometry::h << ", "
             << geometry::w << ", " << K << ", " << S << ">(" << st.in() << ", " << st.out()
             << ");\n";
  st.swap(geometry::output_shape::size);
}

template <ImageShape InS, int K, int S>
struct stage_export<MaxPoolStage<InS, K, S>> {
  static void emit(const MaxPoolStage<InS, K, S>& /*stage*/, ExportState& st) {
    emit_pool<InS, K, S>(st, "MaxPool2D", "max_pool");
  }
};

template <ImageShape InS, int K, int S>
struct stage_export<AvgPoolStage<InS, K, S>> {
  static void emit(const AvgPoolStage<InS, K, S>& /*stage*/, ExportState& st) {
    emit_pool<InS, K, S>(st, "AvgPool2D", "avg_pool");
  }
};

template <StaticShape Sh>
struct stage_export<ReluStage<Sh>> {
  static void emit(const ReluStage<Sh>& stage, ExportState& st) {
    if (stage.fused()) {
      st.forward << "  // " << st.layer() << ": ReLU, fused into the clamp of " << st.last_weighted
                 << "\n";
      return;
    }
    st.forward << "  // " << st.layer() << ": ReLU\n"
               << "  kernels::relu<" << Sh::size << ", " << st.current.zero_point << ">(" << st.in()
               << ");\n";
  }
};

template <StaticShape Sh>
struct stage_export<FoldedStage<Sh>> {
  static void emit(const FoldedStage<Sh>& /*stage*/, ExportState& st) {
    st.forward << "  // " << st.layer() << ": BatchNorm, folded into " << st.last_weighted << "\n";
  }
};

template <StaticShape InS>
struct stage_export<FlattenStage<InS>> {
  static void emit(const FlattenStage<InS>& /*stage*/, ExportState& st) {
    if constexpr (InS::rank != 3) {
      st.forward << "  // " << st.layer() << ": Flatten of a vector (nothing to do)\n";
    } else {
      st.forward << "  // " << st.layer() << ": Flatten " << shape_text<InS>()
                 << ", HWC codes to the float network's CHW order\n"
                 << "  kernels::hwc_to_chw<" << InS::dims[0] << ", "
                 << Index{InS::dims[1]} * InS::dims[2] << ">(" << st.in() << ", " << st.out()
                 << ");\n";
      st.swap(InS::size);
    }
  }
};

/// Throws argument_error unless `name` is identifiers joined by ::.
inline void check_namespace_name(std::string_view name) {
  bool ok = !name.empty();
  std::size_t begin = 0;
  while (ok && begin <= name.size()) {
    const std::size_t end = std::min(name.find("::", begin), name.size());
    const std::string_view part = name.substr(begin, end - begin);
    ok =
        !part.empty() && (std::isalpha(static_cast<unsigned char>(part[0])) != 0 || part[0] == '_');
    for (const char c : part) {
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_');
    }
    begin = end + 2;
  }
  if (!ok) {
    throw argument_error("quant::export_header: the namespace \"" + std::string(name) +
                         "\" is not a C++ identifier (or identifiers joined by ::)");
  }
}

/// Each line of `text` as a // comment; a line ending in a backslash gets a period (a
/// backslash-newline would continue the comment onto the next line of code).
inline void write_comment(std::ostream& out, std::string_view text) {
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t end = std::min(text.find('\n', begin), text.size());
    std::string line(text.substr(begin, end - begin));
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
      line.pop_back();
    }
    out << "//" << (line.empty() ? "" : " ") << line << (line.ends_with('\\') ? "." : "") << '\n';
    begin = end + 1;
  }
}

}  // namespace detail

/// Writes `qnet` as one self-contained C++17 header (see the top of this file): the model's
/// constants, the integer runtime, `struct Buffers`, `forward`, `predict` and `dequantize` in
/// namespace `options.name`. Its outputs equal the integer network's code for code. Throws
/// argument_error for an invalid namespace name or a stage without weights; a stage type it does
/// not know does not compile.
template <StaticShape In, class... Stages>
void export_header(const QNetwork<In, Stages...>& qnet, std::ostream& out,
                   const ExportOptions& options = {}) {
  detail::check_namespace_name(options.name);
  detail::ExportState st;
  qnet.for_each_stage([&](std::size_t index, const auto& stage) {
    st.stage = index;
    detail::stage_export<std::remove_cvref_t<decltype(stage)>>::emit(stage, st);
  });
  const ModelSize size = model_size(qnet);
  const Index codes = std::max<Index>(st.max_codes, 1);
  const Index patch = std::max<Index>(st.max_patch, 1);

  std::ostringstream h;
  h.imbue(std::locale::classic());
  detail::write_comment(h, options.comment);
  h << "// An integer network exported by edgescale (quant::export_header): its constants and its\n"
       "// runtime, self-contained (C++17, <cstdint> and <cstddef>, no heap). The outputs equal\n"
       "// those of edgescale's quant::QNetwork code for code (TFLite's requantization).\n"
       "//\n"
       "//   static "
    << options.name << "::Buffers buffers;  // " << 2 * codes + patch
    << " bytes of scratch\n"
       "//   std::int8_t logits["
    << options.name << "::output_size];\n"
    << "//   int label = " << options.name
    << "::predict(input, buffers, logits);  // input: input_size floats\n"
    << "//   float scores[" << options.name << "::output_size];\n"
    << "//   " << options.name << "::dequantize(logits, scores);\n"
    << "//\n"
    << "// " << size.weights << " weights (" << size.nonzero_weights << " nonzero) in "
    << size.layers.size()
    << " weighted layers, one byte each.\n// quant::model_size: " << size.fp32_bytes
    << " bytes as fp32, " << size.quantized_bytes << " quantized, " << size.sparse_bytes
    << " quantized with a sparsity bitmap.\n"
    << "// Floats must be IEEE single precision evaluated as such (FLT_EVAL_METHOD 0, no\n"
    << "// -ffast-math): the input's rounding is exact only then.\n"
    << "#pragma once\n\n#include <cstddef>\n#include <cstdint>\n\n"
    << "namespace " << options.name << " {\n\n"
    << detail::export_runtime << '\n'
    << st.model.str() << "/// The int8 output codes (the logits).\n"
    << "struct output_params {\n"
    << "  static constexpr int size = " << st.size << ";\n"
    << "  static constexpr float scale = " << detail::float_literal(st.current.scale) << ";\n"
    << "  static constexpr std::int32_t zero_point = " << st.current.zero_point << ";\n};\n\n"
    << "inline constexpr int input_size = input_params::size;\n"
    << "inline constexpr int output_size = output_params::size;\n\n"
    << "/// All the scratch of one inference, sized for the largest stage: two buffers of codes\n"
       "/// that the stages write in turn, and one im2col patch. One per concurrent caller.\n"
       "struct Buffers {\n"
    << "  std::int8_t codes[2][" << codes << "];\n"
    << "  std::int8_t patch[" << patch << "];\n};\n\n"
    << "/// The int8 output codes of one input (input_size floats in the float network's layout,\n"
       "/// CHW for images): a pointer into `buffers`, valid until their next use.\n"
       "inline const std::int8_t* forward(const float* input, Buffers& buffers) {\n"
    << st.forward.str() << "  return " << st.in() << ";\n}\n\n"
    << "/// The class of one input: the largest output code, the first of equals (the dequantized\n"
       "/// maximum: the map is monotonic). The codes are copied to logits_out when given.\n"
       "inline int predict(const float* input, Buffers& buffers, std::int8_t* logits_out = "
       "nullptr) {\n"
       "  const std::int8_t* logits = forward(input, buffers);\n"
       "  if (logits_out != nullptr) {\n"
       "    for (int i = 0; i < output_size; ++i) {\n"
       "      logits_out[i] = logits[i];\n"
       "    }\n"
       "  }\n"
       "  return kernels::argmax<output_size>(logits);\n}\n\n"
       "/// The real values of output codes: scale * (code - zero point), output_size of them.\n"
       "inline void dequantize(const std::int8_t* logits, float* values) {\n"
       "  for (int i = 0; i < output_size; ++i) {\n"
       "    values[i] = output_params::scale * static_cast<float>(logits[i] - "
       "output_params::zero_point);\n"
       "  }\n}\n\n"
    << "}  // namespace " << options.name << '\n';
  out << h.str();
  if (!out) {
    throw error("quant::export_header: writing the header failed");
  }
}

}  // namespace edgescale::quant
