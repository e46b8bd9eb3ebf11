// edgescale/core/random.hpp — explicit, seeded, named random streams.
//
// Every random choice in edgescale takes a generator from the caller; there is no global state.
// The distributions here are written out (not std::normal_distribution & co., whose output is
// implementation-defined) so that a seed gives the same numbers with libstdc++ and libc++, and a
// run is reproducible bit for bit (DESIGN §4).
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <span>
#include <string_view>
#include <utility>

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

}  // namespace edgescale
