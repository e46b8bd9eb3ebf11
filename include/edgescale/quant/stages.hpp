// edgescale/quant/stages.hpp — the stages of an integer network: int8 codes in, int8 codes out,
// int32 accumulation, TFLite's arithmetic (Jacob et al., CVPR 2018; shared/DESIGN.md §3c).
//
//   QuantizeStage<Shape<1, 28, 28>>   float → int8 (the network input, per-tensor affine)
//   DenseStage<400, 120>              q_out = Z_out + M_c·(Σ_k W[c,k]·q_in[k] + bias'[c])
//   Conv2DStage<Shape<6,14,14>, 16, 5, 1, 0>   the same on im2col patches, padding with Z_in
//   MaxPoolStage, AvgPoolStage        on codes (the scale and zero point pass through)
//   ReluStage                         max(q, Z) — or nothing, when fused into the layer before
//   FoldedStage                       a BatchNorm folded into the layer before: nothing
//   FlattenStage                      HWC codes to PyTorch's CHW order
//
// Layout. A batch is column-major, one sample a column (as float batches); an image sample is
// stored HWC (channels innermost) so that an im2col patch is K·K runs of C contiguous codes and
// a GEMM column of output channels is one output pixel. FlattenStage restores PyTorch's CHW order
// before the first Dense. Every stage owns its output buffer (grown, never shrunk; batch 1 is
// reserved at construction, so batch-1 inference allocates nothing) and returns a view into it,
// valid until its next forward.
//
// Requantization of Dense and Conv2D (bias' = round(b / (S_in·S_w[c])) − Z_in·Σ_k W[c,k]: the
// zero-point correction folded into the bias once, weights symmetric so Z_w = 0), with
// M_c = S_in·S_w[c] / S_out as a fixed-point multiplier and TFLite's double rounding
// (quant/fixed_point.hpp); the clamp [act_min, act_max] is the output's codes, narrowed to
// [max(q_min, Z_out), q_max] when a ReLU is fused. Products run in quant/gemm_s8.hpp.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/quant/fixed_point.hpp>
#include <edgescale/quant/gemm_s8.hpp>
#include <edgescale/quant/params.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace edgescale::quant {

/// A batch of int8 codes: `rows` values per sample (HWC for images), `cols` samples,
/// column-major, with the quantization that gives them meaning.
struct QBatchView {
  const std::int8_t* data = nullptr;
  Index rows = 0;
  Index cols = 0;
  ActivationParams params;

  [[nodiscard]] std::int8_t operator()(Index r, Index c) const { return data[c * rows + r]; }
  [[nodiscard]] std::span<const std::int8_t> codes() const {
    return {data, static_cast<std::size_t>(rows * cols)};
  }
};

namespace detail {

/// A grow-only buffer (a stage's output or scratch).
template <class T>
class Buffer {
 public:
  T* resize(Index n) {
    if (static_cast<std::size_t>(n) > data_.size()) {
      data_.resize(static_cast<std::size_t>(n));
    }
    return data_.data();
  }
  void reserve(Index n) { resize(n); }
  [[nodiscard]] std::size_t bytes() const { return data_.capacity() * sizeof(T); }

