// Brute-force path view of a small ReLU network (DESIGN §3a), for the NTK and PX tests.
//
// f_k(x) = Σ_{p→k} c_p(x)·v_p(θ): a path p runs from an input unit (or from a bias, where it
// starts) through one unit of every layer to output k. v_p is the product of the parameters on
// it, c_p the input value at its start (1 for a bias path) times the real network's 0/1 gates
// along it (ReLU, and max pooling's choice of window maximum). A parameter-free linear layer
// (average pooling, Flatten) puts a constant coefficient s on its edges; the product s_p of a
// path's coefficients is split evenly, √s_p in c_p and √s_p in v_p, which is what PX's two
// passes do when each runs the pooling as it is (z1·z2 then carries s_p once, as f does).
//
// Nothing here uses PX's passes or the network's backward through parameters: the structure of
// every layer is found by probing it (one parameter 1, every other 0, the identity batch as
// input), gates by the layer's own local Jacobian at the sample, and every path is walked
// explicitly. It is meant for networks with up to ~10⁶ paths.
#pragma once

#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/nn/pool.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace edgescale::test {

/// For a max pooling layer, the average pooling of the same windows (its possible edges).
template <class L>
struct pool_windows {};
template <class T, class In, int K, int S>
struct pool_windows<nn::MaxPool2DLayer<T, In, K, S>> {
  using type = nn::AvgPool2DLayer<double, In, K, S>;
};
template <class L>
inline constexpr bool is_max_pool_layer_v = requires {
  typename pool_windows<L>::type;
};

/// What the path view gives for a batch (K outputs, N samples, P trained values).
struct PathSums {
  Matrix<double> f;          ///< K x N: Σ_p c_p v_p (must equal the network's forward)
  Matrix<double> z1;         ///< K x N: Σ_p c_p² over paths whose weights are all unmasked
  Vector<double> z2;         ///< K: Σ_p v_p² over every path
  Matrix<double> z2_routed;  ///< K x N: Σ_p v_p² over the paths max pooling routes for sample n
  double r_auxiliary = 0;    ///< Σ_{n,k} z1 z2
  double r_real = 0;         ///< Σ_{n,k} z1 z2_routed
  Vector<double> dr_auxiliary;  ///< P: ∂r_auxiliary/∂(θ_j²), z1 held constant
  Vector<double> dr_real;       ///< P: ∂r_real/∂(θ_j²), z1 held constant
  double jv_theta = 0;  ///< ‖J_θ v‖²_F = Σ_p Σ_{j∈p} (∂v_p/∂θ_j)², every path
  Index paths = 0;      ///< paths walked (all outputs)
};

