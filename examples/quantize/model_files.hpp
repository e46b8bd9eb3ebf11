// examples/quantize/model_files.hpp — an integer network as a directory of .npy files, written by
// `quantize --save DIR` and read by `infer --load DIR` (docs/quantization.md, "Saved integer
// models", documents the layout for numpy users).
//
//   DIR/model.txt                       "edgescale integer model", then "net <mlp|lenet5>"
//   DIR/input.scale.npy  (float32, ())  the input's quantization: real = scale·(code − zp)
//   DIR/input.zero_point.npy, input.range.npy (int32 (), (2,): [q_min, q_max])
//   for each Dense or Conv2D at float layer index L:
//     L.weight.npy       int8: Dense (out, in); Conv2D (out, kh, kw, in) — OHWI, over NHWC codes
//     L.weight_scale.npy float32 (out): S_w per output channel (to dequantize weights)
//     L.bias.npy         int32 (out): round(b / (S_in·S_w)) − Z_in·Σ_k W[c, k]
//     L.multiplier.npy, L.shift.npy  int32 (out): M = multiplier · 2^(shift − 31)
//     L.clamp.npy        int32 (2,): [act_min, act_max] (the fused ReLU narrows act_min)
//     L.weight_bits.npy  int32 (): the weights' bit width (codes in [−(2^(b−1) − 1), 2^(b−1) − 1])
//     L.input.scale.npy, L.input.zero_point.npy, L.input.range.npy   what it expects
//     L.output.scale.npy, L.output.zero_point.npy, L.output.range.npy  what it writes
//   for each ReLU at L: L.fused.npy (int32 (): 1 when fused into the layer before)
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/data/npy.hpp>
#include <edgescale/quant/qnetwork.hpp>
#include <edgescale/quant/stages.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <type_traits>
#include <vector>

