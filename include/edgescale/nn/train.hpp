// edgescale/nn/train.hpp — training steps, evaluation and the epoch loop.
//
//   nn::Trainer trainer{net};                        // softmax cross-entropy by default
//   nn::SGD opt{{.learning_rate = 0.05, .momentum = 0.9, .nesterov = true}};
//   data::BatchSampler train_batches(train_set, 64), test_batches(test_set, 500);
//   Rng shuffle = make_stream(seed, "shuffle");
//   auto history = nn::fit(trainer, opt, train_batches, test_batches, {.epochs = 10},
//                          nn::CosineSchedule{0.05, 10}, shuffle, nn::ProgressDisplay{std::cerr});
//
// Batches come from a BatchSource (core/concepts.hpp): data::BatchSampler, or a user's own. The
// loss names what a step compares the output with (its target_type: class labels for
// cross-entropy, a batch of values for MSE), so a regression network trains the same way:
//   nn::Trainer<Net, nn::MeanSquaredError> regression{net};
//   regression.step(opt, x, y_true);                 // y_true: a ConstBatchView
// A gradient hook (a callable taking the network) runs between backward and the optimizer step:
//   trainer.step(opt, x, y, [&](Net& n) { proximal_term(n); });
// Callbacks of fit are described in nn/callbacks.hpp.
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/error.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/callbacks.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/loss.hpp>
#include <edgescale/nn/network.hpp>
#include <edgescale/nn/optim/schedule.hpp>
#include <edgescale/nn/overwrite.hpp>

#include <chrono>
#include <cmath>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace edgescale::nn {

/// One network, one loss, and the workspace a step needs: after the first step of the largest
/// batch size, steps allocate nothing.
template <Network Net, TrainingLoss<typename Net::scalar_type> LossFn = SoftmaxCrossEntropy>
class Trainer {
 public:
  using scalar_type = typename Net::scalar_type;
  using T = scalar_type;
  /// What a step compares the output with (LossFn::target_type<T>).
  using target_type = typename LossFn::template target_type<T>;
  /// Whether targets are class labels (accuracy is counted).
  static constexpr bool classification = std::is_same_v<target_type, Labels>;

  explicit Trainer(Net& net, LossFn loss = {}) : net_(net), loss_(loss) {}

  // clang-format off
  /// zero_grad, forward (training mode), loss, backward (without the input gradient; as one pass
  /// that writes the gradients when the network can, nn/overwrite.hpp), each hook
  /// in order (GradientHook: hook(net)), optimizer step. Returns the batch's mean loss; the output
  /// stays readable through output(). A non-finite loss throws before any update: the network
  /// is left as it was.
  template <Optimizer<Net> Opt, class... Hooks>
    requires(GradientHook<std::remove_cvref_t<Hooks>, Net> && ...)
  T step(Opt& opt, const ConstBatchView<T>& x, const target_type& y, Hooks&&... hooks) {
    net_.set_training(true);
    if constexpr (!OverwritesGradients<Net>) {
      net_.zero_grad();
    }
    const ConstBatchView<T> out = net_.forward(x);
    remember(out);
    BatchView<T> grad = grad_.resize(out.rows(), out.cols());
    const T loss = loss_.value_and_gradient(out, y, grad);
    if (!std::isfinite(loss)) {
      throw error("training diverged: the loss is " + std::to_string(loss) +
                  " (lower the learning rate)");
    }
    if constexpr (OverwritesGradients<Net>) {
      net_.backward_parameters(grad_.cview(), overwrite_gradients);  // no zero_grad pass
    } else {
      net_.backward_parameters(grad_.cview());
    }
    (hooks(net_), ...);
    opt.step(net_);
    return loss;
  }
  // clang-format on

  /// The network's output of the last step or evaluated batch (valid until the next forward).
  [[nodiscard]] ConstBatchView<T> output() const { return {out_data_, out_rows_, out_cols_}; }

  /// Loss (and accuracy, for class labels) over one pass of `source` in dataset order, in
  /// evaluation mode; the network's mode is restored afterwards.
  template <BatchSource<T> Source>
  Evaluation evaluate(Source& source) {
    const ModeScope evaluation(net_, false);
    Evaluation e;
    e.classification = classification;
    double loss_sum = 0;
    Index correct = 0;
    source.start_epoch();
    while (source.next()) {
      const auto& batch = source.batch();
      const ConstBatchView<T> x = batch.features;
      const ConstBatchView<T> out = net_.forward(x);
      remember(out);
      const target_type y = batch.targets;
      loss_sum += static_cast<double>(loss_.value(out, y)) * static_cast<double>(x.cols());
      if constexpr (classification) {
        correct += count_correct(out, y);
      }
      e.samples += x.cols();
    }
    if (e.samples > 0) {
      e.loss = loss_sum / static_cast<double>(e.samples);
      e.accuracy = static_cast<double>(correct) / static_cast<double>(e.samples);
    }
    return e;
  }

  Net& network() { return net_; }
  const LossFn& loss() const { return loss_; }

 private:
  void remember(const ConstBatchView<T>& out) {
    out_data_ = out.data();
    out_rows_ = out.rows();
    out_cols_ = out.cols();
  }

