// edgescale/fed/detail/global_model.hpp — what the gradient-based strategies share: the global
// model as one ParameterSet, frozen tensors, update screening, local SGD and evaluation.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/fed/aggregate.hpp>
#include <edgescale/fed/client.hpp>
#include <edgescale/fed/reduce.hpp>
#include <edgescale/nn/optim/sgd.hpp>
#include <edgescale/nn/train.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgescale::fed {

/// A client's local training: E epochs of mini-batch SGD over its own samples, shuffled from the
/// client's stream (FedAvg's E, B and η_l; McMahan et al. 2017).
struct LocalTraining {
  int epochs = 1;
  Index batch_size = 32;
  double learning_rate = 0.01;
  double momentum = 0.0;
  double weight_decay = 0.0;
};

namespace detail {

inline void validate(const LocalTraining& o, const char* who) {
  if (o.epochs < 1 || o.batch_size < 1 || !(o.learning_rate > 0) || !(o.momentum >= 0) ||
      !(o.weight_decay >= 0)) {
    throw argument_error(std::string(who) +
                         ": local training needs epochs >= 1, batch_size >= 1, learning_rate > 0 "
                         "and momentum, weight_decay >= 0");
  }
}

/// E local epochs of SGD on `net`, from the weights it holds; each hook runs between backward
/// and the step (FedProx's proximal term, SCAFFOLD's correction). Returns the number of steps.
template <class Net, class Loss, class... Hooks>
Index train_locally(Net& net, const ClientData<typename Net::scalar_type>& client,
                    const LocalTraining& o, const Loss& loss, Rng& rng, Hooks&&... hooks) {
  using T = typename Net::scalar_type;
  if (client.size() == 0) {
    return 0;
  }
  const data::Dataset<T> local = client.materialize();
  data::BatchSampler<T> batches(local, std::min(o.batch_size, local.size()));
  nn::Trainer<Net, Loss> trainer(net, loss);
  nn::SGD opt(
      {.learning_rate = o.learning_rate, .momentum = o.momentum, .weight_decay = o.weight_decay});
  Index steps = 0;
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    batches.start_epoch(rng);
    while (batches.next()) {
      const auto& b = batches.batch();
      trainer.step(opt, b.features, b.targets, hooks...);
      ++steps;
    }
  }
  return steps;
}

/// The local loss a strategy trains with: a training loss over class labels (the clients' data
/// are labelled datasets).
template <class L, class T>
concept LabelLoss =
    nn::TrainingLoss<L, T> && std::same_as<typename L::template target_type<T>, nn::Labels>;

/// The global model x of a gradient-based strategy, with the tensors the federation keeps
/// frozen (qualified-name prefixes: "12." freezes layer 12, the head).
template <class Net, class Loss>
class GlobalModel {
 public:
  using T = typename Net::scalar_type;

  GlobalModel(const Net& initial, std::vector<std::string> frozen)
      : model_(initial), x_(initial), frozen_names_(std::move(frozen)) {
    for (const TensorSlot& s : x_.layout().tensors()) {
      const bool frozen_slot = std::any_of(
          frozen_names_.begin(), frozen_names_.end(),
          [&](const std::string& p) { return std::string_view(s.name).starts_with(p); });
      if (frozen_slot) {
        frozen_.emplace_back(s.offset, s.size);
        frozen_values_ += s.size;
      }
    }
    if (frozen_values_ == x_.size() && x_.size() > 0) {
      throw argument_error("federated model: every tensor is frozen, nothing would train");
    }
  }

