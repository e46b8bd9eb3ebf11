// edgescale/quant/qnetwork.hpp — the integer network and post-training conversion.
//
//   quant::Calibrator cal(net, [] { return quant::MinMax{}; });
//   for (...) cal.observe(batch);                                  // N calibration batches
//   auto qnet = quant::convert(net, cal, {.weight_bits = 8, .activation_bits = 8});
//   quant::QBatchView codes = qnet.forward(x);                      // int8 logits (10 x B)
//   Matrix<float> logits = quant::dequantize(codes);
//   auto report = quant::layer_errors(net, qnet, x);                // SQNR per layer, float vs int
//
// The integer network is not a float Layer: its stages take and return int8 codes
// (quant/stages.hpp), and it only runs forward. `qnetwork_t<Net>` is its type for a float
// network: a QuantizeStage for the input, then `lowering<L>::stage` for each layer L
// (quant/lowering.hpp), so a layer of the user's joins by specialising quant::lowering.
//
// Post-training conversion (Jacob et al. 2018, TFLite's int8 scheme):
//   * weights: symmetric per output channel, narrow codes [−Q_P, Q_P], Q_P = 2^(b−1) − 1, from
//     each channel's min-max (or its MSE-optimal clipping), after BatchNorm folding; a channel's
//     scale is raised when needed so that its int32 bias fits 30 bits (an all-zero channel with a
//     bias);
//   * activations: affine per tensor from the calibrated range of the input and of each weighted
//     group's last layer (after its BatchNorm and ReLU), b-bit codes in the int8 container
//     (quant/params.hpp);
//   * ReLU after a weighted layer is fused into its clamp; BatchNorm is folded.
// ConvertOptions::eight_bit_ends keeps the input, the first weighted layer's weights and the last
// weighted layer (weights and output) at 8 bits whatever the width elsewhere (mixed precision).
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/quant/calibrate.hpp>
#include <edgescale/quant/lowering.hpp>
#include <edgescale/quant/observer.hpp>
#include <edgescale/quant/params.hpp>
#include <edgescale/quant/quantizer.hpp>
#include <edgescale/quant/stages.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace edgescale::quant {

/// An integer network: QuantizeStage<In>, then one stage per float layer.
template <StaticShape In, class... Stages>
class QNetwork {
 public:
  using input_shape = In;
  static constexpr std::size_t size = sizeof...(Stages);  ///< float layers (stages after input)
  using stage_tuple = std::tuple<QuantizeStage<In>, Stages...>;
  template <std::size_t I>
  using stage_type = std::tuple_element_t<I, stage_tuple>;  ///< I = 0 the input, I = l + 1 layer l
  using output_shape = typename stage_type<size>::output_shape;

  QNetwork() = default;
  explicit QNetwork(stage_tuple stages) : stages_(std::move(stages)) {}

  /// float input (input_shape::size x B) → int8 codes of the output, a view valid until the
  /// next forward.
  QBatchView forward(const ConstBatchView<float>& x) {
    auto none = [](std::size_t, const auto&, const QBatchView&) {};
    return run<0>(x, none);
  }
  template <class Derived>
  QBatchView forward(const Eigen::PlainObjectBase<Derived>& x) {
    return forward(ConstBatchView<float>(x.derived().data(), x.rows(), x.cols()));
  }
  /// forward calling hook(stage index, stage, output codes) after every stage (0: the input).
  template <class Hook>
  QBatchView forward(const ConstBatchView<float>& x, Hook&& hook) {
    return run<0>(x, hook);
  }

  /// The class of each sample: the largest output code (the dequantized maximum: the map is
  /// monotonic), the first of equals.
  std::vector<Index> predict(const ConstBatchView<float>& x) {
    const QBatchView y = forward(x);
    std::vector<Index> out(static_cast<std::size_t>(y.cols));
    for (Index j = 0; j < y.cols; ++j) {
      const std::int8_t* col = y.data + j * y.rows;
      out[static_cast<std::size_t>(j)] = std::max_element(col, col + y.rows) - col;
    }
    return out;
  }

