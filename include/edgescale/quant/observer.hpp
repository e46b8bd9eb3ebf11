// edgescale/quant/observer.hpp — calibration: statistics of a tensor over batches, then the range a
// quantizer is built from.
//
//   quant::MinMax obs;                                   // per tensor (channels = 1)
//   for (batch : calibration) obs.observe(activations);  // values, any shape
//   auto q = obs.quantizer<quant::Affine<8>>();          // Affine<8>::from_range(obs.range())
//
//   quant::MinMax w(300);                                // per channel: row c of the matrix
//   w.observe(dense.weight);                             //   observed is channel c
//
// Observers (shared/DESIGN.md §3c; PyTorch's conventions where it has one):
//   MinMax                 the running minimum and maximum;
//   MovingAverageMinMax    min ← min + c·(batch min − min), the same for max, c = 0.01; the first
//                          batch sets them;
//   Percentile             the p-th and (100 − p)-th percentiles of the values seen (p = 99.99),
//                          from up to `capacity` values per channel kept by reservoir sampling
//                          from a fixed stream;
//   MseClipping            a 2048-bin histogram over the running range; the clipping range
//                          [t·lo, t·hi], t on a grid of 100 steps in (0, 1], that minimises the
//                          expected squared error of quantizing the histogram with `Bits` bits.
// observe throws argument_error for NaN or infinite values (naming how many) and for a matrix
// whose rows are not the observer's channels; range throws when nothing was observed.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace edgescale::quant {

/// Per-channel [lo, hi].
struct Ranges {
  std::vector<float> lo;
  std::vector<float> hi;
};

namespace detail {

/// What every observer shares: its channel count, the checks of a batch, and the quantizer of
/// its range (Self::range()).
template <class Self>
class ObserverBase {
 public:
  explicit ObserverBase(Index channels, const char* who) : channels_(channels), who_(who) {
    if (channels < 1) {
      throw argument_error(std::string(who) + ": need at least one channel, got " +
                           std::to_string(channels));
    }
  }
  [[nodiscard]] Index channels() const { return channels_; }
  [[nodiscard]] Index batches() const { return batches_; }

  /// The quantizer of this observer's range (Q::from_range).
  template <class Q>
  [[nodiscard]] Q quantizer() const {
    const Ranges r = static_cast<const Self&>(*this).range();
    return Q::from_range(std::span<const float>(r.lo), std::span<const float>(r.hi));
  }

 protected:
  // Checks `x` (channels() rows, or any shape per tensor) and counts the batch.
  template <class Derived>
  void check(const Eigen::DenseBase<Derived>& x) {
    if (channels_ > 1 && x.rows() != channels_) {
      throw argument_error(std::string(who_) + ": a batch of " + std::to_string(x.rows()) +
                           " rows for " + std::to_string(channels_) +
                           " channels (row c is channel c)");
    }
    if (x.size() == 0) {
      throw argument_error(std::string(who_) + ": an empty batch");
    }
    if (!x.allFinite()) {
      Index bad = 0;
      for (Index j = 0; j < x.cols(); ++j) {
        for (Index i = 0; i < x.rows(); ++i) {
          bad += std::isfinite(static_cast<double>(x(i, j))) ? 0 : 1;
        }
      }
      throw argument_error(std::string(who_) + ": " + std::to_string(bad) +
                           " NaN or infinite values in a calibration batch");
    }
    ++batches_;
  }
  void require_observed() const {
    if (batches_ == 0) {
      throw argument_error(std::string(who_) + ": nothing observed yet");
    }
  }
  // Row of channel c, or every value per tensor.
  template <class Derived, class F>
  void for_each_channel(const Eigen::DenseBase<Derived>& x, F&& f) const {
    if (channels_ == 1) {
      f(Index{0}, x.derived().reshaped());
    } else {
      for (Index c = 0; c < channels_; ++c) {
        f(c, x.row(c).transpose());
      }
    }
  }

  Index channels_;
  const char* who_;
  Index batches_ = 0;
};

/// An observer that keeps one running [lo, hi] per channel (min-max and its moving average).
template <class Self>
class RangeObserver : public ObserverBase<Self> {
 public:
  [[nodiscard]] Ranges range() const {
    this->require_observed();
    return {lo_, hi_};
  }

 protected:
  RangeObserver(Index channels, const char* who, float lo, float hi)
      : ObserverBase<Self>(channels, who),
        lo_(static_cast<std::size_t>(channels), lo),
        hi_(static_cast<std::size_t>(channels), hi) {}

