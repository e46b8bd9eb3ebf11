// edgescale/prune/px.hpp — PX, Path eXclusion (Iurada, Ciccone, Tommasi, CVPR 2024): keep the
// weights that most shape a path-based upper bound of the neural tangent kernel.
//
//   prune::Px px;                                         // the authors' procedure
//   prune::Px consistent{.pooling = prune::PoolRouting::real};
//   ParameterSet<double> s = px.score(net, data, rng);   // data: the pruning batch (no labels)
//   prune::PxTerms t = prune::px_terms(net, data);       // z1, z2, R and ∂R/∂θ² (tests, analysis)
//
// The procedure is that of the authors' current code (DESIGN §3a). In the path view of a ReLU
// network, f_k(x) = Σ_{p→k} c_p(x)·v_p(θ): v_p the product of the parameters on path p (a bias path
// starts at its bias), c_p the input at the path's start (1 for a bias) times the 0/1 ReLU gates
// along it. PX never forms J_v f or J_θ v; it runs two auxiliary copies of the network:
//   gates: the real network on the pruning batch, in evaluation mode, a = [pre-activation > 0];
//   jvf:   every weight and bias 1 (masked entries 0), input x², the real gates imposed
//          → z1[k, n] = Σ_{p→k} c_p(x_n)², the squared rows of J_v f;
//   pk:    every weight and bias squared (masked entries 0), input ones, no activations
//          → z2[k] = Σ_{p→k} v_p²;
//   R = Σ_{n,k} z1[k, n]·z2[k] (z1 a constant), score(θ_j) = θ_j² · ∂R/∂(θ_j²) ≥ 0.
// ∂R/∂(θ²) is one backward of the pk copy seeded with δ = Σ_n z1[:, n]. The pk copy runs on one
// sample, so for a Dense layer that backward is the outer product δ_{l+1} h_lᵀ of DESIGN §3a
// (h_l the pk activations, δ the pk backward), and score(W_l) = W_l² ⊙ M_l ⊙ δ_{l+1} h_lᵀ; Conv2D
// is the same through its own backward, average pooling is linear. One round costs a forward of
// the batch for the gates, a forward of the batch for z1, and a forward and backward of one sample.
//
// Max pooling is not linear in the path view, and the authors' code keeps it as it is in both
// copies, so it picks the maximum of the auxiliary activations (PoolRouting::auxiliary, the
// default, which reproduces their scores). PoolRouting::real is the path-consistent variant: every
// pooling window routes through the position the real network picked for that sample, in jvf and
// in pk — then pk runs one sample of ones per pruning sample, z2 is per sample (z2[k, n]) and
// R = Σ z1·z2. Biases and BatchNorm are never scored; BatchNorm's tensors are left as they are in
// both copies (the authors' code skips them by name), and the copies run in evaluation mode.
//
// Computed in the network's scalar type (rebind the network to double for reference values).
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/gates.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/nn/overwrite.hpp>
#include <edgescale/prune/scorer.hpp>

#include <cmath>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace edgescale::prune {

/// How PX's auxiliary passes go through max pooling (see the header comment).
enum class PoolRouting {
  auxiliary,  ///< each copy's pooling picks the maximum of its own activations (the authors' code)
  real,       ///< every window routes through the real network's maximum (path-consistent)
};

/// What one PX evaluation computes, in double: the terms of its bound.
struct PxTerms {
  Matrix<double> z1;  ///< K x n: z1(k, n) = Σ_{p→k} c_p(x_n)²
  Matrix<double> z2;  ///< K x 1 (auxiliary routing) or K x n (real routing): Σ_{p→k} v_p²
  double r = 0;       ///< R = Σ_{n,k} z1·z2
  ParameterSet<double> dr_dsquare;  ///< ∂R/∂(θ_j²) for every trained value, weights and biases
};

