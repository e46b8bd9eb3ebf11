// edgescale/nn/optim/schedule.hpp — learning-rate schedules, evaluated per epoch.
//
//   nn::CosineSchedule cosine{.base = 0.1, .epochs = 10};
//   opt.set_learning_rate(cosine(epoch));
//
// A schedule is a callable epoch -> learning rate (a `LearningRateSchedule`).
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

/// minimum + (base − minimum)(1 + cos(π · epoch / epochs)) / 2 (PyTorch CosineAnnealingLR,
/// closed form, without restarts).
struct CosineSchedule {
  double base = 0.1;
  int epochs = 10;
  double minimum = 0.0;
  double operator()(int epoch) const {
    return minimum + (base - minimum) * (1.0 + std::cos(std::numbers::pi * epoch / epochs)) / 2.0;
  }
};

}  // namespace edgescale::nn
