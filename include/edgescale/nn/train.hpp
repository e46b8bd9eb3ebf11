// edgescale/nn/train.hpp — training steps, evaluation and the epoch loop.
//
//   nn::Trainer trainer{net};                        // softmax cross-entropy by default
//   nn::SGD opt{{.learning_rate = 0.05, .momentum = 0.9, .nesterov = true}};
//   Rng shuffle = make_stream(seed, "shuffle");
//   auto history = nn::fit(trainer, opt, train_set, test_set,
//                          {.epochs = 10, .batch_size = 64}, nn::CosineSchedule{0.05, 10},
//                          shuffle, nn::ProgressDisplay{std::cerr});
//
// A data set is anything with `features` (a features x N matrix, one sample per column) and
// `labels` (N class indices): data::Dataset is one. Callbacks are optional hooks, detected at
// compile time: on_epoch_begin(epoch, epochs), on_batch_end(done, total, running_loss) and
// on_epoch_end(const EpochReport&) — the last may return false to stop early.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/progress.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/nn/concepts.hpp>
#include <edgescale/nn/loss.hpp>
#include <edgescale/nn/optim/schedule.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <optional>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

namespace edgescale::nn {

/// What a data set must offer the training loop.
template <class D, class T>
concept LabeledSamples = requires(const D& d) {
  { d.features.rows() } -> std::convertible_to<Index>;
  { d.features.cols() } -> std::convertible_to<Index>;
  { d.features.data() } -> std::convertible_to<const T*>;
  { d.labels.data() } -> std::convertible_to<const std::int32_t*>;
  { d.labels.size() } -> std::convertible_to<std::size_t>;
};

struct Evaluation {
  double loss = 0;
  double accuracy = 0;
  Index samples = 0;
};

struct EpochReport {
  int epoch = 0;  ///< from 0
  int epochs = 0;
  double learning_rate = 0;
  double train_loss = 0;  ///< mean over the epoch's batches
  double train_accuracy = 0;
  Evaluation test;  ///< samples == 0 when there is no test set
  double seconds = 0;
};

struct FitOptions {
  int epochs = 10;
  Index batch_size = 64;
  bool drop_last = false;
};

/// One network, one loss, and the workspaces a step needs: after the first step of the largest
/// batch size, steps allocate nothing.
template <Network Net, class LossFn = SoftmaxCrossEntropy>
class Trainer {
 public:
  using scalar_type = typename Net::scalar_type;
  using T = scalar_type;

  explicit Trainer(Net& net, LossFn loss = {}) : net_(net), loss_(loss) {}

  /// zero_grad, forward, loss, backward (without the input gradient), optimizer step.
  /// Returns the batch's mean loss; `correct` (if given) receives the number of right answers.
  template <class Opt>
  T step(Opt& opt, const ConstBatchView<T>& x, Labels y, Index* correct = nullptr) {
    net_.set_training(true);
    net_.zero_grad();
    const ConstBatchView<T> out = net_.forward(x);
    BatchView<T> grad = grad_.resize(out.rows(), out.cols());
    const T loss = loss_.value_and_gradient(out, y, grad);
    if (!std::isfinite(loss)) {
      throw error("training diverged: the loss is " + std::to_string(loss) +
                  " (lower the learning rate)");
    }
    if (correct != nullptr) {
      *correct = count_correct(out, y);
    }
    net_.backward_parameters(grad_.cview());
    opt.step(net_);
    return loss;
  }

  /// Loss and accuracy over a whole set in evaluation mode, `batch` samples at a time.
  template <LabeledSamples<T> D>
  Evaluation evaluate(const D& set, Index batch = 500) {
    check_set(set, "evaluation set");
    net_.set_training(false);
    Evaluation e;
    const Index n = set.features.cols();
    const Index d = set.features.rows();
    double loss_sum = 0;
    Index correct = 0;
    for (Index begin = 0; begin < n; begin += batch) {
      const Index b = std::min(batch, n - begin);
      const ConstBatchView<T> x(set.features.data() + begin * d, d, b);
      const Labels y(set.labels.data() + begin, static_cast<std::size_t>(b));
      const ConstBatchView<T> out = net_.forward(x);
      loss_sum += static_cast<double>(loss_.value(out, y)) * static_cast<double>(b);
      correct += count_correct(out, y);
    }
    net_.set_training(true);
    e.samples = n;
    e.loss = n > 0 ? loss_sum / static_cast<double>(n) : 0;
    e.accuracy = n > 0 ? static_cast<double>(correct) / static_cast<double>(n) : 0;
    return e;
  }

  /// Checks a data set against the network before any work: sample size and label count.
  template <LabeledSamples<T> D>
  static void check_set(const D& set, const char* what) {
    if (set.features.rows() != Net::input_shape::size) {
      throw shape_error(std::string(what) + ": samples have " +
                        std::to_string(set.features.rows()) + " values, the network expects " +
                        std::to_string(Net::input_shape::size));
    }
    if (static_cast<Index>(set.labels.size()) != set.features.cols()) {
      throw shape_error(std::string(what) + ": " + std::to_string(set.labels.size()) +
                        " labels for " + std::to_string(set.features.cols()) + " samples");
    }
  }