  template <std::size_t I>
  [[nodiscard]] stage_type<I>& stage() {
    return std::get<I>(stages_);
  }
  template <std::size_t I>
  [[nodiscard]] const stage_type<I>& stage() const {
    return std::get<I>(stages_);
  }
  /// f(index, stage) for every stage in order; index is a std::integral_constant (0: the input
  /// stage, l + 1: float layer l), usable in `if constexpr`.
  template <class F>
  void for_each_stage(F&& f) const {
    for_each_stage_impl(f, std::make_index_sequence<size + 1>{});
  }

 private:
  template <std::size_t I, class X, class Hook>
  QBatchView run(const X& x, Hook& hook) {
    const QBatchView y = std::get<I>(stages_).forward(x);
    hook(I, std::get<I>(stages_), y);
    if constexpr (I == size) {
      return y;
    } else {
      return run<I + 1>(y, hook);
    }
  }
  template <class F, std::size_t... I>
  void for_each_stage_impl(F& f, std::index_sequence<I...> /*indices*/) const {
    (f(std::integral_constant<std::size_t, I>{}, std::get<I>(stages_)), ...);
  }

  stage_tuple stages_;
};

namespace detail {

/// Stops with the reason when a layer type has no integer form.
template <class L>
struct no_lowering {
  static_assert(sizeof(L) == 0,
                "quant: this layer type has no integer lowering; specialise quant::lowering<L> "
                "for it (quant/lowering.hpp) or convert a network without it");
  using type = void;
};
template <class L>
struct stage_of {
  using type = typename no_lowering<L>::type;
};
template <Lowerable L>
struct stage_of<L> {
  using type = typename lowering<L>::stage;
};

template <class Net, class Seq>
struct qnetwork_of;
template <class Net, std::size_t... I>
struct qnetwork_of<Net, std::index_sequence<I...>> {
  using type = QNetwork<typename Net::input_shape,
                        typename stage_of<typename Net::template layer_type<I>>::type...>;
};

template <class Net, std::size_t... I>
constexpr bool all_lowerable(std::index_sequence<I...> /*indices*/) {
  return (Lowerable<typename Net::template layer_type<I>> && ...);
}

}  // namespace detail

/// The integer network a float network converts to.
template <class Net>
using qnetwork_t = typename detail::qnetwork_of<Net, std::make_index_sequence<Net::size>>::type;

/// Dequantized values of codes: scale · (code − zero point), rows x cols.
[[nodiscard]] inline Matrix<float> dequantize(const QBatchView& y) {
  Matrix<float> out(y.rows, y.cols);
  for (Index i = 0; i < y.rows * y.cols; ++i) {
    out.data()[i] = y.params.dequantize(y.data[i]);
  }
  return out;
}

/// How weights are clipped before their symmetric per-channel quantization.
enum class WeightRange { minmax, mse };

struct ConvertOptions {
  int weight_bits = 8;      ///< 2 to 8
  int activation_bits = 8;  ///< 2 to 8
  /// The input, the first weighted layer's weights and the last weighted layer (weights and
  /// output) at 8 bits (the usual mixed precision of low-bit models).
  bool eight_bit_ends = false;
  WeightRange weight_range = WeightRange::minmax;
};

/// One weighted layer's conversion: its codes, scales and folded bias.
struct QuantizedWeights {
  std::vector<std::int8_t> codes;
  std::vector<float> scales;
  std::vector<float> bias;
  int bits = 8;
};