 private:
  std::vector<T> data_;
};

inline void check_input(const QBatchView& x, Index rows, const ActivationParams& expected,
                        const char* who) {
  if (x.rows != rows) {
    throw argument_error(std::string(who) + ": a batch of " + std::to_string(x.rows) +
                         " values per sample, expected " + std::to_string(rows));
  }
  if (x.params.zero_point != expected.zero_point || x.params.scale != expected.scale) {
    throw argument_error(std::string(who) +
                         ": the input's scale and zero point are not those it was converted for");
  }
}

/// What Dense and Conv2D share: the packed weights and the requantization of their
/// accumulators, per output channel.
class Requantizer {
 public:
  Requantizer() = default;
  /// codes: Out x fan_in int8 weights (symmetric, Z_w = 0) in the order the stage's GEMM reads;
  /// scales: S_w per output channel; bias: the float bias (BatchNorm folded), or empty.
  Requantizer(std::span<const std::int8_t> codes, Index out, Index fan_in,
              std::span<const float> scales, std::span<const float> bias,
              const ActivationParams& in, const ActivationParams& output, bool relu,
              int weight_bits = 0)
      : weights_(codes.data(), out, fan_in),
        codes_(codes.begin(), codes.end()),
        scales_(scales.begin(), scales.end()),
        in_(in),
        out_(output),
        weight_bits_(checked_bits(weight_bits)) {
    in.check("integer stage input");
    output.check("integer stage output");
    if (static_cast<Index>(scales.size()) != out ||
        (!bias.empty() && static_cast<Index>(bias.size()) != out)) {
      throw argument_error("integer stage: " + std::to_string(scales.size()) + " weight scales, " +
                           std::to_string(bias.size()) + " biases for " + std::to_string(out) +
                           " output channels");
    }
    act_min_ = relu ? std::max(output.qmin, output.zero_point) : output.qmin;
    act_max_ = output.qmax;
    const auto sums = weights_.row_sums();
    bias_.resize(static_cast<std::size_t>(out));
    multiplier_.resize(static_cast<std::size_t>(out));
    for (Index c = 0; c < out; ++c) {
      const auto i = static_cast<std::size_t>(c);
      const double acc_scale = static_cast<double>(in.scale) * static_cast<double>(scales[i]);
      const double b = bias.empty() ? 0.0 : static_cast<double>(bias[i]);
      const double bq = std::nearbyint(b / acc_scale);
      const double corrected = bq - static_cast<double>(in.zero_point) * sums[i];
      if (!std::isfinite(corrected) || std::abs(corrected) > 2147483647.0 / 2) {
        throw argument_error("integer stage: the bias of channel " + std::to_string(c) + " (" +
                             std::to_string(b) + ") does not fit 30 bits at scale " +
                             std::to_string(acc_scale) +
                             " (raise the weight scale of an all-zero channel)");
      }
      bias_[i] = static_cast<std::int32_t>(corrected);
      multiplier_[i] = quantize_multiplier(acc_scale / static_cast<double>(output.scale));
    }
  }

  /// From the integers themselves (a saved model): codes in GEMM order, bias' (zero-point
  /// correction included) and multipliers per output channel, the output clamp.
  Requantizer(std::span<const std::int8_t> codes, Index out, Index fan_in,
              std::span<const float> scales, std::span<const std::int32_t> bias,
              std::span<const Multiplier> multipliers, const ActivationParams& in,
              const ActivationParams& output, std::int32_t act_min, std::int32_t act_max,
              int weight_bits = 0)
      : weights_(codes.data(), out, fan_in),
        codes_(codes.begin(), codes.end()),
        scales_(scales.begin(), scales.end()),
        bias_(bias.begin(), bias.end()),
        multiplier_(multipliers.begin(), multipliers.end()),
        in_(in),
        out_(output),
        act_min_(act_min),
        act_max_(act_max),
        weight_bits_(checked_bits(weight_bits)) {
    in.check("integer stage input");
    output.check("integer stage output");
    if (static_cast<Index>(codes.size()) != out * fan_in ||
        static_cast<Index>(scales.size()) != out || static_cast<Index>(bias.size()) != out ||
        static_cast<Index>(multipliers.size()) != out) {
      throw argument_error("integer stage: " + std::to_string(codes.size()) + " weights, " +
                           std::to_string(bias.size()) + " biases, " +
                           std::to_string(multipliers.size()) + " multipliers for " +
                           std::to_string(out) + " x " + std::to_string(fan_in));
    }
    if (act_min < output.qmin || act_max > output.qmax || act_min > act_max) {
      throw argument_error("integer stage: the clamp [" + std::to_string(act_min) + ", " +
                           std::to_string(act_max) + "] is not inside the output's codes");
    }
    for (const Multiplier& m : multipliers) {
      if (m.value < 0 || (m.value != 0 && m.value < (1 << 30)) || m.shift > 30 || m.shift < -31) {
        throw argument_error("integer stage: a multiplier (" + std::to_string(m.value) +
                             ", shift " + std::to_string(m.shift) +
                             ") outside [2^30, 2^31) x 2^[-31, 30]");
      }
    }
  }