  std::vector<float> lo_;
  std::vector<float> hi_;
};

}  // namespace detail

/// The running minimum and maximum per channel.
class MinMax : public detail::RangeObserver<MinMax> {
 public:
  explicit MinMax(Index channels = 1)
      : RangeObserver(channels, "quant::MinMax", std::numeric_limits<float>::infinity(),
                      -std::numeric_limits<float>::infinity()) {}

  template <class Derived>
  void observe(const Eigen::DenseBase<Derived>& x) {
    check(x);
    for_each_channel(x, [&](Index c, const auto& v) {
      const auto i = static_cast<std::size_t>(c);
      lo_[i] = std::min(lo_[i], static_cast<float>(v.minCoeff()));
      hi_[i] = std::max(hi_[i], static_cast<float>(v.maxCoeff()));
    });
  }
};

/// Exponential moving averages of each batch's minimum and maximum (c = 0.01, PyTorch's).
class MovingAverageMinMax : public detail::RangeObserver<MovingAverageMinMax> {
 public:
  explicit MovingAverageMinMax(Index channels = 1, double averaging_constant = 0.01)
      : RangeObserver(channels, "quant::MovingAverageMinMax", 0.0F, 0.0F), c_(averaging_constant) {
    if (!(averaging_constant > 0 && averaging_constant <= 1)) {
      throw argument_error("quant::MovingAverageMinMax: the averaging constant must be in (0, 1]");
    }
  }

  template <class Derived>
  void observe(const Eigen::DenseBase<Derived>& x) {
    const bool first = batches() == 0;
    check(x);
    for_each_channel(x, [&](Index c, const auto& v) {
      const auto i = static_cast<std::size_t>(c);
      const auto mn = static_cast<float>(v.minCoeff());
      const auto mx = static_cast<float>(v.maxCoeff());
      lo_[i] = first ? mn : lo_[i] + static_cast<float>(c_) * (mn - lo_[i]);
      hi_[i] = first ? mx : hi_[i] + static_cast<float>(c_) * (mx - hi_[i]);
    });
  }

 private:
  double c_;
};

/// The (100 − p)-th and p-th percentiles of the values seen, per channel.
class Percentile : public detail::ObserverBase<Percentile> {
 public:
  explicit Percentile(Index channels = 1, double percentile = 99.99,
                      std::size_t capacity = std::size_t{1} << 20)
      : ObserverBase(channels, "quant::Percentile"),
        p_(percentile),
        capacity_(capacity),
        kept_(static_cast<std::size_t>(channels)),
        seen_(static_cast<std::size_t>(channels), 0),
        rng_(make_stream(0, "percentile observer")) {
    if (!(percentile > 50 && percentile <= 100) || capacity < 1) {
      throw argument_error(
          "quant::Percentile: the percentile must be in (50, 100] and the capacity >= 1");
    }
  }

  template <class Derived>
  void observe(const Eigen::DenseBase<Derived>& x) {
    check(x);
    for_each_channel(x, [&](Index c, const auto& v) {
      auto& kept = kept_[static_cast<std::size_t>(c)];
      auto& seen = seen_[static_cast<std::size_t>(c)];
      for (Index i = 0; i < v.size(); ++i) {
        const auto value = static_cast<float>(v(i));
        ++seen;
        if (kept.size() < capacity_) {
          kept.push_back(value);
        } else {  // reservoir sampling (Vitter's algorithm R)
          const std::uint64_t j = uniform_index(rng_, seen);
          if (j < capacity_) {
            kept[static_cast<std::size_t>(j)] = value;
          }
        }
      }
    });
  }
  [[nodiscard]] Ranges range() const {
    require_observed();
    Ranges r;
    for (const auto& values : kept_) {
      std::vector<float> v = values;
      r.lo.push_back(at_rank(v, (100.0 - p_) / 100.0));
      r.hi.push_back(at_rank(v, p_ / 100.0));
    }
    return r;
  }

 private:
  // The value at fraction q of the sorted values (nearest rank).
  static float at_rank(std::vector<float>& v, double q) {
    const auto k = static_cast<std::size_t>(std::clamp(
        std::ceil(q * static_cast<double>(v.size())) - 1, 0.0, static_cast<double>(v.size() - 1)));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
  }

