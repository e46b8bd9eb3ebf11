// Finite-difference gradient checks (central differences, double precision) for any Layer.
//
// Objective J(x, θ) = Σ r ⊙ f(x; θ) with a fixed random r, so backward(r) must return ∂J/∂x and
// accumulate ∂J/∂θ. Each entry is compared with (J(+h) − J(−h)) / 2h; the reported figure is the
// relative error ‖analytic − numeric‖ / max(‖analytic‖, ‖numeric‖) over the whole tensor.
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

namespace edgescale::test {

struct GradCheckResult {
  double input_error = 0;                // relative error of ∂J/∂x
  std::vector<std::string> names;        // tensor names
  std::vector<double> parameter_errors;  // relative error per tensor
  double worst() const {
    double w = input_error;
    for (double e : parameter_errors)
      w = std::max(w, e);
    return w;
  }
};

inline double relative_error(const Vector<double>& a, const Vector<double>& n) {
  const double scale = std::max({a.norm(), n.norm(), 1e-12});
  return (a - n).norm() / scale;
}

/// Checks layer `layer` at input x (features x batch). `max_entries` caps how many entries of
/// each tensor are perturbed (chosen evenly), to keep big layers quick.
template <class L>
GradCheckResult gradient_check(L& layer, const Matrix<double>& x, Rng& rng, double h = 1e-6,
                               Index max_entries = 400) {
  auto objective_weights = [&] {
    Matrix<double> r(L::output_shape::size, x.cols());
    for (Index i = 0; i < r.size(); ++i)
      r(i) = standard_normal(rng);
    return r;
  }();
  auto objective = [&](const Matrix<double>& input) {
    const ConstBatchView<double> xv(input.data(), input.rows(), input.cols());
    const ConstBatchView<double> y = layer.forward(xv);
    return (y.array() * objective_weights.array()).sum();
  };
  for_each_parameter(layer, [](std::string_view, Parameter<double>& p) { p.zero_grad(); });

  GradCheckResult result;
  objective(x);
  const ConstBatchView<double> rv(objective_weights.data(), objective_weights.rows(),
                                  objective_weights.cols());
  const Matrix<double> dx = layer.backward(rv);

  // input gradient
  {
    Matrix<double> xp = x;
    const Index stride = std::max<Index>(1, x.size() / max_entries);
    Vector<double> a, n;
    std::vector<double> as, ns;
    for (Index i = 0; i < x.size(); i += stride) {
      xp(i) = x(i) + h;
      const double jp = objective(xp);
      xp(i) = x(i) - h;
      const double jm = objective(xp);
      xp(i) = x(i);
      as.push_back(dx(i));
      ns.push_back((jp - jm) / (2 * h));
    }
    result.input_error = relative_error(Eigen::Map<Vector<double>>(as.data(), Index(as.size())),
                                        Eigen::Map<Vector<double>>(ns.data(), Index(ns.size())));
  }
  // parameter gradients
  for_each_parameter(layer, [&](std::string_view name, Parameter<double>& p) {
    const Vector<double> analytic = p.grad;
    const Index stride = std::max<Index>(1, p.size() / max_entries);
    std::vector<double> as, ns;
    for (Index i = 0; i < p.size(); i += stride) {
      const double v = p.value[i];
      p.value[i] = v + h;
      const double jp = objective(x);
      p.value[i] = v - h;
      const double jm = objective(x);
      p.value[i] = v;
      as.push_back(analytic[i]);
      ns.push_back((jp - jm) / (2 * h));
    }
    result.names.emplace_back(name);
    result.parameter_errors.push_back(
        relative_error(Eigen::Map<Vector<double>>(as.data(), Index(as.size())),
                       Eigen::Map<Vector<double>>(ns.data(), Index(ns.size()))));
  });
  return result;
}

/// A random batch with entries in [lo, hi) away from zero by at least `gap` (ReLU kinks).
inline Matrix<double> random_batch(Index rows, Index cols, Rng& rng, double gap = 0.0) {
  Matrix<double> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) {
    double v = standard_normal(rng);
    if (gap > 0 && std::abs(v) < gap)
      v = v < 0 ? v - gap : v + gap;
    x(i) = v;
  }
  return x;
}

}  // namespace edgescale::test
