// edgescale/data/idx.hpp — the IDX format of MNIST and Fashion-MNIST.
//
// Layout (LeCun, Cortes, Burges, "THE MNIST DATABASE", the IDX file format): a 4-byte magic
// 0x00 0x00 <type> <rank>, then <rank> big-endian uint32 dimensions, then the values in row-major
// order. Images are 0x00000803 (unsigned bytes, count x rows x cols), labels 0x00000801 (unsigned
// bytes, count). Only unsigned bytes are read: that is what every MNIST-family dataset ships.
//
// The readers take a std::istream (a gzipped file is decompressed by data/gz.hpp, which needs
// zlib) and a name used in every error message. A file that is truncated, has the wrong magic,
// declares absurd dimensions or carries trailing bytes raises edgescale::format_error; the
// declared size is checked against a limit and, in a seekable stream, against the bytes left
// before anything is allocated.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/detail/stream.hpp>

#include <array>
#include <cstdint>
#include <istream>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgescale::data {

/// Magic of an IDX file of unsigned-byte images (3 dimensions: count, rows, cols).
inline constexpr std::uint32_t idx_images_magic = 0x00000803;
/// Magic of an IDX file of unsigned-byte labels (1 dimension: count).
inline constexpr std::uint32_t idx_labels_magic = 0x00000801;
/// Largest payload a header may declare (4 GiB; Fashion-MNIST's training images are 47 MB). A
/// corrupt header beyond it is rejected before any allocation.
inline constexpr std::uint64_t idx_max_payload_bytes = std::uint64_t{1} << 32U;

/// Images read from an IDX file: `count` images of `rows` x `cols` unsigned bytes, stored one
/// image after the other, each row-major.
///
///     std::ifstream file("t10k-images-idx3-ubyte", std::ios::binary);
///     const IdxImages images = read_idx_images(file, "t10k-images-idx3-ubyte");
///     const std::uint8_t top_left = images.image(0)[0];
struct IdxImages {
  Index count = 0;
  Index rows = 0;
  Index cols = 0;
  std::vector<std::uint8_t> pixels;

  [[nodiscard]] Index image_size() const { return rows * cols; }
  /// The pixels of image `i` (row-major), a view into `pixels`.
  [[nodiscard]] std::span<const std::uint8_t> image(Index i) const {
    return std::span<const std::uint8_t>(pixels).subspan(static_cast<std::size_t>(i * image_size()),
                                                         static_cast<std::size_t>(image_size()));
  }
};

namespace detail {

inline std::string idx_type_name(std::uint32_t type) {
  switch (type) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "short";
    case 0x0C:
      return "int";
    case 0x0D:
      return "float";
    case 0x0E:
      return "double";
    default:
      return "unknown type " + hex32(type);
  }
}

/// "0x00000801 (unsigned byte, 1 dimension)", or "(not an IDX file)" when the zero bytes are not.
inline std::string describe_idx_magic(std::uint32_t magic) {
  if ((magic >> 16U) != 0) {
    return hex32(magic) + " (not an IDX file)";
  }
  const std::uint32_t rank = magic & 0xFFU;
  return hex32(magic) + " (" + idx_type_name((magic >> 8U) & 0xFFU) + ", " + std::to_string(rank) +
         (rank == 1 ? " dimension)" : " dimensions)");
}

[[noreturn]] inline void idx_fail(std::string_view name, const std::string& what) {
  throw format_error("IDX file " + quote_name(name) + ": " + what);
}

/// Reads a big-endian uint32, or fails naming which header field was cut short.
inline std::uint32_t read_idx_u32(std::istream& in, std::string_view name, std::string_view field) {
  std::array<unsigned char, 4> b{};
  const std::uint64_t got = read_some(in, reinterpret_cast<char*>(b.data()), b.size());
  if (got != b.size()) {
    idx_fail(name, "truncated header: expected 4 bytes of " + std::string(field) + ", found " +
                       std::to_string(got));
  }
  return (std::uint32_t{b[0]} << 24U) | (std::uint32_t{b[1]} << 16U) | (std::uint32_t{b[2]} << 8U) |
         std::uint32_t{b[3]};
}

