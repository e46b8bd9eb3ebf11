// edgescale/fed/fedavg.hpp — FedAvg and its two best-known variants, FedAvgM and FedProx.
//
//   fed::FedAvg<Net> fedavg(net, {.local = {.epochs = 1, .batch_size = 32, .learning_rate =
//   0.05}}); fed::FedAvg<Net> fedavgm(net, {.local = ..., .server_momentum = 0.9});     // FedAvgM
//   fed::FedAvg<Net> fedprox(net, {.local = ..., .proximal_mu = 0.01});       // FedProx
//   fed::FedAvg<Net, fed::TrimmedMean> robust(net, {.aggregator = {.trim = 0.2}});
//   fed::FedAvg<Net> head_only(net, {.frozen = {"0.", "1.", "2."}});        // layers 0-2 frozen
//
// A client starts from the global model x, trains E local epochs of SGD (fed::LocalTraining) and
// sends its delta Δ_k = y_k − x. The server averages the deltas with the aggregator (weights n_k)
// and steps:
//   FedAvg  (McMahan et al. 2017)  x ← x + η_g Δ̄                  (η_g = 1: x ← Σ n_k y_k / Σ n_k)
//   FedAvgM (Hsu et al. 2019)      v ← β v − Δ̄;  x ← x − η_g v    (ḡ = Σ w_k (x − y_k) = −Δ̄)
//   FedProx (Li et al. 2020)       local loss + (μ/2)‖w − x‖²: the gradient hook adds μ (w − x)
// Frozen tensors (qualified-name prefixes) keep the broadcast values: their gradients are zeroed
// before each local step, their deltas are zero, and neither direction counts their bytes.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/fed/aggregate.hpp>
#include <edgescale/fed/client.hpp>
#include <edgescale/fed/concepts.hpp>
#include <edgescale/fed/detail/global_model.hpp>
#include <edgescale/fed/reduce.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/loss.hpp>

#include <concepts>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace edgescale::fed {

template <nn::Network Net, Aggregator<typename Net::scalar_type> Agg = WeightedMean,
          detail::LabelLoss<typename Net::scalar_type> Loss = nn::SoftmaxCrossEntropy>
class FedAvg : public detail::AggregatingStrategy<FedAvg<Net, Agg, Loss>, Net, Agg, Loss> {
  using Base = detail::AggregatingStrategy<FedAvg<Net, Agg, Loss>, Net, Agg, Loss>;
  using Base::global_;
  friend Base;

 public:
  using typename Base::worker_type;
  using scalar_type = typename Net::scalar_type;
  using T = scalar_type;
  using update_type = ParameterSet<T>;  ///< Δ_k = y_k − x, in the global layout
  using client_state = Stateless;
  struct options {
    LocalTraining local{};
    double server_learning_rate = 1.0;  ///< η_g
    double server_momentum = 0.0;       ///< β of FedAvgM (0: FedAvg)
    double proximal_mu = 0.0;           ///< μ of FedProx (0: FedAvg)
    std::vector<std::string> frozen{};  ///< tensors kept as broadcast (name prefixes)
    Loss loss{};                        ///< the clients' local loss
    Agg aggregator{};
  };

  explicit FedAvg(const Net& initial, options o = {}) : Base(initial, o.frozen), o_(std::move(o)) {
    detail::validate(o_.local, "FedAvg");
    if (!(o_.server_learning_rate > 0) || !(o_.server_momentum >= 0) || !(o_.server_momentum < 1) ||
        !(o_.proximal_mu >= 0)) {
      throw argument_error(
          "FedAvg: need server_learning_rate > 0, server_momentum in [0, 1), proximal_mu >= 0");
    }
    if (global_.has_frozen() && o_.local.weight_decay > 0) {
      throw argument_error("FedAvg: weight decay would move frozen tensors; use one or the other");
    }
  }

  update_type client_update(worker_type& w, const ClientData<T>& client, client_state& /*state*/,
                            Rng& rng) const {
    const ParameterSet<T>& x = global_.x();
    x.write(w.net);
    const auto freeze = global_.freeze_hook();
    if (o_.proximal_mu > 0) {
      const T mu = static_cast<T>(o_.proximal_mu);
      // ∇ (μ/2)‖w − x‖² = μ (w − x)  (Li et al. 2020, Eq. 2)
      auto proximal = [&](Net& net) {
        x.zip(net, [&](auto& p, const auto& xs) { p.grad.noalias() += mu * (p.value - xs); });
      };
      detail::train_locally<Net, Loss>(w.net, client, o_.local, o_.loss, rng, proximal, freeze);
    } else {
      detail::train_locally<Net, Loss>(w.net, client, o_.local, o_.loss, rng, freeze);
    }
    return global_.delta(w.net);
  }

  [[nodiscard]] std::string check(const update_type& u) const {
    return global_.check(u, "the update");
  }

  /// The server state (fed::Checkpointable): x, FedAvgM's velocity (zeros before the first
  /// step), and 1 when the velocity exists.
  [[nodiscard]] std::vector<double> server_state() const {
    const Vector<T>& x = global_.x().values();
    std::vector<double> out(static_cast<std::size_t>(2 * x.size() + 1), 0.0);
    Eigen::Map<Vector<double>>(out.data(), x.size()) = x.template cast<double>();
    if (velocity_.size() != 0) {
      Eigen::Map<Vector<double>>(out.data() + x.size(), x.size()) =
          velocity_.values().template cast<double>();
      out.back() = 1;
    }
    return out;
  }
  void load_server_state(std::span<const double> values) {
    const Index n = global_.x().size();
    global_.require_state(values, 2 * n + 1, "FedAvg");
    global_.x().values() = Eigen::Map<const Vector<double>>(values.data(), n).template cast<T>();
    if (values.back() != 0) {
      velocity_ = global_.x().zeros_like();
      velocity_.values() =
          Eigen::Map<const Vector<double>>(values.data() + n, n).template cast<T>();
    } else {
      velocity_ = ParameterSet<T>();
    }
  }

  [[nodiscard]] std::size_t bytes_up(const update_type& /*u*/) const {
    return global_.trained_bytes();
  }
  [[nodiscard]] std::size_t bytes_down() const { return global_.trained_bytes(); }

  [[nodiscard]] const options& settings() const { return o_; }

 private:
  static constexpr const char* name = "FedAvg";
  [[nodiscard]] const Agg& aggregator() const { return o_.aggregator; }

  void step(const Vector<T>& mean) {
    ParameterSet<T>& x = global_.x();
    const T lr = static_cast<T>(o_.server_learning_rate);
    if (o_.server_momentum > 0) {
      if (velocity_.size() == 0) {
        velocity_ = x.zeros_like();
      }
      velocity_.values() = static_cast<T>(o_.server_momentum) * velocity_.values() - mean;
      x.values().noalias() -= lr * velocity_.values();
    } else {
      x.values().noalias() += lr * mean;
    }
  }

  options o_;
  ParameterSet<T> velocity_;
};

}  // namespace edgescale::fed