namespace detail {

inline void check_bits(int bits, const char* what) {
  if (bits < 2 || bits > 8) {
    throw argument_error(std::string("quant::convert: ") + what + " bit width " +
                         std::to_string(bits) + " (bit widths are 2 to 8)");
  }
}

/// Symmetric narrow per-channel codes of w (Out x fan_in) with the given scales.
[[nodiscard]] inline std::vector<std::int8_t> symmetric_codes(const FloatWeights& w,
                                                              std::span<const float> scales,
                                                              int bits) {
  const std::int32_t qp = (1 << (bits - 1)) - 1;
  std::vector<std::int8_t> codes(w.weight.size());
  for (Index c = 0; c < w.out; ++c) {
    const float s = scales[static_cast<std::size_t>(c)];
    for (Index k = 0; k < w.fan_in; ++k) {
      const auto i = static_cast<std::size_t>(c * w.fan_in + k);
      const float r = std::nearbyint(w.weight[i] / s);
      codes[i] =
          static_cast<std::int8_t>(std::clamp(r, static_cast<float>(-qp), static_cast<float>(qp)));
    }
  }
  return codes;
}

/// Per-channel symmetric scales S_c = max(|lo_c|, |hi_c|) / Q_P (at least float's epsilon),
/// raised so that the channel's bias fits 30 bits at input scale s_in.
[[nodiscard]] inline std::vector<float> symmetric_scales(const FloatWeights& w, int bits,
                                                         WeightRange how, float s_in) {
  const std::int32_t qp = (1 << (bits - 1)) - 1;
  std::vector<float> lo(static_cast<std::size_t>(w.out));
  std::vector<float> hi(lo.size());
  if (how == WeightRange::mse) {
    MseClipping<8> obs(w.out);
    obs.observe(
        Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
            w.weight.data(), w.out, w.fan_in));
    const Ranges r = obs.range(bits);
    lo = r.lo;
    hi = r.hi;
  } else {
    for (Index c = 0; c < w.out; ++c) {
      const auto row = Eigen::Map<const Vector<float>>(w.weight.data() + c * w.fan_in, w.fan_in);
      if (!row.allFinite()) {
        throw argument_error("quant::convert: a weight of output channel " + std::to_string(c) +
                             " is NaN or infinite");
      }
      lo[static_cast<std::size_t>(c)] = row.minCoeff();
      hi[static_cast<std::size_t>(c)] = row.maxCoeff();
    }
  }
  std::vector<float> scales(lo.size());
  for (std::size_t c = 0; c < lo.size(); ++c) {
    const double m =
        std::max(std::abs(static_cast<double>(lo[c])), std::abs(static_cast<double>(hi[c])));
    const double bias_floor =
        std::abs(static_cast<double>(w.bias[c])) / (static_cast<double>(s_in) * (1 << 29));
    scales[c] =
        static_cast<float>(std::max({m / qp, bias_floor, double{quant::detail::min_scale}}));
  }
  return scales;
}

/// The run-time plan of a conversion: the kind of each layer and the quantization around it.
struct LayerPlan {
  LoweringRole role = LoweringRole::keeps_params;
  ActivationParams input;
  ActivationParams output;
  bool relu_fused = false;
  std::optional<QuantizedWeights> weights;
};

}  // namespace detail

/// The plan of a network's conversion: what each stage receives (the integer network is then
/// built from it by `lower`). Exposed so QAT and user tools can produce plans of their own.
struct ConversionPlan {
  ActivationParams input;
  std::vector<detail::LayerPlan> layers;
};

namespace detail {

/// f(std::integral_constant<std::size_t, I>{}) for I in [0, N), in order.
template <std::size_t N, class F>
void for_each_index(F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (f(std::integral_constant<std::size_t, I>{}), ...);
  }
  (std::make_index_sequence<N>{});
}

template <class Net>
std::array<LoweringRole, Net::size> roles_of() {
  std::array<LoweringRole, Net::size> roles{};
  for_each_index<Net::size>([&](auto i) {
    roles[i] = lowering<typename Net::template layer_type<decltype(i)::value>>::role;
  });
  return roles;
}

/// The weighted layers' float weights (index: layer), each BatchNorm folded into the weighted
/// layer just before it.
template <class Net>
std::vector<std::optional<FloatWeights>> folded_weights(const Net& net) {
  std::vector<std::optional<FloatWeights>> w(Net::size);
  for_each_index<Net::size>([&](auto i) {
    constexpr std::size_t I = decltype(i)::value;
    using L = typename Net::template layer_type<I>;
    if constexpr (lowering<L>::role == LoweringRole::weighted) {
      w[I] = lowering<L>::float_weights(net.template layer<I>());
    } else if constexpr (lowering<L>::role == LoweringRole::folds) {
      if (I == 0 || !w[I - 1]) {
        throw argument_error("quant::convert: the BatchNorm at layer " + std::to_string(I) +
                             " does not follow a Dense or Conv2D and cannot be folded");
      }
      lowering<L>::fold(net.template layer<I>(), *w[I - 1]);
    }
  });
  return w;
}