namespace detail {

struct PathEdge {
  Index from = 0;       ///< unit of the level below
  Index param = -1;     ///< trained value on the edge, or -1
  double scale = 1;     ///< constant coefficient of a parameter-free linear layer
  bool gated = false;   ///< a 0/1 gate of the real network at the sample applies (ReLU, max pool)
  bool routed = false;  ///< the gate is max pooling's choice
};

/// Layer l: edges from level l into each unit of level l + 1, and biases starting paths there.
struct Stage {
  std::vector<std::vector<PathEdge>> into;
  std::vector<std::vector<Index>> biases;
  std::vector<Matrix<double>> jacobian;  ///< per sample, gated layers: out x in, entries 0/1
};

inline void require(bool ok, const std::string& what) {
  if (!ok) {
    throw std::logic_error("path enumeration: " + what);
  }
}

/// The layer's output for the identity batch: column i is its response to unit input i.
template <class L>
Matrix<double> respond_to_units(L& layer) {
  constexpr Index in = L::input_shape::size;
  const Matrix<double> eye = Matrix<double>::Identity(in, in);
  return layer.forward(ConstBatchView<double>(eye.data(), in, in));
}

/// Edges and biases of a layer whose output is Σ θ_j · (an input value or 1), found by probing.
template <class L>
void probe_affine(const L& layer, std::string_view path, const ParameterLayout& layout,
                  Stage& stage) {
  L probe = layer;
  for_each_parameter(probe, [](std::string_view, Parameter<double>& p) {
    p.value.setZero();
    p.mask.resize(0);
  });
  constexpr Index in = L::input_shape::size;
  const Matrix<double> zero = Matrix<double>::Zero(in, 1);
  for_each_parameter(probe, [&](std::string_view name, Parameter<double>& p) {
    const TensorSlot* slot = layout.find(std::string(path) + "." + std::string(name));
    require(slot != nullptr, "no trained tensor " + std::string(path) + "." + std::string(name));
    for (Index e = 0; e < p.size(); ++e) {
      p.value[e] = 1;
      const Matrix<double> constant = probe.forward(ConstBatchView<double>(zero.data(), in, 1));
      if (!constant.isZero(0)) {  // a bias: it starts paths
        for (Index o = 0; o < constant.rows(); ++o) {
          if (constant(o) != 0) {
            require(constant(o) == 1, "a bias enters with a coefficient other than 1");
            stage.biases[static_cast<std::size_t>(o)].push_back(slot->offset + e);
          }
        }
      } else {
        const Matrix<double> y = respond_to_units(probe);
        for (Index o = 0; o < y.rows(); ++o) {
          for (Index i = 0; i < in; ++i) {
            if (y(o, i) != 0) {
              require(y(o, i) == 1, "a weight enters with a coefficient other than 1");
              stage.into[static_cast<std::size_t>(o)].push_back({i, slot->offset + e, 1.0});
            }
          }
        }
      }
      p.value[e] = 0;
    }
  });
}

/// The layer's Jacobian at input x (one sample), by its own backward of one-hot gradients.
template <class L>
Matrix<double> local_jacobian(const L& layer, const Matrix<double>& x) {
  L probe = layer;
  constexpr Index in = L::input_shape::size;
  constexpr Index out = L::output_shape::size;
  probe.forward(ConstBatchView<double>(x.data(), in, 1));
  Matrix<double> j(out, in);
  Matrix<double> dy = Matrix<double>::Zero(out, 1);
  for (Index o = 0; o < out; ++o) {
    dy.setZero();
    dy(o) = 1;
    j.row(o) = probe.backward(ConstBatchView<double>(dy.data(), out, 1)).transpose();
  }
  return j;
}

template <class L>
bool has_trained_tensors(const L& layer) {
  bool any = false;
  if constexpr (NamedTensors<L>) {
    for_each_parameter(layer, [&](std::string_view, const auto&) { any = true; });
  }
  return any;
}

template <class L>
Stage make_stage(const L& layer, std::string_view path, const ParameterLayout& layout,
                 const std::vector<Matrix<double>>& inputs) {
  constexpr Index out = L::output_shape::size;
  Stage stage;
  stage.into.resize(static_cast<std::size_t>(out));
  stage.biases.resize(static_cast<std::size_t>(out));
  if (has_trained_tensors(layer)) {
    probe_affine(layer, path, layout, stage);
    return stage;
  }
  if constexpr (nn::is_relu_layer_v<L> || is_max_pool_layer_v<L>) {
    // The possible edges: the diagonal of a ReLU; each window of a max pooling (those of an
    // average pooling of the same geometry). The sample's gates pick among them.
    if constexpr (nn::is_relu_layer_v<L>) {
      for (Index o = 0; o < out; ++o) {
        stage.into[static_cast<std::size_t>(o)].push_back({o, -1, 1.0, true, false});
      }
    } else {
      typename pool_windows<L>::type windows;
      const Matrix<double> y = respond_to_units(windows);
      for (Index o = 0; o < y.rows(); ++o) {
        for (Index i = 0; i < y.cols(); ++i) {
          if (y(o, i) != 0) {
            stage.into[static_cast<std::size_t>(o)].push_back({i, -1, 1.0, true, true});
          }
        }
      }
    }
    for (const Matrix<double>& x : inputs) {
      const Matrix<double> j = local_jacobian(layer, x);
      require(((j.array() == 0) || (j.array() == 1)).all(), "a gate is neither 0 nor 1");
      stage.jacobian.push_back(j);
    }
  } else {
    // A parameter-free linear layer (average pooling, Flatten): constant coefficients.
    L probe = layer;
    const Matrix<double> y = respond_to_units(probe);
    for (Index o = 0; o < y.rows(); ++o) {
      for (Index i = 0; i < y.cols(); ++i) {
        if (y(o, i) != 0) {
          require(y(o, i) > 0, "a negative constant coefficient");
          stage.into[static_cast<std::size_t>(o)].push_back({i, -1, y(o, i)});
        }
      }
    }
  }
  return stage;
}

struct Walker {
  const std::vector<Stage>& stages;
  const Vector<double>& theta;
  const Vector<double>& mask;  // 1 per value without a mask
  const Matrix<double>& x;
  PathSums& sums;
  std::vector<Matrix<double>>& dv2_routed;  // per sample, K x P: Σ_{p→k routed} ∂(v_p²)/∂(θ_j²)
  Matrix<double>& dv2_all;                  // K x P: Σ_{p→k} ∂(v_p²)/∂(θ_j²)

  Index output = 0;
  std::vector<Index> params;
  std::vector<std::array<Index, 3>> gates;  // (stage, out, from)
  std::vector<bool> gate_routed;
  double scale = 1;

  void walk(std::size_t level, Index unit) {
    if (level == 0) {
      leaf(unit);
      return;
    }
    const Stage& s = stages[level - 1];
    for (const Index b : s.biases[static_cast<std::size_t>(unit)]) {
      params.push_back(b);
      leaf(-1);
      params.pop_back();
    }
    for (const PathEdge& e : s.into[static_cast<std::size_t>(unit)]) {
      if (e.param >= 0) {
        params.push_back(e.param);
      }
      if (e.gated) {
        gates.push_back({static_cast<Index>(level - 1), unit, e.from});
        gate_routed.push_back(e.routed);
      }
      const double saved = scale;
      scale *= e.scale;
      walk(level - 1, e.from);
      scale = saved;
      if (e.gated) {
        gates.pop_back();
        gate_routed.pop_back();
      }
      if (e.param >= 0) {
        params.pop_back();
      }
    }
  }