  Net& net_;
  LossFn loss_;
  Workspace<T> grad_;
  const T* out_data_ = nullptr;
  Index out_rows_ = 0;
  Index out_cols_ = 0;
};

/// What fit needs beyond its arguments.
struct FitOptions {
  int epochs = 10;
};

/// Stands for "no evaluation set" in fit.
struct NoEvaluation {};
inline constexpr NoEvaluation no_evaluation{};

namespace detail {
template <class Test, class T>
concept EvaluationSource =
    std::same_as<std::remove_cvref_t<Test>, NoEvaluation> || BatchSource<Test, T>;

}  // namespace detail

// clang-format off
/// Trains for `options.epochs` epochs over `train` (shuffled afresh each epoch from `shuffle`),
/// setting the learning rate from `schedule` at each epoch (before every step for a stepwise
/// schedule, nn/optim/schedule.hpp) and evaluating on `test` (a batch
/// source, or nn::no_evaluation) after each. Callbacks: nn/callbacks.hpp. Returns one report per
/// epoch (fewer if a callback stopped training).
template <class Net, class LossFn, class Opt, class Train, class Test,
          LearningRateSchedule Sched, class... Callbacks>
  requires Optimizer<Opt, Net> && BatchSource<Train, typename Net::scalar_type> &&
           detail::EvaluationSource<Test, typename Net::scalar_type> &&
           (FitCallback<std::remove_cvref_t<Callbacks>, Net> && ...)
std::vector<EpochReport> fit(Trainer<Net, LossFn>& trainer, Opt& opt, Train& train, Test& test,
                             const FitOptions& options, const Sched& schedule, Rng& shuffle,
                             Callbacks&&... callbacks) {
  using T = typename Net::scalar_type;
  using target_type = typename Trainer<Net, LossFn>::target_type;
  constexpr bool classification = Trainer<Net, LossFn>::classification;
  if (options.epochs < 0) {
    throw argument_error("fit: the number of epochs must be >= 0, got " +
                         std::to_string(options.epochs));
  }
  // Each callback's on_gradients, as one gradient hook of the step.
  auto gradient_hooks = [&](Net& net) {
    (
        [&](auto& cb) {
          if constexpr (GradientCallback<std::remove_cvref_t<decltype(cb)>, Net>) {
            cb.on_gradients(net);
          }
        }(callbacks),
        ...);
  };
  [[maybe_unused]] const Index total = train.samples_per_epoch();
  std::vector<EpochReport> history;

  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    opt.set_learning_rate(schedule(epoch));
    (
        [&](auto& cb) {
          if constexpr (EpochBeginCallback<std::remove_cvref_t<decltype(cb)>>) {
            cb.on_epoch_begin(epoch, options.epochs);
          }
        }(callbacks),
        ...);
    double loss_sum = 0;
    Index correct = 0;
    Index seen = 0;
    Index batches = 0;
    train.start_epoch(shuffle);
    while (train.next()) {
      const auto& batch = train.batch();
      const ConstBatchView<T> x = batch.features;
      const target_type y = batch.targets;
      if constexpr (StepwiseSchedule<Sched>) {
        if (schedule.stepwise() && total > 0) {
          opt.set_learning_rate(schedule.at(epoch + static_cast<double>(seen) /
                                                        static_cast<double>(total)));
        }
      }
      const T loss = trainer.step(opt, x, y, gradient_hooks);
      if constexpr (classification) {
        correct += count_correct(trainer.output(), y);
      }
      loss_sum += static_cast<double>(loss);
      seen += x.cols();
      ++batches;
      (
          [&](auto& cb) {
            if constexpr (StepEndCallback<std::remove_cvref_t<decltype(cb)>, Net>) {
              cb.on_step_end(trainer.network());
            }
          }(callbacks),
          ...);
      (
          [&](auto& cb) {
            if constexpr (BatchEndCallback<std::remove_cvref_t<decltype(cb)>>) {
              cb.on_batch_end(seen, total, loss_sum / static_cast<double>(batches));
            }
          }(callbacks),
          ...);
    }
    EpochReport report;
    report.epoch = epoch;
    report.epochs = options.epochs;
    report.learning_rate = opt.learning_rate();
    report.classification = classification;
    report.train_loss = batches > 0 ? loss_sum / static_cast<double>(batches) : 0;
    report.train_accuracy = seen > 0 ? static_cast<double>(correct) / static_cast<double>(seen) : 0;
    if constexpr (!std::is_same_v<std::remove_cvref_t<Test>, NoEvaluation>) {
      report.test = trainer.evaluate(test);
    }
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    history.push_back(report);
    bool keep_going = true;
    (
        [&](auto& cb) {
          using C = std::remove_cvref_t<decltype(cb)>;
          if constexpr (StoppingCallback<C>) {
            keep_going = cb.on_epoch_end(report) && keep_going;
          } else if constexpr (EpochEndCallback<C>) {
            cb.on_epoch_end(report);
          }
        }(callbacks),
        ...);
    if (!keep_going) {
      break;
    }
  }
  return history;
}

}  // namespace edgescale::nn
// clang-format on