  [[nodiscard]] const PackedS8& weights() const { return weights_; }
  /// The weight codes as the GEMM reads them (Out x fan_in row-major; a convolution's fan_in in
  /// (ky, kx, c) order): what exporters and model-size reports read.
  [[nodiscard]] std::span<const std::int8_t> codes() const { return codes_; }
  /// The weights' bit width: the one they were quantized to, or (when none was given) the fewest
  /// bits (2 to 8) whose narrow symmetric codes [−(2^(b−1) − 1), 2^(b−1) − 1] hold every code.
  [[nodiscard]] int weight_bits() const {
    if (weight_bits_ > 0) {
      return weight_bits_;
    }
    int m = 0;
    for (const std::int8_t c : codes_) {
      m = std::max(m, c < 0 ? -int{c} : int{c});
    }
    int bits = 2;
    while (bits < 8 && m > (1 << (bits - 1)) - 1) {
      ++bits;
    }
    return bits;
  }
  [[nodiscard]] Index out_channels() const { return weights_.rows(); }
  [[nodiscard]] Index fan_in() const { return weights_.depth(); }
  [[nodiscard]] const ActivationParams& input_params() const { return in_; }
  [[nodiscard]] const ActivationParams& output_params() const { return out_; }
  [[nodiscard]] std::span<const std::int32_t> bias() const { return bias_; }
  /// S_w per output channel (weights dequantize as S_w[c]·code).
  [[nodiscard]] std::span<const float> weight_scales() const { return scales_; }
  [[nodiscard]] std::span<const Multiplier> multipliers() const { return multiplier_; }
  [[nodiscard]] std::int32_t act_min() const { return act_min_; }
  [[nodiscard]] std::int32_t act_max() const { return act_max_; }

  /// out (Out x n) = requantize(W · x): x is fan_in x n codes, acc an Out x n scratch.
  void run(const std::int8_t* x, Index n, std::int32_t* acc, std::int8_t* out) const {
    gemm_s8(weights_, x, n, acc);
    requantize_s8(acc, weights_.rows(), n, bias_.data(), multiplier_.data(), out_.zero_point,
                  act_min_, act_max_, out);
  }

 private:
  PackedS8 weights_;
  std::vector<std::int8_t> codes_;
  std::vector<float> scales_;
  std::vector<std::int32_t> bias_;
  std::vector<Multiplier> multiplier_;
  ActivationParams in_;
  ActivationParams out_;
  std::int32_t act_min_ = -128;
  std::int32_t act_max_ = 127;
  int weight_bits_ = 0;  // 0: not given

  int checked_bits(int bits) const {
    if (bits != 0 && (bits < 2 || bits > 8)) {
      throw argument_error("integer stage: weight bit width " + std::to_string(bits) + " (2 to 8)");
    }
    if (bits != 0) {
      const int qp = (1 << (bits - 1)) - 1;
      for (const std::int8_t c : codes_) {
        if (c < -qp || c > qp) {
          throw argument_error("integer stage: a weight code " + std::to_string(c) +
                               " outside the " + std::to_string(bits) + "-bit codes");
        }
      }
    }
    return bits;
  }
};

}  // namespace detail

/// float → int8: the network input, quantized per tensor (HWC for images).
template <StaticShape S>
class QuantizeStage {
 public:
  using input_type = ConstBatchView<float>;
  using output_type = QBatchView;
  using output_shape = S;
  static constexpr bool image = S::rank == 3;

  QuantizeStage() { out_.reserve(S::size); }
  explicit QuantizeStage(const ActivationParams& params) : params_(params) {
    params.check("QuantizeStage");
    out_.reserve(S::size);
  }
  [[nodiscard]] const ActivationParams& output_params() const { return params_; }

  QBatchView forward(const ConstBatchView<float>& x) {
    if (x.rows() != S::size) {
      throw argument_error("integer network: a batch of " + std::to_string(x.rows()) +
                           " values per sample, expected " + std::to_string(S::size));
    }
    const Index n = x.cols();
    std::int8_t* out = out_.resize(S::size * n);
    const float scale = params_.scale;
    const auto zero = static_cast<float>(params_.zero_point);
    const auto lo = static_cast<float>(params_.qmin);
    const auto hi = static_cast<float>(params_.qmax);
    for (Index j = 0; j < n; ++j) {
      const float* in = x.data() + j * S::size;
      std::int8_t* o = out + j * S::size;
      if constexpr (image && S::dims[0] > 1) {
        constexpr Index c = S::dims[0];
        constexpr Index plane = Index{S::dims[1]} * S::dims[2];
        for (Index ch = 0; ch < c; ++ch) {
          for (Index p = 0; p < plane; ++p) {
            o[p * c + ch] =
                kernels::portable::quantize_code(in[ch * plane + p], scale, zero, lo, hi);
          }
        }
      } else {  // a vector, or one channel: CHW is HWC
        quantize_s8(in, S::size, scale, params_.zero_point, params_.qmin, params_.qmax, o);
      }
    }
    return {out, S::size, n, params_};
  }

