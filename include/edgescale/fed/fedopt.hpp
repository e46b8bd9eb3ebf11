// edgescale/fed/fedopt.hpp — adaptive server optimizers: FedAdagrad, FedAdam, FedYogi
// (Reddi et al. 2021, "Adaptive Federated Optimization", Alg. 2).
//
//   fed::FedAdam<Net> fedadam(net, {.local = {...}, .server_learning_rate = 0.01});
//   fed::FedYogi<Net> fedyogi(net, {.local = {...}, .bias_correction = true});
//
// Clients run FedAvg's local SGD and send Δ_k = y_k − x. With Δ the aggregator's mean of the
// deltas (weights n_k, as FedAvg and Flower; the paper averages uniformly, the same for equal
// client sizes):
//   m ← β₁ m + (1 − β₁) Δ
//   Adagrad  v ← v + Δ²
//   Adam     v ← β₂ v + (1 − β₂) Δ²
//   Yogi     v ← v − (1 − β₂) Δ² sign(v − Δ²)
//   x ← x + η m / (√v + τ)
// with v starting at τ² (the paper's v₋₁ ≥ τ²) and m at 0. The paper has no bias correction;
// Flower's FedAdam adds one (m / (1 − β₁ᵗ), v / (1 − β₂ᵗ)): offered as `bias_correction`
// (Adam and Yogi only). Defaults follow the paper's grids: η = 10⁻², τ = 10⁻³, β₁ = 0.9, β₂ = 0.99.
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

#include <cmath>
#include <concepts>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace edgescale::fed {

/// v ← v + Δ² (no bias correction: v only grows).
struct AdagradRule {
  static constexpr const char* name = "FedAdagrad";
  static constexpr bool has_decay = false;
  template <class V, class D>
  static void second_moment(V& v, const D& d2, double /*beta2*/) {
    v += d2;
  }
};
/// v ← β₂ v + (1 − β₂) Δ².
struct AdamRule {
  static constexpr const char* name = "FedAdam";
  static constexpr bool has_decay = true;
  template <class V, class D>
  static void second_moment(V& v, const D& d2, double beta2) {
    using S = typename V::Scalar;
    v = static_cast<S>(beta2) * v + static_cast<S>(1 - beta2) * d2;
  }
};
/// v ← v − (1 − β₂) Δ² sign(v − Δ²) (Zaheer et al. 2018).
struct YogiRule {
  static constexpr const char* name = "FedYogi";
  static constexpr bool has_decay = true;
  template <class V, class D>
  static void second_moment(V& v, const D& d2, double beta2) {
    using S = typename V::Scalar;
    v = v - static_cast<S>(1 - beta2) * (d2 * (v - d2).sign());
  }
};

template <nn::Network Net, class Rule, Aggregator<typename Net::scalar_type> Agg = WeightedMean,
          detail::LabelLoss<typename Net::scalar_type> Loss = nn::SoftmaxCrossEntropy>
class FedOpt : public detail::AggregatingStrategy<FedOpt<Net, Rule, Agg, Loss>, Net, Agg, Loss> {
  using Base = detail::AggregatingStrategy<FedOpt<Net, Rule, Agg, Loss>, Net, Agg, Loss>;
  using Base::global_;
  friend Base;

 public:
  using typename Base::worker_type;
  using scalar_type = typename Net::scalar_type;
  using T = scalar_type;
  using update_type = ParameterSet<T>;
  using client_state = Stateless;
  struct options {
    LocalTraining local{};
    double server_learning_rate = 1e-2;  ///< η
    double beta1 = 0.9;
    double beta2 = 0.99;
    double tau = 1e-3;  ///< adaptivity τ
    bool bias_correction = false;
    std::vector<std::string> frozen{};
    Loss loss{};  ///< the clients' local loss
    Agg aggregator{};
  };

  explicit FedOpt(const Net& initial, options o = {}) : Base(initial, o.frozen), o_(std::move(o)) {
    detail::validate(o_.local, Rule::name);
    if (!(o_.server_learning_rate > 0) || !(o_.beta1 >= 0 && o_.beta1 < 1) ||
        !(o_.beta2 >= 0 && o_.beta2 < 1) || !(o_.tau > 0)) {
      throw argument_error(std::string(Rule::name) +
                           ": need server_learning_rate > 0, beta1 and beta2 in [0, 1), tau > 0");
    }
    m_ = Vector<T>::Zero(global_.x().size());
    v_ = Vector<T>::Constant(global_.x().size(), static_cast<T>(o_.tau * o_.tau));
  }

