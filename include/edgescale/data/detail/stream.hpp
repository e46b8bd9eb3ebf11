// edgescale/data/detail/stream.hpp — defensive binary reading shared by the IDX and .npy readers.
//
// A corrupt or hostile header can declare terabytes of payload. The readers never trust it: they
// compare the declared size with the bytes left in a seekable stream before allocating, and read
// an unseekable stream in bounded chunks, so memory grows only with bytes that really arrive.
#pragma once

#include <edgescale/core/error.hpp>

#include <algorithm>
#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace edgescale::data::detail {

/// Bytes read per step from a stream whose length is unknown.
inline constexpr std::uint64_t read_chunk_bytes = std::uint64_t{1} << 20;

/// Bytes between the read position and the end, or nullopt when the stream cannot seek (a pipe, a
/// decompressing stream). The read position and the stream state are left as they were.
inline std::optional<std::uint64_t> remaining_bytes(std::istream& in) {
  if (!in.good()) {
    return std::nullopt;
  }
  const std::istream::pos_type here = in.tellg();
  if (here == std::istream::pos_type(-1)) {
    in.clear();
    return std::nullopt;
  }
  in.seekg(0, std::ios::end);
  const std::istream::pos_type end = in.tellg();
  in.clear();
  in.seekg(here);
  if (end == std::istream::pos_type(-1) || !in.good() || end < here) {
    in.clear();
    in.seekg(here);
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(end - here);
}

/// Reads up to `n` bytes into `dst`; returns how many arrived (fewer only at the stream's end).
inline std::uint64_t read_some(std::istream& in, char* dst, std::uint64_t n) {
  std::uint64_t done = 0;
  while (done < n && in.good()) {
    const auto step = static_cast<std::streamsize>(std::min<std::uint64_t>(n - done, 1U << 30U));
    in.read(dst + done, step);
    done += static_cast<std::uint64_t>(in.gcount());
  }
  return done;
}

/// Appends up to `n` values of a trivially copyable type, read as raw bytes, to `out`, growing
/// `out` one chunk at a time so that a false length in a header cannot make us allocate more than
/// the stream holds. Returns the count of whole values read (a cut-off value is dropped).
template <class Value>
std::uint64_t append_values(std::istream& in, std::vector<Value>& out, std::uint64_t n) {
  static_assert(std::is_trivially_copyable_v<Value>, "append_values reads raw bytes");
  constexpr std::uint64_t chunk = std::max<std::uint64_t>(1, read_chunk_bytes / sizeof(Value));
  std::uint64_t done = 0;
  while (done < n) {
    const std::uint64_t step = std::min(n - done, chunk);
    const std::size_t old_size = out.size();
    out.resize(old_size + static_cast<std::size_t>(step));
    const std::uint64_t got =
        read_some(in, reinterpret_cast<char*>(out.data() + old_size), step * sizeof(Value)) /
        sizeof(Value);
    done += got;
    if (got < step) {
      out.resize(old_size + static_cast<std::size_t>(got));
      break;
    }
  }
  return done;
}

/// True when the stream has no byte left (it may have been positioned in the middle of a file).
/// Call it after a successful read: a failed stream reports its end as reached.
inline bool at_end(std::istream& in) {
  return in.peek() == std::istream::traits_type::eof();
}

/// Returns `a * b`, or nullopt when the product exceeds `limit` (or 64 bits).
inline std::optional<std::uint64_t> checked_product(std::uint64_t a, std::uint64_t b,
                                                    std::uint64_t limit) {
  if (a != 0 && b > limit / a) {
    return std::nullopt;
  }
  return a * b;
}

/// "0x00000803": how file magics are written in the IDX and NumPy documentation.
inline std::string hex32(std::uint32_t v) {
  constexpr std::string_view digits = "0123456789abcdef";
  std::string s = "0x00000000";
  for (int i = 9; i >= 2; --i) {
    s[static_cast<std::size_t>(i)] = digits[v & 0xFU];
    v >>= 4U;
  }
  return s;
}

/// Quotes a name the way every data-area message refers to a file or tensor.
inline std::string quote_name(std::string_view name) {
  std::string s;
  s.reserve(name.size() + 2);
  s += '\'';
  s += name;
  s += '\'';
  return s;
}

}  // namespace edgescale::data::detail