 private:
  ActivationParams params_;
  detail::Buffer<std::int8_t> out_;
};

/// A fully connected layer in integers: q_out = requantize(W q_in + bias').
template <int In, int Out>
class DenseStage {
 public:
  using input_type = QBatchView;
  using output_type = QBatchView;
  using output_shape = Shape<Out>;
  static constexpr Index output_channels = Out;
  static constexpr Index fan_in = In;

  DenseStage() = default;
  /// codes: PyTorch's (Out, In) weight order.
  DenseStage(std::span<const std::int8_t> codes, std::span<const float> scales,
             std::span<const float> bias, const ActivationParams& in,
             const ActivationParams& output, bool relu, int weight_bits = 0)
      : rq_(checked(codes), Out, In, scales, bias, in, output, relu, weight_bits) {
    acc_.reserve(Out);
    out_.reserve(Out);
  }

  /// From a requantizer of Out x In (a saved model).
  explicit DenseStage(detail::Requantizer rq) : rq_(std::move(rq)) {
    if (rq_.out_channels() != Out || rq_.fan_in() != In) {
      throw argument_error("DenseStage<" + std::to_string(In) + ", " + std::to_string(Out) +
                           ">: weights of " + std::to_string(rq_.out_channels()) + " x " +
                           std::to_string(rq_.fan_in()));
    }
    acc_.reserve(Out);
    out_.reserve(Out);
  }

  QBatchView forward(const QBatchView& x) {
    detail::check_input(x, In, rq_.input_params(), "DenseStage");
    std::int8_t* out = out_.resize(Index{Out} * x.cols);
    rq_.run(x.data, x.cols, acc_.resize(Index{Out} * x.cols), out);
    return {out, Out, x.cols, rq_.output_params()};
  }
  [[nodiscard]] const detail::Requantizer& requantizer() const { return rq_; }
  [[nodiscard]] const ActivationParams& output_params() const { return rq_.output_params(); }

 private:
  static std::span<const std::int8_t> checked(std::span<const std::int8_t> codes) {
    if (static_cast<Index>(codes.size()) != Index{Out} * In) {
      throw argument_error("DenseStage: " + std::to_string(codes.size()) + " weights, expected " +
                           std::to_string(Index{Out} * In));
    }
    return codes;
  }
  detail::Requantizer rq_;
  detail::Buffer<std::int32_t> acc_;
  detail::Buffer<std::int8_t> out_;
};

/// A convolution in integers over HWC samples: im2col patches (ky, kx, c order, padding with the
/// input's zero point, the code of a real 0), one GEMM per sample whose output columns are the
/// output pixels, each requantized.
template <ImageShape InS, int Cout, int K, int S, int P>
class Conv2DStage {
  static constexpr int cin = InS::dims[0];
  static constexpr int height = InS::dims[1];
  static constexpr int width = InS::dims[2];

 public:
  static constexpr int out_height = (height + 2 * P - K) / S + 1;
  static constexpr int out_width = (width + 2 * P - K) / S + 1;
  static constexpr Index pixels = Index{out_height} * out_width;
  static constexpr Index patch = Index{cin} * K * K;
  /// A 1x1 convolution of stride 1 without padding reads the sample itself.
  static constexpr bool direct = K == 1 && S == 1 && P == 0;
  using input_type = QBatchView;
  using output_type = QBatchView;
  using output_shape = Shape<Cout, out_height, out_width>;
  static constexpr Index output_channels = Cout;
  static constexpr Index fan_in = patch;
  static constexpr int in_channels = cin;
  static constexpr int kernel_size = K;

  Conv2DStage() = default;
  /// codes: PyTorch's (Cout, Cin, K, K) weight order (permuted here to the patch order).
  Conv2DStage(std::span<const std::int8_t> codes, std::span<const float> scales,
              std::span<const float> bias, const ActivationParams& in,
              const ActivationParams& output, bool relu, int weight_bits = 0)
      : rq_(permuted(codes), Cout, patch, scales, bias, in, output, relu, weight_bits) {
    acc_.reserve(pixels * Cout);
    out_.reserve(pixels * Cout);
    if constexpr (!direct) {
      col_.reserve(pixels * patch + slack);
    }
    if constexpr (P > 0) {
      padded_.reserve(padded_size + slack);
    }
  }