/// For each weighted layer, the index of the last layer of its group (itself, then a folded
/// BatchNorm, then a fused ReLU); whether a ReLU is fused.
struct Group {
  std::size_t last = 0;
  bool relu = false;
};
template <std::size_t N>
Group group_of(const std::array<LoweringRole, N>& roles, std::size_t i) {
  Group g{i, false};
  if (g.last + 1 < N && roles[g.last + 1] == LoweringRole::folds) {
    ++g.last;
  }
  if (g.last + 1 < N && roles[g.last + 1] == LoweringRole::relu) {
    ++g.last;
    g.relu = true;
  }
  return g;
}

}  // namespace detail

// clang-format off
/// The post-training plan of a calibrated network (see the top of this file).
template <class Net, class MakeObserver>
  requires(detail::all_lowerable<Net>(std::make_index_sequence<Net::size>{}))
[[nodiscard]] ConversionPlan plan_post_training(const Calibrator<Net, MakeObserver>& cal,
                                                const ConvertOptions& options = {}) {
  // clang-format on
  detail::check_bits(options.weight_bits, "weight");
  detail::check_bits(options.activation_bits, "activation");
  if (cal.batches() == 0) {
    throw argument_error("quant::convert: the calibrator has seen no batch");
  }
  const auto roles = detail::roles_of<Net>();
  const auto weights = detail::folded_weights(cal.network());
  std::size_t first = Net::size;
  std::size_t last = Net::size;
  for (std::size_t i = 0; i < Net::size; ++i) {
    if (roles[i] == LoweringRole::weighted) {
      first = std::min(first, i);
      last = i;
    }
  }
  const auto range = [&](const auto& observer, int bits) {
    const Ranges r = observed_range(observer, bits);
    return ActivationParams::affine(r.lo.at(0), r.hi.at(0), bits);
  };
  ConversionPlan plan;
  plan.input = range(cal.input(), options.eight_bit_ends ? 8 : options.activation_bits);
  plan.layers.resize(Net::size);
  ActivationParams current = plan.input;
  bool fuse_relu = false;  // the next ReLU closes a weighted group
  for (std::size_t i = 0; i < Net::size; ++i) {
    detail::LayerPlan& lp = plan.layers[i];
    lp.role = roles[i];
    lp.input = current;
    lp.output = current;
    switch (roles[i]) {
      case LoweringRole::weighted: {
        const detail::Group g = detail::group_of(roles, i);
        const bool ends = options.eight_bit_ends && (i == first || i == last);
        const int wbits = ends ? 8 : options.weight_bits;
        const int abits = options.eight_bit_ends && i == last ? 8 : options.activation_bits;
        lp.output = range(cal.output(g.last), abits);
        lp.relu_fused = g.relu;
        fuse_relu = g.relu;
        QuantizedWeights q;
        q.scales =
            detail::symmetric_scales(*weights[i], wbits, options.weight_range, current.scale);
        q.codes = detail::symmetric_codes(*weights[i], q.scales, wbits);
        q.bias = weights[i]->bias;
        q.bits = wbits;
        lp.weights = std::move(q);
        current = lp.output;
        break;
      }
      case LoweringRole::relu:
        lp.relu_fused = fuse_relu;
        fuse_relu = false;
        break;
      case LoweringRole::requantizes:
        lp.output = range(cal.output(i), options.activation_bits);
        current = lp.output;
        break;
      case LoweringRole::folds:
        break;
      case LoweringRole::keeps_params:
        fuse_relu = false;
        break;
    }
  }
  return plan;
}

// clang-format off
/// The integer network of `net` for a plan (plan_post_training, or a QAT network's plan).
template <class Net>
  requires(detail::all_lowerable<Net>(std::make_index_sequence<Net::size>{}))
[[nodiscard]] qnetwork_t<Net> lower(const Net& net, const ConversionPlan& plan) {
  // clang-format on
  if (plan.layers.size() != Net::size) {
    throw argument_error("quant::lower: a plan of " + std::to_string(plan.layers.size()) +
                         " layers for a network of " + std::to_string(Net::size));
  }
  using Q = qnetwork_t<Net>;
  const auto make = [&](auto i) {
    constexpr std::size_t I = decltype(i)::value;
    using L = typename Net::template layer_type<I>;
    const detail::LayerPlan& lp = plan.layers[I];
    const std::string path = std::to_string(I);
    LoweringInput in{path, lp.input, lp.output, lp.relu_fused, {}, {}, {}, 8};
    if (lp.weights) {
      in.codes = lp.weights->codes;
      in.scales = lp.weights->scales;
      in.bias = lp.weights->bias;
      in.weight_bits = lp.weights->bits;
    } else if constexpr (lowering<L>::role == LoweringRole::weighted) {
      throw argument_error("quant::lower: the plan has no weights for layer " + path);
    }
    return lowering<L>::lower(net.template layer<I>(), in);
  };
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return Q(typename Q::stage_tuple{QuantizeStage<typename Net::input_shape>(plan.input),
                                     make(std::integral_constant<std::size_t, I>{})...});
  }
  (std::make_index_sequence<Net::size>{});
}