  Net& network() { return net_; }
  const LossFn& loss() const { return loss_; }

 private:
  Net& net_;
  LossFn loss_;
  Workspace<T> grad_;
};

/// Prints one progress line per epoch (redrawn in place on a terminal).
class ProgressDisplay {
 public:
  explicit ProgressDisplay(std::ostream& os) : os_(&os) {}
  void on_epoch_begin(int epoch, int epochs) {
    bar_.emplace(*os_, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs));
  }
  void on_batch_end(Index done, Index total, double running_loss) {
    std::ostringstream s;
    s.precision(4);
    s << "loss " << running_loss;
    bar_->update(static_cast<long>(done), static_cast<long>(total), s.str());
  }
  void on_epoch_end(const EpochReport& r) {
    std::ostringstream s;
    s.setf(std::ios::fixed);
    s.precision(4);
    s << "lr " << r.learning_rate << "  train loss " << r.train_loss;
    s.precision(2);
    s << "  train acc " << 100 * r.train_accuracy << "%";
    if (r.test.samples > 0) {
      s << "  test acc " << 100 * r.test.accuracy << "%";
    }
    bar_->finish(s.str());
  }

 private:
  std::ostream* os_;
  std::optional<ProgressBar> bar_;
};

/// Trains for `options.epochs` epochs of shuffled mini-batches (order drawn from `shuffle`),
/// setting the learning rate from `schedule` at each epoch and evaluating on `test` (may be
/// empty) after each. Returns one report per epoch.
template <class Net, class LossFn, class Opt, class Train, class Test, LearningRateSchedule Sched,
          class... Callbacks>
std::vector<EpochReport> fit(Trainer<Net, LossFn>& trainer, Opt& opt, const Train& train,
                             const Test& test, const FitOptions& options, const Sched& schedule,
                             Rng& shuffle, Callbacks&&... callbacks) {
  using T = typename Net::scalar_type;
  static_assert(LabeledSamples<Train, T> && LabeledSamples<Test, T>,
                "fit: data sets need `features` (D x N) and `labels` (N int32) of the net's type");
  Trainer<Net, LossFn>::check_set(train, "training set");
  if (test.features.cols() > 0) {
    Trainer<Net, LossFn>::check_set(test, "test set");
  }
  const Index n = train.features.cols();
  const Index d = train.features.rows();
  if (options.batch_size <= 0 || n == 0) {
    throw argument_error("fit: need a positive batch size and a non-empty training set");
  }
  std::vector<Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Index{0});
  Workspace<T> batch_x(d, options.batch_size);
  std::vector<std::int32_t> batch_y(static_cast<std::size_t>(options.batch_size));
  std::vector<EpochReport> history;

  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    opt.set_learning_rate(schedule(epoch));
    (
        [&](auto& cb) {
          if constexpr (requires { cb.on_epoch_begin(epoch, options.epochs); }) {
            cb.on_epoch_begin(epoch, options.epochs);
          }
        }(callbacks),
        ...);
    edgescale::shuffle(order, shuffle);
    double loss_sum = 0;
    Index correct = 0;
    Index seen = 0;
    Index batches = 0;
    for (Index begin = 0; begin < n; begin += options.batch_size) {
      const Index b = std::min(options.batch_size, n - begin);
      if (b < options.batch_size && options.drop_last) {
        break;
      }
      BatchView<T> x = batch_x.resize(d, b);
      for (Index j = 0; j < b; ++j) {
        const Index src = order[static_cast<std::size_t>(begin + j)];
        x.col(j) = ConstBatchView<T>(train.features.data() + src * d, d, 1);
        batch_y[static_cast<std::size_t>(j)] = train.labels[static_cast<std::size_t>(src)];
      }
      Index batch_correct = 0;
      const T loss =
          trainer.step(opt, batch_x.cview(), Labels(batch_y.data(), static_cast<std::size_t>(b)),
                       &batch_correct);
      loss_sum += static_cast<double>(loss);
      correct += batch_correct;
      seen += b;
      ++batches;
      (
          [&](auto& cb) {
            if constexpr (requires { cb.on_batch_end(seen, n, 0.0); }) {
              cb.on_batch_end(seen, n, loss_sum / static_cast<double>(batches));
            }
          }(callbacks),
          ...);
    }
    EpochReport report;
    report.epoch = epoch;
    report.epochs = options.epochs;
    report.learning_rate = opt.learning_rate();
    report.train_loss = batches > 0 ? loss_sum / static_cast<double>(batches) : 0;
    report.train_accuracy = seen > 0 ? static_cast<double>(correct) / static_cast<double>(seen) : 0;
    if (test.features.cols() > 0) {
      report.test = trainer.evaluate(test);
    }
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    history.push_back(report);
    bool keep_going = true;
    (
        [&](auto& cb) {
          if constexpr (requires {
                          { cb.on_epoch_end(report) } -> std::same_as<bool>;
                        }) {
            keep_going = cb.on_epoch_end(report) && keep_going;
          } else if constexpr (requires { cb.on_epoch_end(report); }) {
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