  /// From a requantizer of Cout x patch in (ky, kx, c) order (a saved model).
  explicit Conv2DStage(detail::Requantizer rq) : rq_(std::move(rq)) {
    if (rq_.out_channels() != Cout || rq_.fan_in() != patch) {
      throw argument_error("Conv2DStage: weights of " + std::to_string(rq_.out_channels()) + " x " +
                           std::to_string(rq_.fan_in()) + ", expected " + std::to_string(Cout) +
                           " x " + std::to_string(patch));
    }
    acc_.reserve(pixels * Cout);
    out_.reserve(pixels * Cout);
    if constexpr (!direct) {
      col_.reserve(pixels * patch + slack);
    }
    if constexpr (P > 0) {
      padded_.reserve(padded_size + slack);
    }
  }

  QBatchView forward(const QBatchView& x) {
    detail::check_input(x, InS::size, rq_.input_params(), "Conv2DStage");
    constexpr Index out_size = output_shape::size;
    std::int8_t* out = out_.resize(out_size * x.cols);
    std::int32_t* acc = acc_.resize(pixels * Cout);
    for (Index n = 0; n < x.cols; ++n) {
      const std::int8_t* sample = x.data + n * InS::size;
      if constexpr (direct) {
        rq_.run(sample, pixels, acc, out + n * out_size);
      } else {
        std::int8_t* col = col_.resize(pixels * patch + slack);
        im2col(sample, static_cast<std::int8_t>(x.params.zero_point), col);
        rq_.run(col, pixels, acc, out + n * out_size);
      }
    }
    return {out, out_size, x.cols, rq_.output_params()};
  }
  [[nodiscard]] const detail::Requantizer& requantizer() const { return rq_; }
  [[nodiscard]] const ActivationParams& output_params() const { return rq_.output_params(); }

 private:
  static std::vector<std::int8_t> permuted(std::span<const std::int8_t> codes) {
    if (static_cast<Index>(codes.size()) != Index{Cout} * patch) {
      throw argument_error("Conv2DStage: " + std::to_string(codes.size()) + " weights, expected " +
                           std::to_string(Index{Cout} * patch));
    }
    std::vector<std::int8_t> w(codes.size());
    for (Index o = 0; o < Cout; ++o) {
      for (Index c = 0; c < cin; ++c) {
        for (Index k = 0; k < Index{K} * K; ++k) {
          w[static_cast<std::size_t>(o * patch + k * cin + c)] =
              codes[static_cast<std::size_t>((o * cin + c) * K * K + k)];
        }
      }
    }
    return w;
  }

  static constexpr int padded_height = height + 2 * P;
  static constexpr int padded_width = width + 2 * P;
  static constexpr Index padded_size = Index{padded_height} * padded_width * cin;
  /// One kernel row of a patch: K·cin contiguous codes of the padded HWC sample.
  static constexpr Index row = Index{K} * cin;
  /// Kernel rows shorter than 8 codes of a padded sample are copied as 8 (see im2col): the
  /// padded copy and the patches have 8 codes to spare.
  static constexpr bool short_rows = P > 0 && row < 8;
  static constexpr Index slack = short_rows ? 8 : 0;

  /// colT (pixels x patch): for each output pixel, K rows of K·cin contiguous codes, read from
  /// the sample itself (P = 0) or from its copy padded with the zero point.
  void im2col(const std::int8_t* x, std::int8_t pad, std::int8_t* col) {
    const std::int8_t* src = x;
    if constexpr (P > 0) {
      std::int8_t* padded = padded_.resize(padded_size + slack);
      std::fill_n(padded, padded_size + slack, pad);
      for (int y = 0; y < height; ++y) {
        std::copy_n(x + Index{y} * width * cin, Index{width} * cin,
                    padded + ((Index{y} + P) * padded_width + P) * cin);
      }
      src = padded;
    }
    for (int oy = 0; oy < out_height; ++oy) {
      for (int ox = 0; ox < out_width; ++ox) {
        std::int8_t* dst = col + (Index{oy} * out_width + ox) * patch;
        const std::int8_t* window = src + (Index{oy} * S * padded_width + Index{ox} * S) * cin;
        if constexpr (short_rows) {
          // 8 codes per kernel row, in increasing order: the codes past a row are overwritten by
          // the rows and patches after it (the last ones land in the slack), one 8-byte move each
          // rather than a copy of an odd length.
          for (int ky = 0; ky < K; ++ky, dst += row) {
            std::memcpy(dst, window + Index{ky} * padded_width * cin, 8);
          }
        } else {
          for (int ky = 0; ky < K; ++ky, dst += row) {
            std::memcpy(dst, window + Index{ky} * padded_width * cin, row);
          }
        }
      }
    }
  }