  ParameterSet<T>& x() { return x_; }
  [[nodiscard]] const ParameterSet<T>& x() const { return x_; }
  /// The network with the current global values (written on each call).
  Net& network() {
    x_.write(model_);
    return model_;
  }
  /// A network of the model's type to copy into workers (its values are overwritten by x before
  /// each use).
  [[nodiscard]] const Net& prototype() const { return model_; }
  [[nodiscard]] bool has_frozen() const { return !frozen_.empty(); }
  /// Values that train and travel each round (all but the frozen tensors').
  [[nodiscard]] std::size_t trained_bytes() const {
    return static_cast<std::size_t>(x_.size() - frozen_values_) * sizeof(T);
  }
  /// Zeroes the frozen tensors' part of a set of the global layout (a delta, a gradient).
  void zero_frozen(Vector<T>& v) const {
    for (const auto& [offset, size] : frozen_) {
      v.segment(offset, size).setZero();
    }
  }
  /// A gradient hook that zeroes the frozen tensors' gradients before each local step.
  [[nodiscard]] auto freeze_hook() const {
    return [this](Net& net) {
      if (frozen_.empty()) {
        return;
      }
      for_each_tensor(net, [&](std::string_view name, auto& p) {
        for (const std::string& prefix : frozen_names_) {
          if (name.starts_with(prefix) && p.grad.size() != 0) {
            p.grad.setZero();
          }
        }
      });
    };
  }

  /// The client's delta y − x of a network trained from x, frozen tensors' part zero.
  [[nodiscard]] ParameterSet<T> delta(const Net& trained) const {
    ParameterSet<T> d(x_.shared_layout());
    d.read(trained);
    d.values() -= x_.values();
    zero_frozen(d.values());
    return d;
  }

  /// The aggregator's combination of the received deltas of clients that hold data, weighted by
  /// their sample counts n_k; nothing when none of them holds any (a client without samples
  /// sends a zero delta, which would only drag a robust aggregate towards zero).
  template <class Agg>
  [[nodiscard]] std::optional<ParameterSet<T>> combine(
      const Agg& aggregator, std::span<const Received<ParameterSet<T>>> received) const {
    std::vector<const ParameterSet<T>*> sets;
    std::vector<double> weights;
    for (const Received<ParameterSet<T>>& r : received) {
      if (r.samples > 0) {
        sets.push_back(r.update);
        weights.push_back(static_cast<double>(r.samples));
      }
    }
    if (sets.empty()) {
      return std::nullopt;
    }
    return aggregator.combine(std::span<const ParameterSet<T>* const>(sets),
                              std::span<const double>(weights));
  }

  /// Throws argument_error unless `values` has `expected` finite values (a server state to load).
  static void require_state(std::span<const double> values, Index expected, const char* who) {
    if (static_cast<Index>(values.size()) != expected) {
      throw argument_error(std::string(who) + ": a server state of " +
                           std::to_string(values.size()) + " values, expected " +
                           std::to_string(expected));
    }
    for (const double v : values) {
      if (!std::isfinite(v)) {
        throw argument_error(std::string(who) + ": the server state holds NaN or Inf");
      }
    }
  }

  /// Values of a weighted-delta reduction (fed/reduce.hpp): Σ n_k Δ_k, then Σ n_k.
  [[nodiscard]] Index weighted_reduction_size() const { return x_.size() + 1; }
  /// sum += n_k Δ_k and Σ n_k += n_k, in double.
  void accumulate_weighted(std::span<double> sum, const ParameterSet<T>& delta, Index samples,
                           const char* who) const {
    require_reduction_size(sum.size(), weighted_reduction_size(), who);
    if (delta.size() != x_.size()) {
      throw shape_error(std::string(who) + ": a delta of " + std::to_string(delta.size()) +
                        " values, the model " + std::to_string(x_.size()));
    }
    const auto n = static_cast<double>(samples);
    Eigen::Map<Vector<double>>(sum.data(), x_.size()) += n * delta.values().template cast<double>();
    sum[static_cast<std::size_t>(x_.size())] += n;
  }
  /// Σ n_k Δ_k / Σ n_k from a weighted-delta reduction; nothing when no client with data
  /// reported (Σ n_k = 0).
  [[nodiscard]] std::optional<Vector<T>> weighted_mean_of(std::span<const double> sum,
                                                          const char* who) const {
    require_reduction_size(sum.size(), weighted_reduction_size(), who);
    const double total = sum[static_cast<std::size_t>(x_.size())];
    if (!(total > 0)) {
      return std::nullopt;
    }
    return (Eigen::Map<const Vector<double>>(sum.data(), x_.size()) / total).template cast<T>();
  }

