// edgescale/data/npy.hpp — NumPy .npy arrays.
//
// The .npy format (numpy.lib.format, NEP 1): the magic "\x93NUMPY", a major and a minor version
// byte, the header length (uint16 little-endian in version 1.0, uint32 in 2.0 and 3.0), then an
// ASCII Python dict literal such as
//     {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and a final '\n' so the data starts on a 64-byte boundary, then the values.
//
// What is read: versions 1.0, 2.0 and 3.0 (3.0 only differs by allowing UTF-8, which no supported
// header needs); dtypes '<f4', '<f8', '<i4', '<i8', '|u1' (also spelt '<u1'), and on reading also
// '|i1', '<i2', '<u2', '<u4', '<u8' and '|b1' (bool, read as 0/1 bytes); fortran_order True is
// read by reordering into C order, so NpyArray::data is always row-major. Big-endian, structured,
// object and other dtypes raise format_error. read_npy<T> converts any supported dtype into T:
//   - integer -> integer, and floating -> integer: the value must be representable in T exactly
//     (finite, integral, in range), otherwise format_error (no silent wrap or truncation);
//   - integer -> floating: the nearest value of T;
//   - double -> float: rounded to nearest; beyond float's range it becomes +-inf, as in NumPy.
// Values of another dtype than T are widened first, without loss, into double (floating dtypes)
// or int64_t (integer dtypes) by one non-template reader, so each T a program reads compiles two
// conversions rather than one per dtype.
// The header is parsed by a small recursive-descent parser that accepts only the three keys above
// (as numpy does); its length is capped at npy_max_header_bytes and the declared data size is
// checked against the bytes left in a seekable stream before anything is allocated.
//
// What is written: exactly what numpy.save writes (numpy 1.24 and later, byte for byte): version
// 1.0, or 2.0 when the header does not fit 64 KiB, keys sorted, spare spaces for the first axis to
// grow, 64-byte alignment, fortran_order False, little-endian.
//
// Whole-network parameter files, one .npy per tensor, are in data/parameter_file.hpp.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/detail/stream.hpp>

#include <array>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <limits>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace edgescale::data {

/// The element types a .npy file can hold here.
/// The element types a .npy file can hold here. The first six are also written (int8: the codes
/// of quantized models); the other integer types (int16, uint16, uint32, uint64: what numpy users
/// save labels and indices as) are read, widened, into any of the integer or floating types
/// read_npy takes.
enum class NpyDtype { f4, f8, i4, i8, u1, i1, i2, u2, u4, u8 };

/// The C++ types that read_npy and write_npy take.
template <class T>
concept NpyScalar =
    std::same_as<T, float> || std::same_as<T, double> || std::same_as<T, std::int32_t> ||
    std::same_as<T, std::int64_t> || std::same_as<T, std::uint8_t> || std::same_as<T, std::int8_t>;

/// Longest header accepted on reading (numpy writes ~128 bytes; a shape of thousands of axes is
/// the only legitimate reason for more).
inline constexpr std::uint64_t npy_max_header_bytes = std::uint64_t{1} << 20U;

/// An n-dimensional array read from a .npy file, row-major (C order).
///
///     const NpyArray<float> w = load_npy<float>("weights/0.weight.npy");
///     const float w01 = w.data[0 * w.shape[1] + 1];
///     save_npy("copy.npy", w);
template <NpyScalar T>
struct NpyArray {
  std::vector<Index> shape;  ///< empty for a 0-d array (one value)
  std::vector<T> data;

  [[nodiscard]] Index size() const { return static_cast<Index>(data.size()); }
};

/// What the header of a .npy file declares.
struct NpyHeader {
  int major = 1;
  int minor = 0;
  NpyDtype dtype = NpyDtype::f4;
  bool fortran_order = false;
  std::vector<Index> shape;
};