/// Post-training conversion of the calibrated network (the one `cal` observed).
template <class Net, class MakeObserver>
[[nodiscard]] qnetwork_t<Net> convert(const Net& net, const Calibrator<Net, MakeObserver>& cal,
                                      const ConvertOptions& options = {}) {
  if (&net != &cal.network()) {
    throw argument_error("quant::convert: the calibrator observed another network");
  }
  return lower(net, plan_post_training(cal, options));
}

/// The quantization error of one stage's output: float reference vs dequantized codes.
struct LayerError {
  std::string path;    ///< "input", or the float layer index of the group's last layer
  std::string stage;   ///< "input", "weighted"
  double sqnr_db = 0;  ///< 10·log10(Σ f² / Σ (f − q̂)²); +∞ when exact
  double mse = 0;
};

namespace detail {

/// Dequantized codes of a stage output in the float network's layout (CHW for images).
template <StaticShape S>
Matrix<float> dequantize_as_float_layout(const QBatchView& y) {
  Matrix<float> out(y.rows, y.cols);
  for (Index j = 0; j < y.cols; ++j) {
    for (Index r = 0; r < y.rows; ++r) {
      Index dst = r;
      if constexpr (S::rank == 3) {
        constexpr Index c = S::dims[0];
        dst = (r % c) * (S::size / c) + r / c;  // HWC index r -> CHW
      }
      out(dst, j) = y.params.dequantize(y(r, j));
    }
  }
  return out;
}

inline LayerError compare(std::string path, std::string stage, const Matrix<float>& f,
                          const Matrix<float>& q) {
  const double signal = f.cast<double>().squaredNorm();
  const double noise = (f - q).cast<double>().squaredNorm();
  const double sqnr =
      noise == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(signal / noise);
  return {std::move(path), std::move(stage), sqnr, noise / static_cast<double>(f.size())};
}

}  // namespace detail

/// Per-layer error report on a batch: the input quantization, then each weighted group's output
/// (after its folded BatchNorm and fused ReLU), float network vs integer network. The float
/// network runs in evaluation mode.
template <class Net, class QNet>
[[nodiscard]] std::vector<LayerError> layer_errors(Net& net, QNet& qnet,
                                                   const ConstBatchView<float>& x) {
  std::vector<Matrix<float>> reference(Net::size);
  {
    nn::ModeScope eval(net, false);
    net.forward(x,
                [&](std::string_view path, const auto& /*layer*/, const ConstBatchView<float>& y) {
                  if (path.find('.') == std::string_view::npos) {
                    reference[static_cast<std::size_t>(std::stoul(std::string(path)))] = y;
                  }
                });
  }
  const auto roles = detail::roles_of<Net>();
  std::vector<LayerError> errors;
  qnet.forward(x, [&](std::size_t index, const auto& stage, const QBatchView& y) {
    using S = typename std::remove_cvref_t<decltype(stage)>::output_shape;
    if (index == 0) {
      errors.push_back(
          detail::compare("input", "input", x, detail::dequantize_as_float_layout<S>(y)));
      return;
    }
    const std::size_t layer = index - 1;
    if (roles[layer] != LoweringRole::weighted) {
      return;
    }
    const detail::Group g = detail::group_of(roles, layer);
    // The group's output is the stage of its last layer; those stages pass codes through, so the
    // weighted stage's output is already the group's.
    errors.push_back(detail::compare(std::to_string(g.last), "weighted", reference[g.last],
                                     detail::dequantize_as_float_layout<S>(y)));
  });
  return errors;
}

}  // namespace edgescale::quant
