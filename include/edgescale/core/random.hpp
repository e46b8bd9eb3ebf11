// edgescale/core/random.hpp — explicit, seeded, named random streams.
//
// Every random choice in edgescale takes a generator from the caller; there is no global state.
// The distributions here are written out (not std::normal_distribution & co., whose output is
// implementation-defined) so that a seed gives the same numbers with libstdc++ and libc++, and a
// run is reproducible bit for bit (DESIGN §4).
//
//     Rng rng = make_stream(seed, "partition");
//     double g = gamma(rng, 0.5);                                          // Gamma(0.5, 1)
//     std::vector<double> p = dirichlet(rng, std::vector{0.1, 0.1, 0.1});  // sums to 1
#pragma once

#include <edgescale/core/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgescale {

/// The generator type used throughout: 64-bit Mersenne Twister (fully specified by the standard).
using Rng = std::mt19937_64;

namespace detail {
/// SplitMix64 finaliser (Steele, Lea, Flood 2014): spreads a 64-bit key over all bits.
constexpr std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30U)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27U)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31U);
}
}  // namespace detail

/// A generator for the named stream `name` of experiment seed `seed` ("init", "shuffle", ...).
/// Streams with different names are independent, so adding a random choice in one place does not
/// change the numbers drawn in another.
inline Rng make_stream(std::uint64_t seed, std::string_view name) {
  std::uint64_t key = detail::splitmix64(seed);
  for (const char c : name) {
    key = detail::splitmix64(key ^ static_cast<unsigned char>(c));
  }
  return Rng{key};
}

/// Uniform in [0, 1) with 53 (double) or 24 (float) random bits.
template <class T = double>
T uniform01(Rng& rng) {
  if constexpr (sizeof(T) >= sizeof(double)) {
    return static_cast<T>(rng() >> 11U) * static_cast<T>(0x1.0p-53);
  } else {
    return static_cast<T>(rng() >> 40U) * static_cast<T>(0x1.0p-24F);
  }
}

/// Uniform in [lo, hi).
template <class T>
T uniform(Rng& rng, T lo, T hi) {
  return lo + (hi - lo) * uniform01<T>(rng);
}

/// Standard normal by the Box–Muller transform (one draw per call; simple and portable).
template <class T = double>
T standard_normal(Rng& rng) {
  const double u1 = 1.0 - uniform01<double>(rng);  // (0, 1]: log is finite
  const double u2 = uniform01<double>(rng);
  return static_cast<T>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
}

/// Uniform integer in [0, n), unbiased by rejection (as OpenBSD's arc4random_uniform), portable.
inline std::uint64_t uniform_index(Rng& rng, std::uint64_t n) {
  if (n <= 1) {
    return 0;
  }
  const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n: reject the short last interval
  for (;;) {
    const std::uint64_t x = rng();
    if (x >= threshold) {
      return x % n;
    }
  }
}

/// Fisher–Yates shuffle with `uniform_index` (std::shuffle's sequence is implementation-defined).
template <class E>
void shuffle(std::span<E> values, Rng& rng) {
  for (std::size_t i = values.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(uniform_index(rng, i));
    using std::swap;
    swap(values[i - 1], values[j]);
  }
}

/// Shuffles a contiguous container (std::vector, std::array, ...) in place.
template <class Container>
  requires requires(Container& c) {
    std::span(c);
  }
void shuffle(Container& values, Rng& rng) {
  shuffle(std::span(values), rng);
}

namespace detail {
inline void require_gamma_shape(double shape) {
  if (!(shape > 0.0) || !std::isfinite(shape)) {
    throw argument_error("gamma: the shape must be positive and finite, got " +
                         std::to_string(shape));
  }
}

/// Marsaglia & Tsang (2000), "A simple method for generating gamma variables", ACM TOMS 26(3),
/// for shape a >= 1: d = a - 1/3, c = 1/sqrt(9d); draw x ~ N(0, 1) and v = (1 + cx)^3 until
/// v > 0 and u < 1 - 0.0331 x^4 (the squeeze) or log u < x^2/2 + d(1 - v + log v); return d v.
inline double marsaglia_tsang(Rng& rng, double shape) {
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    const double x = standard_normal(rng);
    double v = 1.0 + c * x;
    if (v <= 0.0) {
      continue;
    }
    v = v * v * v;
    const auto u = uniform01<double>(rng);
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2 || std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v))) {
      return d * v;
    }
  }
}
}  // namespace detail

/// Gamma(shape, 1) (mean = variance = shape) by Marsaglia & Tsang (2000); for shape a < 1 their
/// boost Gamma(a) = Gamma(a + 1) U^{1/a}, U uniform in (0, 1]. For a tiny shape the result
/// underflows to 0 often (a = 0.001: about half the draws); log_gamma_variate does not.
inline double gamma(Rng& rng, double shape) {
  detail::require_gamma_shape(shape);
  if (shape >= 1.0) {
    return detail::marsaglia_tsang(rng, shape);
  }
  const double g = detail::marsaglia_tsang(rng, shape + 1.0);
  const double u = 1.0 - uniform01<double>(rng);  // (0, 1]
  return g * std::pow(u, 1.0 / shape);
}

/// log of a Gamma(shape, 1) draw, finite for every shape: log Gamma(a + 1) + log(U) / a for
/// a < 1. It draws the same numbers as gamma(rng, shape) (exp of one is the other, up to rounding)
/// and is what dirichlet uses, so tiny concentrations do not underflow.
inline double log_gamma_variate(Rng& rng, double shape) {
  detail::require_gamma_shape(shape);
  if (shape >= 1.0) {
    return std::log(detail::marsaglia_tsang(rng, shape));
  }
  const double g = detail::marsaglia_tsang(rng, shape + 1.0);
  const double u = 1.0 - uniform01<double>(rng);  // (0, 1]
  return std::log(g) + std::log(u) / shape;
}

/// A draw from Dirichlet(alpha): independent g_i ~ Gamma(alpha_i), p_i = g_i / sum_j g_j.
///
/// The gammas are drawn in log space (log_gamma_variate) and normalised by the largest,
/// p_i = exp(l_i - max l) / sum_j exp(l_j - max l), so the result always sums to 1 and has no NaN.
/// With tiny alpha (0.001) plain gammas would all underflow to 0 in a sizeable share of draws and
/// need an ad-hoc fallback; in log space the draw stays exact: the largest component is never 0
/// and only a component below ~1e-308 of the largest rounds to 0.
inline std::vector<double> dirichlet(Rng& rng, std::span<const double> alpha) {
  if (alpha.empty()) {
    throw argument_error("dirichlet: expected at least one concentration, got none");
  }
  for (std::size_t i = 0; i < alpha.size(); ++i) {
    if (!(alpha[i] > 0.0) || !std::isfinite(alpha[i])) {
      throw argument_error("dirichlet: alpha[" + std::to_string(i) +
                           "] must be positive and finite, got " + std::to_string(alpha[i]));
    }
  }
  std::vector<double> p(alpha.size());
  for (std::size_t i = 0; i < alpha.size(); ++i) {
    p[i] = log_gamma_variate(rng, alpha[i]);
  }
  const double top = *std::max_element(p.begin(), p.end());
  double sum = 0.0;
  for (double& x : p) {
    x = std::exp(x - top);
    sum += x;
  }
  for (double& x : p) {
    x /= sum;
  }
  return p;
}

}  // namespace edgescale