namespace detail {

template <class T>
constexpr NpyDtype npy_dtype_of() {
  if constexpr (std::same_as<T, float>) {
    return NpyDtype::f4;
  } else if constexpr (std::same_as<T, double>) {
    return NpyDtype::f8;
  } else if constexpr (std::same_as<T, std::int32_t>) {
    return NpyDtype::i4;
  } else if constexpr (std::same_as<T, std::int64_t>) {
    return NpyDtype::i8;
  } else if constexpr (std::same_as<T, std::int8_t>) {
    return NpyDtype::i1;
  } else {
    return NpyDtype::u1;
  }
}

inline std::string_view npy_descr(NpyDtype dtype) {
  switch (dtype) {
    case NpyDtype::f4:
      return "<f4";
    case NpyDtype::f8:
      return "<f8";
    case NpyDtype::i4:
      return "<i4";
    case NpyDtype::i8:
      return "<i8";
    case NpyDtype::u1:
      return "|u1";
    case NpyDtype::i1:
      return "|i1";
    case NpyDtype::i2:
      return "<i2";
    case NpyDtype::u2:
      return "<u2";
    case NpyDtype::u4:
      return "<u4";
    case NpyDtype::u8:
      return "<u8";
  }
  return "?";
}

inline std::size_t npy_item_size(NpyDtype dtype) {
  switch (dtype) {
    case NpyDtype::f4:
    case NpyDtype::i4:
    case NpyDtype::u4:
      return 4;
    case NpyDtype::f8:
    case NpyDtype::i8:
    case NpyDtype::u8:
      return 8;
    case NpyDtype::i2:
    case NpyDtype::u2:
      return 2;
    case NpyDtype::u1:
    case NpyDtype::i1:
      return 1;
  }
  return 1;
}

/// Python's repr of a shape tuple: "()", "(4,)", "(2, 3)".
inline std::string npy_shape_repr(std::span<const Index> shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    s += (i == 0 ? "" : ", ") + std::to_string(shape[i]);
  }
  s += shape.size() == 1 ? ",)" : ")";
  return s;
}

[[noreturn]] inline void npy_fail(std::string_view name, const std::string& what) {
  throw format_error(".npy file " + quote_name(name) + ": " + what);
}

/// A recursive-descent parser for the one dict literal a .npy header holds. It reads only string,
/// boolean and tuple-of-integer values, never indexes out of the header and bounds every integer,
/// so a hostile header can at worst be rejected.
class NpyHeaderParser {
 public:
  NpyHeaderParser(std::string_view text, std::string_view name) : text_(text), name_(name) {}

  NpyHeader parse() {
    NpyHeader header;
    bool has_descr = false;
    bool has_order = false;
    bool has_shape = false;
    expect('{', "'{' opening the header dict");
    while (!consume('}')) {
      const std::string key(string_literal("a dict key"));
      expect(':', "':' after key '" + key + "'");
      bool* seen = nullptr;
      if (key == "descr") {
        header.dtype = dtype();
        seen = &has_descr;
      } else if (key == "fortran_order") {
        header.fortran_order = boolean();
        seen = &has_order;
      } else if (key == "shape") {
        header.shape = shape();
        seen = &has_shape;
      } else {
        fail("unexpected key '" + key + "' (expected 'descr', 'fortran_order' and 'shape')");
      }
      if (*seen) {
        fail("key '" + key + "' appears twice");
      }
      *seen = true;
      if (!consume(',')) {
        expect('}', "',' or '}' after the value of '" + key + "'");
        break;
      }
    }
    skip_space();
    if (pos_ != text_.size()) {
      fail("unexpected text after the header dict");
    }
    if (!has_descr || !has_order || !has_shape) {
      fail(std::string("header lacks the key '") +
           (!has_descr ? "descr" : (!has_order ? "fortran_order" : "shape")) + "'");
    }
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    npy_fail(name_,
             "corrupt header: " + what + " (at byte " + std::to_string(pos_) + " of the header)");
  }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool consume(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c, const std::string& what) {
    if (!consume(c)) {
      fail("expected " + what);
    }
  }

