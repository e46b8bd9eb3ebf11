// edgescale/fed/detail/wire.hpp — the few messages ranks exchange besides numbers (round outcomes,
// reduction node lists, fingerprints), as 64-bit words and byte strings in one std::string.
//
//   std::string m;  put_word(m, 42);  put_bytes(m, "reason");
//   WordReader r(m, "Simulation: rank 3 sent malformed round outcomes");
//   std::int64_t w = r.word();  std::string s = r.bytes(r.word());   // throws `what` when short
//
// Words are in the machine's byte order: every rank of an MPI job runs the same binary on the
// same architecture.
#pragma once

#include <edgescale/core/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace edgescale::fed::detail {

inline void put_word(std::string& out, std::int64_t w) {
  char b[sizeof w];
  std::memcpy(b, &w, sizeof w);
  out.append(b, sizeof w);
}

/// A length word, then the bytes.
inline void put_bytes(std::string& out, std::string_view bytes) {
  put_word(out, static_cast<std::int64_t>(bytes.size()));
  out.append(bytes);
}

/// Reads what put_word and put_bytes wrote; throws argument_error(what) for a message that ends
/// early or holds a negative length.
class WordReader {
 public:
  WordReader(std::string_view in, std::string what) : in_(in), what_(std::move(what)) {}

  [[nodiscard]] bool done() const { return at_ == in_.size(); }
  [[nodiscard]] std::int64_t word() {
    if (in_.size() - at_ < sizeof(std::int64_t)) {
      throw argument_error(what_);
    }
    std::int64_t w = 0;
    std::memcpy(&w, in_.data() + at_, sizeof w);
    at_ += sizeof w;
    return w;
  }
  /// The bytes that put_bytes wrote.
  [[nodiscard]] std::string bytes() {
    const std::int64_t length = word();
    if (length < 0 || static_cast<std::size_t>(length) > in_.size() - at_) {
      throw argument_error(what_);
    }
    std::string out(in_.substr(at_, static_cast<std::size_t>(length)));
    at_ += static_cast<std::size_t>(length);
    return out;
  }

 private:
  std::string_view in_;
  std::string what_;
  std::size_t at_ = 0;
};

}  // namespace edgescale::fed::detail
