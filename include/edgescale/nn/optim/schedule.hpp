// edgescale/nn/optim/schedule.hpp — learning-rate schedules, evaluated per epoch or per step.
//
//   nn::CosineSchedule cosine{.base = 0.1, .epochs = 10};
//   opt.set_learning_rate(cosine(epoch));
//   nn::CosineSchedule per_step{.base = 0.1, .epochs = 10, .per_step = true};
//   opt.set_learning_rate(per_step.at(epoch + done / total));   // what nn::fit does each step
//
// A schedule is a callable epoch -> learning rate (a `LearningRateSchedule`). One that may also
// be read at a fractional epoch, `at(double)`, and says `stepwise()`, is set by nn::fit before
// every optimizer step at the epoch's progress epoch + samples done / samples per epoch (a
// `StepwiseSchedule`): the per-step decay of PyTorch's CosineAnnealingLR stepped every batch with
// T_max = epochs × batches.
#pragma once

#include <cmath>
#include <concepts>
#include <numbers>

namespace edgescale::nn {

/// What a training loop asks of a schedule: the learning rate for an epoch (from 0).
template <class S>
concept LearningRateSchedule = requires(const S& s, int epoch) {
  { s(epoch) } -> std::convertible_to<double>;
};

/// A schedule nn::fit sets before every step, from the fractional epoch (see the header).
template <class S>
concept StepwiseSchedule = LearningRateSchedule<S> && requires(const S& s, double progress) {
  { s.at(progress) } -> std::convertible_to<double>;
  { s.stepwise() } -> std::convertible_to<bool>;
};

/// The same rate throughout.
struct ConstantSchedule {
  double base = 0.01;
  double operator()(int /*epoch*/) const { return base; }
};

/// base · gamma^⌊epoch / step⌋ (PyTorch StepLR).
struct StepSchedule {
  double base = 0.1;
  int step = 10;
  double gamma = 0.1;
  double operator()(int epoch) const { return base * std::pow(gamma, epoch / step); }
};

/// minimum + (base − minimum)(1 + cos(π · t / epochs)) / 2 (PyTorch CosineAnnealingLR,
/// closed form, without restarts): t the epoch, or with `per_step` the fractional epoch at every
/// optimizer step (decay per step, the pruning-at-initialization recipe).
struct CosineSchedule {
  double base = 0.1;
  int epochs = 10;
  double minimum = 0.0;
  bool per_step = false;
  double operator()(int epoch) const { return at(epoch); }
  [[nodiscard]] double at(double progress) const {
    return minimum +
           (base - minimum) * (1.0 + std::cos(std::numbers::pi * progress / epochs)) / 2.0;
  }
  [[nodiscard]] bool stepwise() const { return per_step; }
};

}  // namespace edgescale::nn