  std::string_view string_literal(const std::string& what) {
    skip_space();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
      fail("expected " + what + " as a quoted string");
    }
    const char quote = text_[pos_++];
    const std::size_t begin = pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\') {
        fail("escape sequences are not supported in " + what);
      }
      ++pos_;
    }
    if (pos_ >= text_.size()) {
      fail("unterminated string in " + what);
    }
    return text_.substr(begin, pos_++ - begin);
  }

  NpyDtype dtype() {
    skip_space();
    if (pos_ < text_.size() && (text_[pos_] == '[' || text_[pos_] == '{')) {
      fail("structured dtypes are not supported");
    }
    const std::string_view descr = string_literal("the 'descr' value");
    constexpr std::array<std::pair<std::string_view, NpyDtype>, 14> known{{{"<f4", NpyDtype::f4},
                                                                           {"<f8", NpyDtype::f8},
                                                                           {"<i4", NpyDtype::i4},
                                                                           {"<i8", NpyDtype::i8},
                                                                           {"|u1", NpyDtype::u1},
                                                                           {"<u1", NpyDtype::u1},
                                                                           {"|i1", NpyDtype::i1},
                                                                           {"<i1", NpyDtype::i1},
                                                                           {"<i2", NpyDtype::i2},
                                                                           {"<u2", NpyDtype::u2},
                                                                           {"<u4", NpyDtype::u4},
                                                                           {"<u8", NpyDtype::u8},
                                                                           {"|b1", NpyDtype::u1},
                                                                           {"<b1", NpyDtype::u1}}};
    for (const auto& [spelling, type] : known) {
      if (descr == spelling) {
        return type;
      }
    }
    if (!descr.empty() && descr[0] == '>') {
      npy_fail(name_,
               "big-endian dtype '" + std::string(descr) +
                   "' is not supported (save it with arr.astype(arr.dtype.newbyteorder('<')))");
    }
    npy_fail(name_, "unsupported dtype '" + std::string(descr) +
                        "' (supported: '<f4', '<f8', '<i4', '<i8', '|u1', and read only "
                        "'|i1', '<i2', '<u2', '<u4', '<u8', '|b1')");
  }

  bool boolean() {
    skip_space();
    for (const auto& [word, value] : {std::pair<std::string_view, bool>{"True", true},
                                      std::pair<std::string_view, bool>{"False", false}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    fail("expected True or False for 'fortran_order'");
  }

  std::vector<Index> shape() {
    // Any real dimension is far below this; the bound keeps the digit loop free of overflow.
    constexpr Index max_dim = std::numeric_limits<Index>::max() / 16;
    expect('(', "'(' opening the shape tuple");
    std::vector<Index> dims;
    while (!consume(')')) {
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] < '0' || text_[pos_] > '9') {
        fail("expected a non-negative integer in the shape tuple");
      }
      Index d = 0;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        d = d * 10 + (text_[pos_++] - '0');
        if (d > max_dim) {
          fail("shape dimension too large");
        }
      }
      if (pos_ < text_.size() && text_[pos_] == 'L') {
        ++pos_;  // Python 2's long suffix, written by old numpy: (3L, 4L)
      }
      dims.push_back(d);
      if (!consume(',')) {
        expect(')', "',' or ')' in the shape tuple");
        break;
      }
    }
    return dims;
  }

  std::string_view text_;
  std::string_view name_;
  std::size_t pos_ = 0;
};

/// Reverses the bytes of each value when the machine is big-endian (.npy data here is little).
template <class V>
void npy_to_little_endian(std::span<V> values) {
  if constexpr (std::endian::native == std::endian::big && sizeof(V) > 1) {
    for (V& v : values) {
      std::array<unsigned char, sizeof(V)> b{};
      std::memcpy(b.data(), &v, sizeof(V));
      for (std::size_t i = 0; i < sizeof(V) / 2; ++i) {
        std::swap(b[i], b[sizeof(V) - 1 - i]);
      }
      std::memcpy(&v, b.data(), sizeof(V));
    }
  }
}

