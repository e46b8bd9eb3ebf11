// edgescale/nn/callbacks.hpp — what nn::fit reports to, and the hooks a callback may offer.
//
//   nn::fit(trainer, opt, train, test, {.epochs = 10}, schedule, rng,
//           nn::ProgressDisplay{std::cerr}, my_logger, my_clipper);
//
// A callback is any object with at least one of these members, each detected at compile time
// (ensmallen's callback style), so a callback pays only for the hooks it has:
//   on_epoch_begin(int epoch, int epochs)
//   on_batch_end(Index done, Index total, double running_loss)
//   on_epoch_end(const EpochReport&)           returning void, or bool: false stops training
//   on_gradients(Net&)                         between backward and the optimizer step, when every
//                                              Parameter::grad holds the batch's gradient (a
//                                              GradientHook: FedProx, SCAFFOLD, clipping)
//   on_step_end(Net&)                          after the optimizer step of every training batch,
//                                              before on_batch_end: what changes the weights
//                                              between steps (gradual magnitude pruning)
// An object with none of them is a mistake (a misspelt hook) and fails to compile.
#pragma once

#include <edgescale/core/progress.hpp>
#include <edgescale/core/tensor.hpp>

#include <concepts>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>

namespace edgescale::nn {

/// Loss and accuracy over a data set (accuracy only when the targets are class labels).
struct Evaluation {
  double loss = 0;
  double accuracy = 0;  ///< fraction right; 0 unless `classification`
  Index samples = 0;
  bool classification = false;  ///< the targets were class labels, so accuracy is meaningful
};

/// What fit reports after each epoch.
struct EpochReport {
  int epoch = 0;  ///< from 0
  int epochs = 0;
  double learning_rate = 0;
  double train_loss = 0;      ///< mean over the epoch's batches
  double train_accuracy = 0;  ///< 0 unless `classification`
  Evaluation test;            ///< samples == 0 when there is no test set
  bool classification = false;
  double seconds = 0;
};

// clang-format 14 cannot lay out concepts (see nn/concepts.hpp): laid out by hand.
// clang-format off
template <class C>
concept EpochBeginCallback = requires(C& c, int epoch) { c.on_epoch_begin(epoch, epoch); };

template <class C>
concept BatchEndCallback = requires(C& c, Index n, double loss) { c.on_batch_end(n, n, loss); };

template <class C>
concept EpochEndCallback = requires(C& c, const EpochReport& r) { c.on_epoch_end(r); };

/// An epoch-end hook that can stop training by returning false.
template <class C>
concept StoppingCallback = requires(C& c, const EpochReport& r) {
  { c.on_epoch_end(r) } -> std::same_as<bool>;
};

template <class C, class Net>
concept GradientCallback = requires(C& c, Net& net) { c.on_gradients(net); };

template <class C, class Net>
concept StepEndCallback = requires(C& c, Net& net) { c.on_step_end(net); };

/// Offers at least one hook that fit calls.
template <class C, class Net>
concept FitCallback = EpochBeginCallback<C> || BatchEndCallback<C> || EpochEndCallback<C> ||
                      GradientCallback<C, Net> || StepEndCallback<C, Net>;
// clang-format on

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
    if (r.classification) {
      s << "  train acc " << 100 * r.train_accuracy << "%";
    }
    if (r.test.samples > 0) {
      s.precision(4);
      s << "  test loss " << r.test.loss;
      s.precision(2);
      if (r.test.classification) {
        s << "  test acc " << 100 * r.test.accuracy << "%";
      }
    }
    bar_->finish(s.str());
  }

 private:
  std::ostream* os_;
  std::optional<ProgressBar> bar_;
};

}  // namespace edgescale::nn