  detail::Requantizer rq_;
  detail::Buffer<std::int32_t> acc_;
  detail::Buffer<std::int8_t> padded_;
  detail::Buffer<std::int8_t> col_;
  detail::Buffer<std::int8_t> out_;
};

namespace detail {

/// The HWC pooling geometry (K x K windows, stride S, no padding).
template <ImageShape InS, int K, int S>
struct QPool {
  static constexpr int c = InS::dims[0];
  static constexpr int h = InS::dims[1];
  static constexpr int w = InS::dims[2];
  static constexpr int oh = (h - K) / S + 1;
  static constexpr int ow = (w - K) / S + 1;
  using output_shape = Shape<c, oh, ow>;

  /// f(output code pointer, window's top-left input pointer) per output pixel of every sample of
  /// x (outputs to y); the channels of a pixel are contiguous in both.
  template <class F>
  static void for_each_window(const QBatchView& x, std::int8_t* y, F&& f) {
    for (Index n = 0; n < x.cols; ++n) {
      const std::int8_t* in = x.data + n * InS::size;
      std::int8_t* out = y + n * output_shape::size;
      for (int oy = 0; oy < oh; ++oy) {
        for (int ox = 0; ox < ow; ++ox) {
          f(out + (Index{oy} * ow + ox) * c, in + (Index{oy} * S * w + Index{ox} * S) * c);
        }
      }
    }
  }
};

}  // namespace detail

/// Max pooling on codes: the quantization is monotonic, so the maximum of the codes is the code
/// of the maximum; scale and zero point pass through.
template <ImageShape InS, int K, int S>
class MaxPoolStage {
  using geometry = detail::QPool<InS, K, S>;

 public:
  using input_type = QBatchView;
  using output_type = QBatchView;
  using output_shape = typename geometry::output_shape;

  MaxPoolStage() { out_.reserve(output_shape::size); }

  QBatchView forward(const QBatchView& x) {
    detail::check_input(x, InS::size, x.params, "MaxPoolStage");
    std::int8_t* out = out_.resize(output_shape::size * x.cols);
    if constexpr (S == K) {
      // Windows that tile the image: per output row, the maximum down the K input rows (one
      // contiguous run of ow·K pixels' channels), then across each window's K pixels.
      constexpr Index c = geometry::c;
      constexpr Index line = Index{geometry::w} * c;
      constexpr Index run = Index{geometry::ow} * K * c;
      std::int8_t rows[run];
      for (Index n = 0; n < x.cols; ++n) {
        const std::int8_t* in = x.data + n * InS::size;
        std::int8_t* y = out + n * output_shape::size;
        for (int oy = 0; oy < geometry::oh; ++oy) {
          const std::int8_t* top = in + Index{oy} * S * line;
          std::copy_n(top, run, rows);
          for (int ky = 1; ky < K; ++ky) {
            const std::int8_t* next = top + ky * line;
            for (Index i = 0; i < run; ++i) {
              const std::int8_t a = rows[i];  // by value: a loop that vectorises
              const std::int8_t b = next[i];
              rows[i] = a < b ? b : a;
            }
          }
          for (int ox = 0; ox < geometry::ow; ++ox, y += c) {
            const std::int8_t* window = rows + Index{ox} * K * c;
            for (Index ch = 0; ch < c; ++ch) {
              std::int8_t v = window[ch];
              for (int kx = 1; kx < K; ++kx) {
                const std::int8_t b = window[kx * c + ch];
                v = v < b ? b : v;
              }
              y[ch] = v;
            }
          }
        }
      }
      return {out, output_shape::size, x.cols, x.params};
    }
    geometry::for_each_window(x, out, [](std::int8_t* y, const std::int8_t* window) {
      std::copy_n(window, geometry::c, y);
      for (int ky = 0; ky < K; ++ky) {
        for (int kx = 0; kx < K; ++kx) {
          const std::int8_t* v = window + (Index{ky} * geometry::w + kx) * geometry::c;
          for (int ch = 0; ch < geometry::c; ++ch) {
            y[ch] = std::max(y[ch], v[ch]);
          }
        }
      }
    });
    return {out, output_shape::size, x.cols, x.params};
  }

