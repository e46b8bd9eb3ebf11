// edgescale/fed/scaffold.hpp — SCAFFOLD, option II (Karimireddy et al. 2020, Alg. 1).
//
//   fed::Scaffold<Net> scaffold(net, {.local = {.epochs = 1, .batch_size = 32, .learning_rate =
//   0.05}});
//
// Control variates correct client drift. The server holds c, each client its own c_i (kept
// between rounds: this is a stateful strategy; a client that never took part holds zeros and
// costs no memory). With K local steps of learning rate η_l:
//   local step     y ← y − η_l (g(y) − c_i + c)           (the gradient hook adds c − c_i)
//   new variate    c_i⁺ = c_i − c + (x − y) / (K η_l)     (option II)
//   sent up        Δy_i = y − x,  Δc_i = c_i⁺ − c_i        (twice the model's bytes)
//   server         x ← x + (η_g / |S|) Σ Δy_i,   c ← c + (1/N) Σ Δc_i   (N: all clients)
// Down, the server sends x and c (twice the model). Local momentum breaks the (x − y)/(Kη_l)
// estimate of the mean gradient, so local training here is plain SGD.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/fed/client.hpp>
#include <edgescale/fed/concepts.hpp>
#include <edgescale/fed/detail/global_model.hpp>
#include <edgescale/fed/reduce.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/loss.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace edgescale::fed {

template <nn::Network Net,
          detail::LabelLoss<typename Net::scalar_type> Loss = nn::SoftmaxCrossEntropy>
class Scaffold : public detail::ModelStrategy<Net, Loss> {
  using Base = detail::ModelStrategy<Net, Loss>;
  using Base::global_;

 public:
  using typename Base::worker_type;
  using scalar_type = typename Net::scalar_type;
  using T = scalar_type;
  struct update_type {
    ParameterSet<T> delta_y;  ///< y − x
    ParameterSet<T> delta_c;  ///< c_i⁺ − c_i
  };
  /// c_i, empty until the client first takes part (zeros).
  struct client_state {
    ParameterSet<T> c;
  };
  struct options {
    LocalTraining local{};
    double server_learning_rate = 1.0;  ///< η_g
    std::vector<std::string> frozen{};
    Loss loss{};  ///< the clients' local loss
  };

  explicit Scaffold(const Net& initial, options o = {})
      : Base(initial, o.frozen), o_(std::move(o)), c_(global_.x().zeros_like()) {
    detail::validate(o_.local, "Scaffold");
    if (o_.local.momentum != 0 || o_.local.weight_decay != 0) {
      throw argument_error(
          "Scaffold: local training must be plain SGD (momentum 0, weight decay "
          "0): option II estimates the mean gradient from (x - y) / (K lr)");
    }
    if (!(o_.server_learning_rate > 0)) {
      throw argument_error("Scaffold: server_learning_rate must be > 0");
    }
  }

  update_type client_update(worker_type& w, const ClientData<T>& client, client_state& state,
                            Rng& rng) const {
    const ParameterSet<T>& x = global_.x();
    if (state.c.size() == 0) {
      state.c = x.zeros_like();
    }
    ParameterSet<T> correction = c_;  // c − c_i
    correction.values() -= state.c.values();
    x.write(w.net);
    auto corrected = [&](Net& net) {
      correction.zip(net, [](auto& p, const auto& v) { p.grad.noalias() += v; });
    };
    const Index steps = detail::train_locally<Net, Loss>(w.net, client, o_.local, o_.loss, rng,
                                                         corrected, global_.freeze_hook());
    update_type u{global_.delta(w.net), x.zeros_like()};
    if (steps > 0) {
      // Δc_i = c_i⁺ − c_i = −c + (x − y) / (K η_l)
      const T inv = static_cast<T>(1.0 / (static_cast<double>(steps) * o_.local.learning_rate));
      u.delta_c.values() = -c_.values() - inv * u.delta_y.values();
      global_.zero_frozen(u.delta_c.values());
      state.c.values() += u.delta_c.values();
    }
    return u;
  }

  [[nodiscard]] std::string check(const update_type& u) const {
    std::string reason = global_.check(u.delta_y, "the model delta");
    if (reason.empty()) {
      reason = global_.check(u.delta_c, "the control-variate delta");
    }
    return reason;
  }

  /// x += η_g · mean Δy over the received clients, c += Σ Δc / N (option II), from their
  /// reduction in fed/reduce.hpp's fixed order (the same bits on any number of ranks).
  void server_update(std::span<const Received<update_type>> received, const RoundInfo& info) {
    apply(reduce_received(*this, received, info.clients), info);
  }

  /// Values of the round's sum (fed::Reducible): Σ Δy, Σ Δc, the count of clients.
  [[nodiscard]] Index reduction_size() const { return 2 * c_.size() + 1; }
  void accumulate(std::span<double> sum, const update_type& u, Index /*samples*/) const {
    require_reduction_size(sum.size(), reduction_size(), "Scaffold");
    const Index n = c_.size();
    if (u.delta_y.size() != n || u.delta_c.size() != n) {
      throw shape_error("Scaffold: an update of " + std::to_string(u.delta_y.size()) + " and " +
                        std::to_string(u.delta_c.size()) + " values, the model " +
                        std::to_string(n));
    }
    Eigen::Map<Vector<double>>(sum.data(), n) += u.delta_y.values().template cast<double>();
    Eigen::Map<Vector<double>>(sum.data() + n, n) += u.delta_c.values().template cast<double>();
    sum[static_cast<std::size_t>(2 * n)] += 1;
  }
  void apply(std::span<const double> sum, const RoundInfo& info) {
    require_reduction_size(sum.size(), reduction_size(), "Scaffold");
    const Index n = c_.size();
    const double count = sum[static_cast<std::size_t>(2 * n)];
    if (!(count > 0)) {
      return;
    }
    global_.x().values() +=
        (o_.server_learning_rate / count * Eigen::Map<const Vector<double>>(sum.data(), n))
            .template cast<T>();
    c_.values() +=
        (Eigen::Map<const Vector<double>>(sum.data() + n, n) / static_cast<double>(info.clients))
            .template cast<T>();
  }

  [[nodiscard]] std::size_t bytes_up(const update_type& /*u*/) const {
    return 2 * global_.trained_bytes();
  }
  [[nodiscard]] std::size_t bytes_down() const { return 2 * global_.trained_bytes(); }

  /// The server's control variate c.
  [[nodiscard]] const ParameterSet<T>& control() const { return c_; }

 private:
  options o_;
  ParameterSet<T> c_;
};

}  // namespace edgescale::fed