/// Reads an unsigned-byte IDX file of the given magic: its dimensions and its payload. `describe`
/// turns the dimensions into words for messages ("60000 images of 28x28").
template <class Describe>
std::vector<std::uint8_t> read_idx_payload(std::istream& in, std::string_view name,
                                           std::uint32_t expected_magic,
                                           std::span<std::uint32_t> dims, Describe describe) {
  const std::uint32_t magic = read_idx_u32(in, name, "magic number");
  if (magic != expected_magic) {
    idx_fail(name, "expected magic " + describe_idx_magic(expected_magic) + ", found " +
                       describe_idx_magic(magic));
  }
  for (std::size_t i = 0; i < dims.size(); ++i) {
    dims[i] = read_idx_u32(in, name, "dimension " + std::to_string(i));
  }
  std::uint64_t bytes = 1;
  std::string declared;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    declared += (i == 0 ? "" : " x ") + std::to_string(dims[i]);
  }
  for (const std::uint32_t d : dims) {
    const auto product = checked_product(bytes, d, idx_max_payload_bytes);
    if (!product) {
      idx_fail(name, "header declares dimensions " + declared + ", more than the limit of " +
                         std::to_string(idx_max_payload_bytes) + " bytes (corrupt header?)");
    }
    bytes = *product;
  }
  if (const auto left = remaining_bytes(in); left && *left != bytes) {
    idx_fail(name, (*left < bytes ? "truncated: expected " : "trailing data: expected ") +
                       std::to_string(bytes) + " data bytes (" + describe() + "), found " +
                       std::to_string(*left));
  }
  std::vector<std::uint8_t> payload;
  const std::uint64_t got = append_values(in, payload, bytes);
  if (got != bytes) {
    idx_fail(name, "truncated: expected " + std::to_string(bytes) + " data bytes (" + describe() +
                       "), found " + std::to_string(got));
  }
  if (!at_end(in)) {
    idx_fail(name, "trailing data after the " + std::to_string(bytes) + " data bytes (" +
                       describe() + ")");
  }
  return payload;
}

inline void write_idx_u32(std::ostream& out, std::uint32_t v) {
  const std::array<char, 4> b{static_cast<char>(v >> 24U), static_cast<char>(v >> 16U),
                              static_cast<char>(v >> 8U), static_cast<char>(v)};
  out.write(b.data(), b.size());
}

inline std::uint32_t idx_dimension(Index d, std::string_view what) {
  if (d < 0 || static_cast<std::uint64_t>(d) > 0xFFFFFFFFULL) {
    throw argument_error("IDX " + std::string(what) + " " + std::to_string(d) +
                         " does not fit the format's uint32");
  }
  return static_cast<std::uint32_t>(d);
}

}  // namespace detail

/// Reads an IDX file of unsigned-byte images (magic 0x00000803). `name` names the file in errors.
inline IdxImages read_idx_images(std::istream& in, std::string_view name) {
  std::array<std::uint32_t, 3> dims{};
  auto describe = [&] {
    return std::to_string(dims[0]) + " images of " + std::to_string(dims[1]) + "x" +
           std::to_string(dims[2]);
  };
  std::vector<std::uint8_t> pixels = detail::read_idx_payload(
      in, name, idx_images_magic, std::span<std::uint32_t>(dims), describe);
  if (dims[1] == 0 || dims[2] == 0) {
    detail::idx_fail(name, "expected images of at least 1x1 pixels, found " + describe());
  }
  return IdxImages{static_cast<Index>(dims[0]), static_cast<Index>(dims[1]),
                   static_cast<Index>(dims[2]), std::move(pixels)};
}

/// Reads an IDX file of unsigned-byte labels (magic 0x00000801). `name` names the file in errors.
inline std::vector<std::uint8_t> read_idx_labels(std::istream& in, std::string_view name) {
  std::array<std::uint32_t, 1> dims{};
  auto describe = [&] { return std::to_string(dims[0]) + " labels"; };
  return detail::read_idx_payload(in, name, idx_labels_magic, std::span<std::uint32_t>(dims),
                                  describe);
}

/// Writes images in the IDX format (to build test files or subsets that MNIST tools can read).
inline void write_idx_images(std::ostream& out, const IdxImages& images) {
  const std::uint32_t count = detail::idx_dimension(images.count, "image count");
  const std::uint32_t rows = detail::idx_dimension(images.rows, "row count");
  const std::uint32_t cols = detail::idx_dimension(images.cols, "column count");
  if (static_cast<std::uint64_t>(images.pixels.size()) !=
      std::uint64_t{count} * std::uint64_t{rows} * std::uint64_t{cols}) {
    throw argument_error("IDX images: " + std::to_string(images.pixels.size()) +
                         " pixels do not make " + std::to_string(count) + " images of " +
                         std::to_string(rows) + "x" + std::to_string(cols));
  }
  detail::write_idx_u32(out, idx_images_magic);
  detail::write_idx_u32(out, count);
  detail::write_idx_u32(out, rows);
  detail::write_idx_u32(out, cols);
  out.write(reinterpret_cast<const char*>(images.pixels.data()),
            static_cast<std::streamsize>(images.pixels.size()));
}

/// Writes labels in the IDX format.
inline void write_idx_labels(std::ostream& out, std::span<const std::uint8_t> labels) {
  detail::write_idx_u32(out, idx_labels_magic);
  detail::write_idx_u32(out,
                        detail::idx_dimension(static_cast<Index>(labels.size()), "label count"));
  out.write(reinterpret_cast<const char*>(labels.data()),
            static_cast<std::streamsize>(labels.size()));
}

}  // namespace edgescale::data