 private:
  detail::Buffer<std::int8_t> out_;
};

/// Average pooling on codes, as TFLite's reference kernel: Σ(q) over the window divided by K²
/// rounding half away from zero (the zero point passes through the mean exactly); scale and zero
/// point pass through.
template <ImageShape InS, int K, int S>
class AvgPoolStage {
  using geometry = detail::QPool<InS, K, S>;

 public:
  using input_type = QBatchView;
  using output_type = QBatchView;
  using output_shape = typename geometry::output_shape;

  AvgPoolStage() { out_.reserve(output_shape::size); }

  QBatchView forward(const QBatchView& x) {
    detail::check_input(x, InS::size, x.params, "AvgPoolStage");
    std::int8_t* out = out_.resize(output_shape::size * x.cols);
    geometry::for_each_window(x, out, [](std::int8_t* y, const std::int8_t* window) {
      constexpr int count = K * K;
      for (int ch = 0; ch < geometry::c; ++ch) {
        int sum = 0;
        for (int ky = 0; ky < K; ++ky) {
          for (int kx = 0; kx < K; ++kx) {
            sum += window[(Index{ky} * geometry::w + kx) * geometry::c + ch];
          }
        }
        sum = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
        y[ch] = static_cast<std::int8_t>(sum);
      }
    });
    return {out, output_shape::size, x.cols, x.params};
  }

 private:
  detail::Buffer<std::int8_t> out_;
};

/// ReLU on codes, max(q, Z); nothing at all when fused into the requantization clamp of the
/// Dense or Conv2D before it (`fused`).
template <StaticShape Sh>
class ReluStage {
 public:
  using input_type = QBatchView;
  using output_type = QBatchView;
  using output_shape = Sh;

  explicit ReluStage(bool fused = false) : fused_(fused) {
    if (!fused) {
      out_.reserve(Sh::size);
    }
  }
  [[nodiscard]] bool fused() const { return fused_; }

  QBatchView forward(const QBatchView& x) {
    detail::check_input(x, Sh::size, x.params, "ReluStage");
    if (fused_) {
      return x;
    }
    const Index size = Sh::size * x.cols;
    std::int8_t* out = out_.resize(size);
    const auto z = static_cast<std::int8_t>(x.params.zero_point);
    for (Index i = 0; i < size; ++i) {
      out[i] = std::max(x.data[i], z);
    }
    return {out, Sh::size, x.cols, x.params};
  }

 private:
  bool fused_ = false;
  detail::Buffer<std::int8_t> out_;
};

/// A layer folded into the one before it (BatchNorm into Dense or Conv2D): passes codes through.
template <StaticShape Sh>
class FoldedStage {
 public:
  using input_type = QBatchView;
  using output_type = QBatchView;
  using output_shape = Sh;
  QBatchView forward(const QBatchView& x) {
    detail::check_input(x, Sh::size, x.params, "FoldedStage");
    return x;
  }
};

/// Flatten: HWC image codes to PyTorch's CHW order (a vector passes through).
template <StaticShape InS>
class FlattenStage {
 public:
  using input_type = QBatchView;
  using output_type = QBatchView;
  using output_shape = Shape<InS::size>;

  FlattenStage() {
    if constexpr (InS::rank == 3) {
      out_.reserve(InS::size);
    }
  }

  QBatchView forward(const QBatchView& x) {
    detail::check_input(x, InS::size, x.params, "FlattenStage");
    if constexpr (InS::rank != 3) {
      return x;
    } else {
      constexpr Index c = InS::dims[0];
      constexpr Index plane = Index{InS::dims[1]} * InS::dims[2];
      std::int8_t* out = out_.resize(InS::size * x.cols);
      for (Index n = 0; n < x.cols; ++n) {
        const std::int8_t* in = x.data + n * InS::size;
        std::int8_t* o = out + n * InS::size;
        for (Index p = 0; p < plane; ++p) {
          for (Index ch = 0; ch < c; ++ch) {
            o[ch * plane + p] = in[p * c + ch];
          }
        }
      }
      return {out, InS::size, x.cols, x.params};
    }
  }

 private:
  detail::Buffer<std::int8_t> out_;
};

}  // namespace edgescale::quant