  update_type client_update(worker_type& w, const ClientData<T>& client, client_state& /*state*/,
                            Rng& rng) const {
    const ParameterSet<T>& x = global_.x();
    x.write(w.net);
    detail::train_locally<Net, Loss>(w.net, client, o_.local, o_.loss, rng, global_.freeze_hook());
    return global_.delta(w.net);
  }

  [[nodiscard]] std::string check(const update_type& u) const {
    return global_.check(u, "the update");
  }

  /// The server state (fed::Checkpointable): x, the moments m and v, and the step count t.
  [[nodiscard]] std::vector<double> server_state() const {
    const Index n = global_.x().size();
    std::vector<double> out(static_cast<std::size_t>(3 * n + 1));
    Eigen::Map<Vector<double>>(out.data(), n) = global_.x().values().template cast<double>();
    Eigen::Map<Vector<double>>(out.data() + n, n) = m_.template cast<double>();
    Eigen::Map<Vector<double>>(out.data() + 2 * n, n) = v_.template cast<double>();
    out.back() = t_;
    return out;
  }
  void load_server_state(std::span<const double> values) {
    const Index n = global_.x().size();
    global_.require_state(values, 3 * n + 1, "FedOpt");
    if (!(values.back() >= 0)) {
      throw argument_error("FedOpt: a server state with a negative step count");
    }
    global_.x().values() = Eigen::Map<const Vector<double>>(values.data(), n).template cast<T>();
    m_ = Eigen::Map<const Vector<double>>(values.data() + n, n).template cast<T>();
    v_ = Eigen::Map<const Vector<double>>(values.data() + 2 * n, n).template cast<T>();
    t_ = static_cast<int>(values.back());
  }

  [[nodiscard]] std::size_t bytes_up(const update_type& /*u*/) const {
    return global_.trained_bytes();
  }
  [[nodiscard]] std::size_t bytes_down() const { return global_.trained_bytes(); }

 private:
  static constexpr const char* name = "FedOpt";
  [[nodiscard]] const Agg& aggregator() const { return o_.aggregator; }

  void step(const Vector<T>& delta) {
    ++t_;
    m_ = static_cast<T>(o_.beta1) * m_ + static_cast<T>(1 - o_.beta1) * delta;
    const Vector<T> d2 = delta.array().square().matrix();
    auto v = v_.array();
    Rule::second_moment(v, d2.array(), o_.beta2);
    double mc = 1;
    double vc = 1;
    if (o_.bias_correction && Rule::has_decay) {
      mc = 1 - std::pow(o_.beta1, t_);
      vc = 1 - std::pow(o_.beta2, t_);
    }
    const auto lr = static_cast<T>(o_.server_learning_rate);
    global_.x().values().array() +=
        lr * (m_.array() / static_cast<T>(mc)) /
        ((v_.array() / static_cast<T>(vc)).sqrt() + static_cast<T>(o_.tau));
  }

  options o_;
  Vector<T> m_;
  Vector<T> v_;
  int t_ = 0;
};

template <nn::Network Net, Aggregator<typename Net::scalar_type> Agg = WeightedMean,
          detail::LabelLoss<typename Net::scalar_type> Loss = nn::SoftmaxCrossEntropy>
using FedAdagrad = FedOpt<Net, AdagradRule, Agg, Loss>;
template <nn::Network Net, Aggregator<typename Net::scalar_type> Agg = WeightedMean,
          detail::LabelLoss<typename Net::scalar_type> Loss = nn::SoftmaxCrossEntropy>
using FedAdam = FedOpt<Net, AdamRule, Agg, Loss>;
template <nn::Network Net, Aggregator<typename Net::scalar_type> Agg = WeightedMean,
          detail::LabelLoss<typename Net::scalar_type> Loss = nn::SoftmaxCrossEntropy>
using FedYogi = FedOpt<Net, YogiRule, Agg, Loss>;

}  // namespace edgescale::fed
