// examples/common/json.hpp — the JSON writer every example's report goes through.
//
//     json::Writer j(out);                 // any std::ostream
//     j.begin_object();
//     j.field("net", "mlp").field("epochs", 10).field("test_accuracy", 0.8912);
//     j.key("history").begin_array();
//     for (...) { j.begin_object(); j.field("epoch", e); j.end_object(); }
//     j.end_array();
//     j.end_object();                      // the closing brace of the outermost value ends the
//     line
//
// Streaming: nothing is held in memory but the nesting. Objects keep their keys in the order
// written. Numbers: integers as they are, doubles as the shortest text that reads back as the
// same double (17 significant digits at most; NaN and infinities, which JSON lacks, as null).
// Strings are escaped as RFC 8259 requires (quote, backslash, control characters); other bytes,
// UTF-8 included, are written as they are. One key or value per line, indented by two spaces per
// level, so reports read and diff well.
//
// Misuse (a value where a key is due, end_array closing an object, ...) throws std::logic_error:
// a programming error in the example, not bad input. Compiled once in common/common.cpp.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace edgescale::examples::json {

class Writer {
 public:
  explicit Writer(std::ostream& out) : out_(out) {}

  Writer& begin_object() { return open('{'); }
  Writer& end_object() { return close('{', '}'); }
  Writer& begin_array() { return open('['); }
  Writer& end_array() { return close('[', ']'); }

  /// The key of the next value in the current object.
  Writer& key(std::string_view name);

  Writer& value(std::string_view s);
  Writer& value(const char* s) { return value(std::string_view(s)); }
  Writer& value(const std::string& s) { return value(std::string_view(s)); }
  Writer& value(bool b);
  Writer& value(std::nullptr_t);
  Writer& value(double v);
  Writer& value(float v) { return value(static_cast<double>(v)); }
  template <std::integral T>
  Writer& value(T v) {
    if constexpr (std::signed_integral<T>) {
      return integer(static_cast<std::int64_t>(v), false);
    } else {
      return integer(static_cast<std::int64_t>(v), true);
    }
  }

  /// key(name).value(v).
  template <class T>
  Writer& field(std::string_view name, const T& v) {
    key(name);
    return value(v);
  }

  /// True once the outermost value is complete.
  [[nodiscard]] bool done() const { return done_; }

 private:
  struct Level {
    char bracket;
    bool empty = true;
    bool key_written = false;
  };

  // An integer's bits, printed as unsigned when `is_unsigned`.
  Writer& integer(std::int64_t bits, bool is_unsigned);
  void newline_indent(std::size_t depth);
  void separate();
  void before_value();
  Writer& after_value();
  Writer& open(char bracket);
  Writer& close(char bracket, char closing);
  void write_string(std::string_view s);

  std::ostream& out_;
  std::vector<Level> levels_;
  bool done_ = false;
};

}  // namespace edgescale::examples::json