/// One value of a wide type (double, or int64_t) as a `To`, by the rules at the top of this file;
/// false when it does not convert exactly to an integer `To`.
template <class To, class From>
bool npy_convert(From v, To& out) {
  if constexpr (std::same_as<To, From>) {
    out = v;
  } else if constexpr (std::integral<To> && std::integral<From>) {
    if (!std::in_range<To>(v)) {
      return false;
    }
    out = static_cast<To>(v);
  } else if constexpr (std::integral<To>) {  // floating -> integer
    // [min, max + 1) of To, both powers of two (or 0) and so exact in any floating type.
    const auto lo = static_cast<From>(std::numeric_limits<To>::min());
    const From hi = From(2) * static_cast<From>(std::numeric_limits<To>::max() / 2 + 1);
    if (!std::isfinite(v) || std::trunc(v) != v || v < lo || v >= hi) {
      return false;
    }
    out = static_cast<To>(v);
  } else if constexpr (std::same_as<To, float> && std::same_as<From, double>) {
    // Converting a double beyond float's range is undefined in C++; IEEE rounds it to FLT_MAX
    // below the midpoint FLT_MAX + ulp/2 = (2 - 2^-24) 2^127 and to infinity from there on.
    constexpr double max = std::numeric_limits<float>::max();
    if (std::isfinite(v) && std::abs(v) > max) {
      const double midpoint = max + std::ldexp(1.0, 103);
      const float r = std::abs(v) >= midpoint ? std::numeric_limits<float>::infinity()
                                              : std::numeric_limits<float>::max();
      out = v < 0 ? -r : r;
    } else {
      out = static_cast<float>(v);
    }
  } else {  // integer or floating -> floating of at least the range
    out = static_cast<To>(v);
  }
  return true;
}

[[noreturn]] inline void npy_truncated(std::string_view name, std::uint64_t count, NpyDtype dtype,
                                       std::uint64_t got) {
  npy_fail(name, "truncated data: expected " + std::to_string(count) + " values of " +
                     std::string(npy_descr(dtype)) + " (" +
                     std::to_string(count * npy_item_size(dtype)) + " bytes), found " +
                     std::to_string(got) + " whole values");
}

/// Reads `count` values stored as `T` (the file's dtype `dtype`), in the machine's byte order.
template <class T>
std::vector<T> npy_read_raw(std::istream& in, std::string_view name, std::uint64_t count,
                            NpyDtype dtype) {
  std::vector<T> out;
  if (const std::uint64_t got = append_values(in, out, count); got != count) {
    npy_truncated(name, count, dtype, got);
  }
  npy_to_little_endian(std::span<T>(out));
  return out;
}

/// A value of type V stored little-endian at `p`.
template <class V>
V npy_load_le(const unsigned char* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  npy_to_little_endian(std::span<V>(&v, 1));
  return v;
}

/// A file's values widened without loss: floating dtypes into `floating`, integer dtypes into
/// `integer` (the other stays empty).
struct NpyWideValues {
  std::vector<double> floating;
  std::vector<std::int64_t> integer;
};