  /// Empty when `u` has the global layout and finite values, else the reason to reject it.
  [[nodiscard]] std::string check(const ParameterSet<T>& u, std::string_view what) const {
    if (u.size() != x_.size() || u.layout().size() != x_.size()) {
      return std::string(what) + " has " + std::to_string(u.size()) + " values, the model " +
             std::to_string(x_.size());
    }
    if (u.shared_layout() != x_.shared_layout()) {
      if (std::string d = x_.layout().difference(u.layout()); !d.empty()) {
        return std::string(what) + " has another layout: " + d;
      }
    }
    if (!u.all_finite()) {
      for (const TensorSlot& s : x_.layout().tensors()) {
        if (!u.values().segment(s.offset, s.size).allFinite()) {
          return std::string(what) + " has NaN or Inf in tensor '" + s.name + "'";
        }
      }
    }
    return {};
  }

  /// Accuracy of the global model on `test` (evaluation mode, batches of up to 1000).
  double evaluate(const data::Dataset<T>& test) {
    Net& net = network();
    nn::Trainer<Net, Loss> trainer(net);
    data::BatchSampler<T> batches(test, std::min<Index>(1000, test.size()));
    return trainer.evaluate(batches).accuracy;
  }

 private:
  Net model_;
  ParameterSet<T> x_;
  std::vector<std::string> frozen_names_;
  std::vector<std::pair<Index, Index>> frozen_;
  Index frozen_values_ = 0;
};

/// What every gradient-based strategy shows of its global model (FedAvg, FedOpt and SCAFFOLD
/// derive from it): the per-thread worker, evaluation, and x as values or as a network.
template <class Net, class Loss>
class ModelStrategy {
 public:
  using scalar_type = typename Net::scalar_type;
  struct worker_type {
    Net net;
  };

  [[nodiscard]] worker_type make_worker() const { return {global_.prototype()}; }
  double evaluate(const data::Dataset<scalar_type>& test) { return global_.evaluate(test); }
  /// The global model's values (x).
  [[nodiscard]] const ParameterSet<scalar_type>& global() const { return global_.x(); }
  ParameterSet<scalar_type>& global() { return global_.x(); }
  /// The global model as a network (its values written on each call).
  Net& network() { return global_.network(); }

 protected:
  ModelStrategy(const Net& initial, std::vector<std::string> frozen)
      : global_(initial, std::move(frozen)) {}

  GlobalModel<Net, Loss> global_;
};

/// The server side FedAvg and FedOpt share: with the weighted mean they are fed::Reducible (the
/// round's Σ n_k Δ_k and Σ n_k in fed/reduce.hpp's fixed order, the same bits on any number of
/// ranks); with another aggregator the server combines the updates of clients that hold data.
/// Either way the result goes to Derived::step(mean delta); Derived::aggregator() names the rule
/// and Derived::name the strategy in messages.
template <class Derived, class Net, class Agg, class Loss>
class AggregatingStrategy : public ModelStrategy<Net, Loss> {
  using Base = ModelStrategy<Net, Loss>;
  using T = typename Net::scalar_type;

 public:
  /// With the weighted mean the strategy is fed::Reducible (it runs over any transport).
  static constexpr bool weighted = std::same_as<Agg, WeightedMean>;

  void server_update(std::span<const Received<ParameterSet<T>>> received, const RoundInfo& info) {
    if constexpr (weighted) {
      apply(reduce_received(derived(), received, info.clients), info);
    } else {
      if (const std::optional<ParameterSet<T>> combined =
              this->global_.combine(derived().aggregator(), received)) {
        derived().step(combined->values());
      }
    }
  }

  /// Values of the round's sum (fed::Reducible, with the weighted mean only): Σ n_k Δ_k, Σ n_k.
  [[nodiscard]] Index reduction_size() const requires weighted {
    return this->global_.weighted_reduction_size();
  }
  void accumulate(std::span<double> sum, const ParameterSet<T>& u,
                  Index samples) const requires weighted {
    this->global_.accumulate_weighted(sum, u, samples, Derived::name);
  }
  /// The server step on the mean delta; none when no client with data reported.
  void apply(std::span<const double> sum, const RoundInfo& /*info*/) requires weighted {
    if (const std::optional<Vector<T>> mean = this->global_.weighted_mean_of(sum, Derived::name)) {
      derived().step(*mean);
    }
  }

 protected:
  using Base::Base;

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }
};

}  // namespace detail
}  // namespace edgescale::fed
