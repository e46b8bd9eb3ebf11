// edgescale/core/error.hpp — the one exception hierarchy of edgescale.
//
// Impossible states are compile errors; bad data (a dynamic shape that does not match, a corrupt
// file, a hostile client update) raises one of these, with a message that names the file, tensor
// or layer and what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace edgescale {

/// Base of every exception edgescale throws.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A dynamic shape (batch rows, a loaded tensor, a dataset's image size) does not match.
class shape_error : public error {
 public:
  using error::error;
};

/// A file or stream is truncated, corrupt or of an unsupported format.
class format_error : public error {
 public:
  using error::error;
};

/// An argument is outside its documented domain (negative learning rate, empty dataset, ...).
class argument_error : public error {
 public:
  using error::error;
};

}  // namespace edgescale