  /// A path ends at input unit `input`, or at the bias last pushed (input −1); the gates pushed
  /// so far are those of the layers above its start, all of which apply.
  void leaf(Index input) {
    const Index samples = x.cols();
    const Index k = output;
    double v = std::sqrt(scale);
    bool unmasked = true;
    for (const Index j : params) {
      v *= theta[j];
      unmasked = unmasked && mask[j] == 1;
    }
    const double v2 = v * v;
    ++sums.paths;
    sums.z2[k] += v2;
    // ∂(v_p²)/∂(θ_j²) = s_p Π_{i∈p, i≠j} θ_i²: exact at θ_j = 0 (a masked weight) too.
    std::vector<double> dv2(params.size(), scale);
    for (std::size_t a = 0; a < params.size(); ++a) {
      for (std::size_t b = 0; b < params.size(); ++b) {
        if (a != b) {
          dv2[a] *= theta[params[b]] * theta[params[b]];
        }
      }
      sums.jv_theta += dv2[a];
      dv2_all(k, params[a]) += dv2[a];
    }
    for (Index n = 0; n < samples; ++n) {
      double gate = 1;
      double routed = 1;
      for (std::size_t g = 0; g < gates.size(); ++g) {
        const auto& [st, o, from] = gates[g];
        const double a =
            stages[static_cast<std::size_t>(st)].jacobian[static_cast<std::size_t>(n)](o, from);
        gate *= a;
        if (gate_routed[g]) {
          routed *= a;
        }
      }
      const double c = (input >= 0 ? x(input, n) : 1.0) * gate * std::sqrt(scale);
      sums.f(k, n) += c * v;
      if (unmasked) {
        sums.z1(k, n) += c * c;
      }
      sums.z2_routed(k, n) += routed * v2;
      for (std::size_t a = 0; a < params.size(); ++a) {
        dv2_routed[static_cast<std::size_t>(n)](k, params[a]) += routed * dv2[a];
      }
    }
  }
};

}  // namespace detail

/// Every path of `net` (double, built from Dense, Conv2D, ReLU, average and max pooling, Flatten)
/// for the batch x (features x N), in evaluation mode.
template <class Net>
PathSums enumerate_paths(Net& net, const Matrix<double>& x) {
  static_assert(std::is_same_v<typename Net::scalar_type, double>);
  constexpr Index outputs = Net::output_shape::size;
  const Index samples = x.cols();
  const nn::ModeScope evaluation(net, false);
  const ParameterSet<double> values(net, TensorSelection::trained);
  const Index p = values.size();
  const Vector<double> mask = values.has_mask() ? values.mask() : Vector<double>::Ones(p);

  // Each layer's input, per sample: the real network's activations.
  std::vector<std::vector<Matrix<double>>> inputs(Net::size);
  for (Index n = 0; n < samples; ++n) {
    const Matrix<double> sample = x.col(n);
    inputs[0].push_back(sample);
    std::size_t layer = 0;
    net.forward(sample, [&](std::string_view path, const auto&, const ConstBatchView<double>& y) {
      detail::require(path == std::to_string(layer), "a container layer (not supported)");
      if (++layer < Net::size) {
        inputs[layer].emplace_back(y);
      }
    });
  }

  std::vector<detail::Stage> stages;
  const ParameterLayout& layout = values.layout();
  nn::for_each_layer(std::as_const(net), [&](std::string_view path, const auto& layer) {
    stages.push_back(detail::make_stage(layer, path, layout, inputs[stages.size()]));
  });

  PathSums sums;
  sums.f = Matrix<double>::Zero(outputs, samples);
  sums.z1 = Matrix<double>::Zero(outputs, samples);
  sums.z2 = Vector<double>::Zero(outputs);
  sums.z2_routed = Matrix<double>::Zero(outputs, samples);
  std::vector<Matrix<double>> dv2_routed(static_cast<std::size_t>(samples),
                                         Matrix<double>::Zero(outputs, p));
  Matrix<double> dv2_all = Matrix<double>::Zero(outputs, p);
  detail::Walker walker{stages, values.values(), mask, x, sums, dv2_routed, dv2_all, 0, {}, {}, {},
                        1.0};
  for (Index k = 0; k < outputs; ++k) {
    walker.output = k;
    walker.walk(stages.size(), k);
  }

  sums.dr_auxiliary = dv2_all.transpose() * sums.z1.rowwise().sum();
  sums.r_auxiliary = (sums.z1.array().colwise() * sums.z2.array()).sum();
  sums.r_real = (sums.z1.array() * sums.z2_routed.array()).sum();
  sums.dr_real = Vector<double>::Zero(p);
  for (Index n = 0; n < samples; ++n) {
    sums.dr_real += dv2_routed[static_cast<std::size_t>(n)].transpose() * sums.z1.col(n);
  }
  return sums;
}

}  // namespace edgescale::test