/// Reads `count` values of any dtype, widened. Not a template: every pair of file dtype and
/// requested type converts through here, so a program compiles this reader once, and each
/// requested type adds only its two conversions from double and from int64_t (npy_narrow).
inline NpyWideValues npy_read_wide(std::istream& in, std::string_view name, std::uint64_t count,
                                   NpyDtype dtype) {
  const std::size_t item = npy_item_size(dtype);
  std::vector<unsigned char> bytes;
  if (const std::uint64_t got = append_values(in, bytes, count * item) / item; got != count) {
    npy_truncated(name, count, dtype, got);
  }
  const unsigned char* p = bytes.data();
  NpyWideValues wide;
  if (dtype == NpyDtype::f4 || dtype == NpyDtype::f8) {
    wide.floating.resize(count);
  } else {
    wide.integer.resize(count);
  }
  for (std::size_t i = 0; i < count; ++i, p += item) {
    switch (dtype) {
      case NpyDtype::f4:
        wide.floating[i] = npy_load_le<float>(p);
        break;
      case NpyDtype::f8:
        wide.floating[i] = npy_load_le<double>(p);
        break;
      case NpyDtype::i4:
        wide.integer[i] = npy_load_le<std::int32_t>(p);
        break;
      case NpyDtype::i8:
        wide.integer[i] = npy_load_le<std::int64_t>(p);
        break;
      case NpyDtype::u1:
        wide.integer[i] = *p;
        break;
      case NpyDtype::i1:
        wide.integer[i] = static_cast<std::int8_t>(*p);
        break;
      case NpyDtype::i2:
        wide.integer[i] = npy_load_le<std::int16_t>(p);
        break;
      case NpyDtype::u2:
        wide.integer[i] = npy_load_le<std::uint16_t>(p);
        break;
      case NpyDtype::u4:
        wide.integer[i] = npy_load_le<std::uint32_t>(p);
        break;
      case NpyDtype::u8: {
        const auto v = npy_load_le<std::uint64_t>(p);
        if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          npy_fail(name, "value " + std::to_string(v) + " at index " + std::to_string(i) +
                             " of a uint64 array is beyond every integer type read here");
        }
        wide.integer[i] = static_cast<std::int64_t>(v);
        break;
      }
    }
  }
  return wide;
}

/// Widened values as `To`; format_error naming the first value that does not convert exactly.
template <class To, class From>
std::vector<To> npy_narrow(const std::vector<From>& wide, std::string_view name) {
  std::vector<To> out(wide.size());
  for (std::size_t i = 0; i < wide.size(); ++i) {
    if (!npy_convert(wide[i], out[i])) {
      npy_fail(name, "value " + std::to_string(wide[i]) + " at index " + std::to_string(i) +
                         " does not convert exactly to the requested integer type");
    }
  }
  return out;
}

/// Reads `count` values of the file's dtype `dtype` as `T`: directly when they are of type T,
/// otherwise widened (npy_read_wide) and converted.
template <class T>
std::vector<T> npy_read_values(std::istream& in, std::string_view name, std::uint64_t count,
                               NpyDtype dtype) {
  if (dtype == npy_dtype_of<T>()) {
    return npy_read_raw<T>(in, name, count, dtype);
  }
  NpyWideValues wide = npy_read_wide(in, name, count, dtype);
  if (dtype == NpyDtype::f4 || dtype == NpyDtype::f8) {
    if constexpr (std::same_as<T, double>) {
      return std::move(wide.floating);
    } else {
      return npy_narrow<T>(wide.floating, name);
    }
  }
  if constexpr (std::same_as<T, std::int64_t>) {
    return std::move(wide.integer);
  } else {
    return npy_narrow<T>(wide.integer, name);
  }
}

/// Reorders a column-major (Fortran) array of the given shape into row-major order.
template <class T>
std::vector<T> npy_fortran_to_c(const std::vector<T>& f, std::span<const Index> shape) {
  if (f.empty() || shape.size() < 2) {
    return f;
  }
  std::vector<T> c(f.size());
  const std::size_t rank = shape.size();
  std::vector<Index> stride(rank, 1);  // Fortran strides: the first axis varies fastest
  for (std::size_t k = 1; k < rank; ++k) {
    stride[k] = stride[k - 1] * shape[k - 1];
  }
  std::vector<Index> index(rank, 0);
  Index offset = 0;
  for (T& value : c) {
    value = f[static_cast<std::size_t>(offset)];
    for (std::size_t k = rank; k-- > 0;) {  // increment the C-order multi-index, last axis fastest
      offset += stride[k];
      if (++index[k] < shape[k]) {
        break;
      }
      offset -= stride[k] * shape[k];
      index[k] = 0;
    }
  }
  return c;
}

inline std::uint64_t npy_read_uint_le(std::istream& in, std::string_view name, std::size_t bytes) {
  std::array<unsigned char, 4> b{};
  if (read_some(in, reinterpret_cast<char*>(b.data()), bytes) != bytes) {
    npy_fail(name, "truncated header: the header length field is cut short");
  }
  std::uint64_t v = 0;
  for (std::size_t i = bytes; i-- > 0;) {
    v = (v << 8U) | b[i];
  }
  return v;
}

}  // namespace detail