  double p_;
  std::size_t capacity_;
  std::vector<std::vector<float>> kept_;
  std::vector<std::uint64_t> seen_;
  Rng rng_;
};

/// MSE-optimal clipping for `Bits`-bit affine codes from a histogram (see the top of this file).
template <int Bits>
class MseClipping : public detail::ObserverBase<MseClipping<Bits>> {
 public:
  static constexpr int bins = 2048;
  static constexpr int steps = 100;

  explicit MseClipping(Index channels = 1)
      : detail::ObserverBase<MseClipping>(channels, "quant::MseClipping"),
        histograms_(static_cast<std::size_t>(channels)) {}

  template <class Derived>
  void observe(const Eigen::DenseBase<Derived>& x) {
    this->check(x);
    this->for_each_channel(x, [&](Index c, const auto& v) {
      Histogram& h = histograms_[static_cast<std::size_t>(c)];
      const double mn = std::min(0.0, static_cast<double>(v.minCoeff()));
      const double mx = std::max(0.0, static_cast<double>(v.maxCoeff()));
      h.widen(mn, mx);
      for (Index i = 0; i < v.size(); ++i) {
        h.add(static_cast<double>(v(i)));
      }
    });
  }

  [[nodiscard]] Ranges range() const { return range(Bits); }
  /// The clipping range that is best for `bits`-bit codes (2 to 8) instead of Bits: one histogram
  /// serves every width of a mixed-precision conversion.
  [[nodiscard]] Ranges range(int bits) const {
    this->require_observed();
    if (bits < 2 || bits > 8) {
      throw argument_error("quant::MseClipping: bit widths are 2 to 8, got " +
                           std::to_string(bits));
    }
    Ranges r;
    for (const Histogram& h : histograms_) {
      double best_t = 1;
      double best = std::numeric_limits<double>::infinity();
      for (int k = steps; k >= 1; --k) {
        const double t = static_cast<double>(k) / steps;
        const double e = h.quantization_error(t * h.lo, t * h.hi, (1 << bits) - 1);
        if (e < best) {
          best = e;
          best_t = t;
        }
      }
      r.lo.push_back(static_cast<float>(best_t * h.lo));
      r.hi.push_back(static_cast<float>(best_t * h.hi));
    }
    return r;
  }

 private:
  struct Histogram {
    double lo = 0;
    double hi = 0;
    std::vector<double> counts = std::vector<double>(bins, 0.0);

    [[nodiscard]] double width() const { return (hi - lo) / bins; }
    // Grows the range to cover [mn, mx], moving each old bin's count to the new bin holding its
    // centre.
    void widen(double mn, double mx) {
      if (mn >= lo && mx <= hi && hi > lo) {
        return;
      }
      const double new_lo = std::min(lo, mn);
      const double new_hi = std::max({hi, mx, new_lo + 1e-30});
      std::vector<double> moved(bins, 0.0);
      for (int b = 0; b < bins; ++b) {
        if (counts[static_cast<std::size_t>(b)] != 0) {
          const double centre = lo + (b + 0.5) * width();
          moved[bin_of(centre, new_lo, new_hi)] += counts[static_cast<std::size_t>(b)];
        }
      }
      lo = new_lo;
      hi = new_hi;
      counts = std::move(moved);
    }
    static std::size_t bin_of(double v, double l, double h) {
      const double f = (v - l) / (h - l) * bins;
      return static_cast<std::size_t>(std::clamp(f, 0.0, static_cast<double>(bins - 1)));
    }
    void add(double v) { counts[bin_of(v, lo, hi)] += 1; }
    // Σ_bins n_b · E[(v − Q(v))²] for affine codes 0..levels over [a, b] (a <= 0 <= b): values
    // inside the range lose Δ²/12 on average (rounding), values outside their distance to the
    // nearer end squared (clipping).
    [[nodiscard]] double quantization_error(double a, double b, int levels) const {
      const double delta = std::max((b - a) / levels, 1e-30);
      double e = 0;
      for (int k = 0; k < bins; ++k) {
        const double n = counts[static_cast<std::size_t>(k)];
        if (n == 0) {
          continue;
        }
        const double v = lo + (k + 0.5) * width();
        if (v < a) {
          e += n * (a - v) * (a - v);
        } else if (v > b) {
          e += n * (v - b) * (v - b);
        } else {
          e += n * delta * delta / 12;
        }
      }
      return e;
    }
  };
  std::vector<Histogram> histograms_;
};

}  // namespace edgescale::quant