namespace detail {

/// The layers PX rewrites: those with a weight tensor (Dense, Conv2D), not BatchNorm.
template <class L>
bool px_rewrites(const L& layer) {
  for (const auto& p : layer.parameters()) {
    if (p.role == ParameterRole::weight) {
      return true;
    }
  }
  return false;
}

/// One tensor of `net` and the same tensor of its twin; `rewritten` when PX sets its values (the
/// weights and biases of a layer with a weight tensor), else copied as it is (BatchNorm's).
template <class T>
struct PxPair {
  const Parameter<T>* from = nullptr;
  Parameter<T>* to = nullptr;
  bool rewritten = false;
};

/// The tensors of `net` and of its twin, pairwise in visiting order (the twin has the same layers
/// and tensors, so the same order; checked by name and size).
template <class Net, class Twin>
std::vector<PxPair<typename Net::scalar_type>> px_pairs(const Net& net, Twin& twin) {
  using T = typename Net::scalar_type;
  std::vector<PxPair<T>> pairs;
  nn::for_each_layer(net, [&](std::string_view, const auto& layer) {
    if constexpr (requires { layer.parameters(); }) {
      const bool rewrites = px_rewrites(layer);
      for (const auto& p : layer.parameters()) {
        pairs.push_back(
            {&p, nullptr,
             rewrites && (p.role == ParameterRole::weight || p.role == ParameterRole::bias)});
      }
    }
  });
  std::size_t i = 0;
  nn::for_each_layer(twin, [&](std::string_view, auto& layer) {
    if constexpr (requires { layer.parameters(); }) {
      for (auto& p : layer.parameters()) {
        if (i == pairs.size() || pairs[i].from->name != p.name ||
            pairs[i].from->size() != p.size()) {
          throw error("PX: the twin's tensors do not follow the network's");  // a library bug
        }
        pairs[i++].to = &p;
      }
    }
  });
  if (i != pairs.size()) {
    throw error("PX: the twin's tensors do not follow the network's");
  }
  return pairs;
}

/// The PX passes on `net`; `twin` (an nn::gated_twin_t<Net>) is left holding θ² (masked) as the
/// values and ∂R/∂(θ²) as the gradients of the rewritten layers, net's values elsewhere.
template <class Net, class Twin>
PxTerms px_passes(Net& net, Twin& twin, const PruningData<typename Net::scalar_type>& data,
                  PoolRouting routing) {
  using T = typename Net::scalar_type;
  check_data(data, Net::input_shape::size, false, "PX");
  const Index n = data.inputs.cols();

  nn::GateRecorder<T> gates;
  {
    const nn::ModeScope evaluation(net, false);
    net.forward(data.inputs, gates);
  }
  if constexpr (requires { twin.set_training(false); }) {
    twin.set_training(false);
  }
  if (routing == PoolRouting::real) {
    nn::impose_routes(twin, gates);
  }
  const auto pairs = px_pairs(std::as_const(net), twin);
  for (const auto& [from, to, rewritten] : pairs) {
    if (!rewritten) {
      to->value = from->value;
    }
  }

  PxTerms terms;
  // jvf: weights and biases 1 (masked entries 0), input x², the real gates.
  for (const auto& [from, to, rewritten] : pairs) {
    if (rewritten && from->masked()) {
      to->value = from->mask;
    } else if (rewritten) {
      to->value.setOnes();
    }
  }
  nn::impose_gates(twin, gates);
  const Matrix<T> squared = data.inputs.array().square().matrix();
  terms.z1 =
      twin.forward(ConstBatchView<T>(squared.data(), squared.rows(), n)).template cast<double>();

  // pk: weights and biases squared (masked entries 0), input ones, every ReLU the identity.
  for (const auto& [from, to, rewritten] : pairs) {
    if (rewritten && from->masked()) {
      to->value = (from->value.array() * from->mask.array()).square().matrix();
    } else if (rewritten) {
      to->value = from->value.cwiseAbs2();
    }
  }
  const Index pk_batch = routing == PoolRouting::real ? n : 1;
  nn::open_gates(twin, pk_batch);
  const Matrix<T> ones = Matrix<T>::Ones(Net::input_shape::size, pk_batch);
  terms.z2 =
      twin.forward(ConstBatchView<T>(ones.data(), ones.rows(), pk_batch)).template cast<double>();
  const Matrix<T> seed = routing == PoolRouting::real
                             ? Matrix<T>(terms.z1.template cast<T>())
                             : Matrix<T>(terms.z1.rowwise().sum().template cast<T>());
  terms.r = routing == PoolRouting::real ? terms.z1.cwiseProduct(terms.z2).sum()
                                         : terms.z1.rowwise().sum().dot(terms.z2.col(0));
  twin.backward_parameters(ConstBatchView<T>(seed.data(), seed.rows(), seed.cols()),
                           nn::overwrite_gradients);
  return terms;
}

/// The twin a Px scorer keeps between rounds, so the rounds of a schedule allocate it (its
/// tensors and workspaces) once. Copies start empty: two scorers never share one.
class PxTwinCache {
 public:
  PxTwinCache() = default;
  PxTwinCache(const PxTwinCache& /*other*/) {}
  PxTwinCache& operator=(const PxTwinCache& /*other*/) {
    twin_.reset();
    return *this;
  }
  PxTwinCache(PxTwinCache&&) noexcept = default;
  PxTwinCache& operator=(PxTwinCache&&) noexcept = default;
  ~PxTwinCache() = default;

  /// The kept twin for networks of type Net, made on first use (px_passes sets its tensors).
  template <class Net>
  nn::gated_twin_t<Net>& get() {
    using Twin = nn::gated_twin_t<Net>;
    if (type_ != &typeid(Twin) || !twin_) {
      twin_ = std::make_shared<Twin>();
      type_ = &typeid(Twin);
    }
    return *static_cast<Twin*>(twin_.get());
  }

 private:
  std::shared_ptr<void> twin_;
  const std::type_info* type_ = nullptr;
};

}  // namespace detail

/// z1, z2, R and ∂R/∂(θ²) of PX on `net` and the pruning batch (labels unused). Throws
/// argument_error for an empty or non-finite batch, shape_error for a mis-shaped one.
template <nn::Network Net>
PxTerms px_terms(Net& net, const PruningData<typename Net::scalar_type>& data,
                 PoolRouting routing = PoolRouting::auxiliary) {
  const auto twin = std::make_unique<nn::gated_twin_t<Net>>();
  PxTerms terms = detail::px_passes(net, *twin, data, routing);
  terms.dr_dsquare = ParameterSet<double>(*twin, TensorSelection::trained);
  terms.dr_dsquare.set_mask({});
  terms.dr_dsquare.read_gradients(*twin);
  return terms;
}

/// The PX scorer: score(θ_j) = θ_j² · ∂R/∂(θ_j²) on every prunable weight (0 where pruned).
/// It keeps its auxiliary copy of the network between calls (one allocation for all the rounds of
/// a schedule), so one Px scores on one thread at a time; copies of it keep their own.
struct Px {
  static constexpr bool needs_data = true;
  PoolRouting pooling = PoolRouting::auxiliary;

  template <nn::Network Net>
  ParameterSet<double> score(Net& net, const PruningData<typename Net::scalar_type>& data,
                             Rng& /*rng*/) {
    auto& twin = cache.get<Net>();
    detail::px_passes(net, twin, data, pooling);
    return value_times_gradient(twin);
  }

  detail::PxTwinCache cache{};  ///< the kept auxiliary copy (left out of designated initialisers)
};

}  // namespace edgescale::prune
