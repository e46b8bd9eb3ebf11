// edgescale/fed/detail/diagnostics.hpp — how the federated strategies describe what they reject:
// numbers, shapes and matrix entries in messages, the first non-finite entry of an update, and
// the checks of a test set before evaluation.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/dataset.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

namespace edgescale::fed::detail {

inline std::string shape_text(Index rows, Index cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

inline std::string entry_text(const char* name, Index i, Index j) {
  return std::string(name) + "(" + std::to_string(i) + ", " + std::to_string(j) + ")";
}

/// A double as it round-trips ("%.17g"), or NaN, Inf, -Inf.
inline std::string number_text(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "Inf" : "-Inf";
  }
  std::array<char, 32> buffer{};
  const int written = std::snprintf(buffer.data(), buffer.size(), "%.17g", v);
  return std::string(buffer.data(), static_cast<std::size_t>(std::max(written, 0)));
}

/// The first entry of m, column by column, that is NaN or infinite, described ("A(3, 4) is NaN,
/// not a finite number"); empty if none.
inline std::string first_non_finite(const Matrix<double>& m, const char* name) {
  if (m.allFinite()) {
    return {};
  }
  for (Index j = 0; j < m.cols(); ++j) {
    for (Index i = 0; i < m.rows(); ++i) {
      if (!std::isfinite(m(i, j))) {
        return entry_text(name, i, j) + " is " + number_text(m(i, j)) + ", not a finite number";
      }
    }
  }
  return {};
}

/// Throws unless `test` is a consistent, non-empty dataset of samples of `features` values:
/// shape_error (data::validate, or another sample size), argument_error when it is empty. `who`
/// starts the message.
template <class T>
void require_test_set(const data::Dataset<T>& test, Index features, std::string_view who) {
  data::validate(test);
  if (test.sample_size() != features) {
    throw shape_error(std::string(who) + ": test set samples have " +
                      std::to_string(test.sample_size()) + " values, the clients' have " +
                      std::to_string(features));
  }
  if (test.size() == 0) {
    throw argument_error(std::string(who) + ": the test set is empty");
  }
}

}  // namespace edgescale::fed::detail