namespace edgescale::examples::quantize {

namespace detail {

template <class S>
constexpr bool is_weighted = requires(const S& s) {
  s.requantizer();
};
template <class S>
constexpr bool is_relu = requires(const S& s) {
  s.fused();
};

template <class T>
void save(const std::filesystem::path& dir, const std::string& name, const std::vector<T>& v,
          std::vector<Index> shape) {
  data::save_npy(dir / (name + ".npy"), v.data(), std::span<const Index>(shape));
}
template <class T>
void save_scalar(const std::filesystem::path& dir, const std::string& name, T v) {
  data::save_npy(dir / (name + ".npy"), &v, std::span<const Index>());
}
inline void save_params(const std::filesystem::path& dir, const std::string& name,
                        const quant::ActivationParams& p) {
  save_scalar(dir, name + ".scale", p.scale);
  save_scalar(dir, name + ".zero_point", p.zero_point);
  save(dir, name + ".range", std::vector<std::int32_t>{p.qmin, p.qmax}, {2});
}

template <class T>
std::vector<T> load(const std::filesystem::path& dir, const std::string& name, Index expected) {
  const auto a = data::load_npy<T>(dir / (name + ".npy"));
  if (a.size() != expected) {
    throw format_error(name + ".npy: " + std::to_string(a.size()) + " values, expected " +
                       std::to_string(expected));
  }
  return a.data;
}
inline quant::ActivationParams load_params(const std::filesystem::path& dir,
                                           const std::string& name) {
  quant::ActivationParams p;
  p.scale = load<float>(dir, name + ".scale", 1)[0];
  p.zero_point = load<std::int32_t>(dir, name + ".zero_point", 1)[0];
  const auto range = load<std::int32_t>(dir, name + ".range", 2);
  p.qmin = range[0];
  p.qmax = range[1];
  p.bits = 2;
  while (p.bits < 8 && (1 << p.bits) - 1 < p.qmax - p.qmin) {
    ++p.bits;
  }
  p.check(name.c_str());
  return p;
}

}  // namespace detail

/// Writes `qnet` to DIR (see the top of this file).
template <class QNet>
void save_model(const QNet& qnet, const std::string& net, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  {
    std::ofstream meta(dir / "model.txt");
    meta << "edgescale integer model\nnet " << net << "\n";
    if (!meta) {
      throw error("cannot write " + (dir / "model.txt").string());
    }
  }
  qnet.for_each_stage([&](auto index, const auto& stage) {
    using S = std::remove_cvref_t<decltype(stage)>;
    const std::string p = std::to_string(decltype(index)::value - 1);
    if constexpr (decltype(index)::value == 0) {
      detail::save_params(dir, "input", stage.output_params());
    } else if constexpr (detail::is_weighted<S>) {
      const auto& rq = stage.requantizer();
      const Index out = rq.out_channels();
      std::vector<Index> shape{out, rq.fan_in()};
      if constexpr (requires { S::kernel_size; }) {
        const Index cin = S::in_channels;
        const Index k = S::kernel_size;
        shape = {out, k, k, cin};
      }
      detail::save(dir, p + ".weight",
                   std::vector<std::int8_t>(rq.codes().begin(), rq.codes().end()), shape);
      detail::save(dir, p + ".bias", std::vector<std::int32_t>(rq.bias().begin(), rq.bias().end()),
                   {out});
      std::vector<std::int32_t> m;
      std::vector<std::int32_t> s;
      for (const auto& x : rq.multipliers()) {
        m.push_back(x.value);
        s.push_back(x.shift);
      }
      detail::save(dir, p + ".multiplier", m, {out});
      detail::save(dir, p + ".shift", s, {out});
      detail::save(dir, p + ".weight_scale",
                   std::vector<float>(rq.weight_scales().begin(), rq.weight_scales().end()), {out});
      detail::save(dir, p + ".clamp", std::vector<std::int32_t>{rq.act_min(), rq.act_max()}, {2});
      detail::save_scalar(dir, p + ".weight_bits", std::int32_t{rq.weight_bits()});
      detail::save_params(dir, p + ".input", rq.input_params());
      detail::save_params(dir, p + ".output", rq.output_params());
    } else if constexpr (detail::is_relu<S>) {
      detail::save_scalar(dir, p + ".fused", std::int32_t{stage.fused() ? 1 : 0});
    }
  });
}

/// Reads an integer network of type QNet from DIR (written by save_model for the same network).
template <class QNet>
QNet load_model(const std::filesystem::path& dir) {
  using Tuple = typename QNet::stage_tuple;
  const auto make = [&](auto i) {
    constexpr std::size_t I = decltype(i)::value;
    using S = std::tuple_element_t<I, Tuple>;
    if constexpr (I == 0) {
      return S(detail::load_params(dir, "input"));
    } else {
      const std::string p = std::to_string(I - 1);
      if constexpr (detail::is_weighted<S>) {
        const auto in = detail::load_params(dir, p + ".input");
        const auto out = detail::load_params(dir, p + ".output");
        const Index m = S::output_channels;
        const Index k = S::fan_in;
        const auto codes = detail::load<std::int8_t>(dir, p + ".weight", m * k);
        const auto bias = detail::load<std::int32_t>(dir, p + ".bias", m);
        const auto mult = detail::load<std::int32_t>(dir, p + ".multiplier", m);
        const auto shift = detail::load<std::int32_t>(dir, p + ".shift", m);
        const auto clamp = detail::load<std::int32_t>(dir, p + ".clamp", 2);
        const auto scales = detail::load<float>(dir, p + ".weight_scale", m);
        const auto bits = detail::load<std::int32_t>(dir, p + ".weight_bits", 1);
        std::vector<quant::Multiplier> ms;
        for (Index c = 0; c < m; ++c) {
          ms.push_back({mult[static_cast<std::size_t>(c)], shift[static_cast<std::size_t>(c)]});
        }
        return S(quant::detail::Requantizer(codes, m, k, scales, bias, ms, in, out, clamp[0],
                                            clamp[1], bits[0]));
      } else if constexpr (detail::is_relu<S>) {
        return S(detail::load<std::int32_t>(dir, p + ".fused", 1)[0] != 0);
      } else {
        return S();
      }
    }
  };
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return QNet(Tuple{make(std::integral_constant<std::size_t, I>{})...});
  }
  (std::make_index_sequence<std::tuple_size_v<Tuple>>{});
}

}  // namespace edgescale::examples::quantize