/// Reads the magic, version and header of a .npy stream, leaving it at the first data byte.
inline NpyHeader read_npy_header(std::istream& in, std::string_view name) {
  constexpr std::string_view magic = "\x93NUMPY";
  std::array<char, 8> preamble{};
  const std::uint64_t got = detail::read_some(in, preamble.data(), preamble.size());
  if (got < magic.size() || std::string_view(preamble.data(), magic.size()) != magic) {
    detail::npy_fail(name, "bad magic: expected \"\\x93NUMPY\" (not a .npy file?)");
  }
  if (got < preamble.size()) {
    detail::npy_fail(name, "truncated header: the version bytes are missing");
  }
  const int major = static_cast<unsigned char>(preamble[6]);
  const int minor = static_cast<unsigned char>(preamble[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    detail::npy_fail(name, "unsupported format version " + std::to_string(major) + "." +
                               std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  }
  const std::uint64_t header_bytes = detail::npy_read_uint_le(in, name, major == 1 ? 2 : 4);
  if (header_bytes > npy_max_header_bytes) {
    detail::npy_fail(name, "header of " + std::to_string(header_bytes) +
                               " bytes is longer than the limit of " +
                               std::to_string(npy_max_header_bytes) + " (corrupt header?)");
  }
  std::vector<char> text;
  if (const std::uint64_t n = detail::append_values(in, text, header_bytes); n != header_bytes) {
    detail::npy_fail(name, "truncated header: expected " + std::to_string(header_bytes) +
                               " bytes, found " + std::to_string(n));
  }
  NpyHeader header =
      detail::NpyHeaderParser(std::string_view(text.data(), text.size()), name).parse();
  header.major = major;
  header.minor = minor;
  return header;
}

/// Reads one array from a .npy stream, converting its values to T (rules at the top of this file).
/// The stream is left after the array's last byte, so arrays saved one after another into one
/// stream read back one after another. Throws format_error naming `name` for anything corrupt.
template <NpyScalar T>
NpyArray<T> read_npy(std::istream& in, std::string_view name) {
  NpyHeader header = read_npy_header(in, name);
  const std::size_t item = detail::npy_item_size(header.dtype);
  std::uint64_t count = 1;
  for (const Index d : header.shape) {
    const auto product = detail::checked_product(
        count, static_cast<std::uint64_t>(d),
        static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / item);
    if (!product) {
      detail::npy_fail(name, "shape " + detail::npy_shape_repr(header.shape) +
                                 " is too large (corrupt header?)");
    }
    count = *product;
  }
  if (const auto left = detail::remaining_bytes(in); left && *left < count * item) {
    detail::npy_fail(name, "truncated data: shape " + detail::npy_shape_repr(header.shape) +
                               " of " + std::string(detail::npy_descr(header.dtype)) + " needs " +
                               std::to_string(count * item) + " bytes, found " +
                               std::to_string(*left));
  }
  NpyArray<T> array;
  array.data = detail::npy_read_values<T>(in, name, count, header.dtype);
  if (header.fortran_order) {
    array.data = detail::npy_fortran_to_c(array.data, header.shape);
  }
  array.shape = std::move(header.shape);
  return array;
}

/// Writes `data` (row-major, as many values as `shape` multiplies to) as one .npy array, in the
/// same bytes numpy.save writes. Throws argument_error for a negative dimension.
template <NpyScalar T>
void write_npy(std::ostream& out, const T* data, std::span<const Index> shape) {
  Index count = 1;
  for (const Index d : shape) {
    if (d < 0) {
      throw argument_error("write_npy: negative dimension in shape " +
                           detail::npy_shape_repr(shape));
    }
    count *= d;
  }
  // numpy.lib.format._write_array_header: sorted keys, then spare spaces so the first axis can
  // grow to 21 digits in place, then _wrap_header's padding to a 64-byte boundary and a '\n'.
  constexpr std::size_t growth_digits = 21;
  std::string dict = "{'descr': '" + std::string(detail::npy_descr(detail::npy_dtype_of<T>())) +
                     "', 'fortran_order': False, 'shape': " + detail::npy_shape_repr(shape) + ", }";
  if (!shape.empty()) {
    const std::size_t digits = std::to_string(shape[0]).size();
    dict.append(digits < growth_digits ? growth_digits - digits : 0, ' ');
  }
  constexpr std::size_t align = 64;
  auto padded_length = [&](std::size_t length_field) {
    const std::size_t used = 8 + length_field + dict.size() + 1;
    return dict.size() + 1 + (align - used % align);
  };
  const bool version1 = padded_length(2) <= 0xFFFF;
  const std::size_t header_length = padded_length(version1 ? 2 : 4);
  std::string preamble = "\x93NUMPY";
  preamble += static_cast<char>(version1 ? 1 : 2);
  preamble += '\0';
  for (std::size_t i = 0; i < (version1 ? 2U : 4U); ++i) {
    preamble += static_cast<char>((header_length >> (8 * i)) & 0xFFU);
  }
  dict.resize(header_length - 1, ' ');
  dict += '\n';
  out.write(preamble.data(), static_cast<std::streamsize>(preamble.size()));
  out.write(dict.data(), static_cast<std::streamsize>(dict.size()));
  if constexpr (std::endian::native == std::endian::little || sizeof(T) == 1) {
    out.write(reinterpret_cast<const char*>(data),
              static_cast<std::streamsize>(count) * static_cast<std::streamsize>(sizeof(T)));
  } else {
    std::vector<T> little(data, data + count);
    detail::npy_to_little_endian(std::span<T>(little));
    out.write(reinterpret_cast<const char*>(little.data()),
              static_cast<std::streamsize>(count) * static_cast<std::streamsize>(sizeof(T)));
  }
}

/// Writes an NpyArray; throws shape_error when its data does not match its shape.
template <NpyScalar T>
void write_npy(std::ostream& out, const NpyArray<T>& array) {
  const Index count = shape_size(array.shape);
  if (count != array.size()) {
    throw shape_error("write_npy: shape " + detail::npy_shape_repr(array.shape) + " holds " +
                      std::to_string(count) + " values but the array has " +
                      std::to_string(array.size()));
  }
  write_npy(out, array.data.data(), std::span<const Index>(array.shape));
}

/// Writes a .npy file (replacing it); throws edgescale::error naming the file if it cannot.
template <NpyScalar T>
void save_npy(const std::filesystem::path& path, const T* data, std::span<const Index> shape) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    throw error("cannot open .npy file " + detail::quote_name(path.string()) + " for writing");
  }
  write_npy(out, data, shape);
  out.flush();
  if (!out) {
    throw error("writing .npy file " + detail::quote_name(path.string()) + " failed");
  }
}

template <NpyScalar T>
void save_npy(const std::filesystem::path& path, const NpyArray<T>& array) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    throw error("cannot open .npy file " + detail::quote_name(path.string()) + " for writing");
  }
  write_npy(out, array);
  out.flush();
  if (!out) {
    throw error("writing .npy file " + detail::quote_name(path.string()) + " failed");
  }
}

/// Reads a .npy file holding exactly one array (trailing bytes are a format_error). A missing or
/// unreadable file raises edgescale::error, a corrupt one format_error, both naming the file.
template <NpyScalar T>
NpyArray<T> load_npy(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    const bool exists = std::filesystem::exists(path, ec);
    throw error(".npy file " + detail::quote_name(path.string()) +
                (exists ? " cannot be opened" : " does not exist"));
  }
  NpyArray<T> array = read_npy<T>(in, path.string());
  if (!detail::at_end(in)) {
    detail::npy_fail(path.string(), "trailing data after the array");
  }
  return array;
}

}  // namespace edgescale::data
