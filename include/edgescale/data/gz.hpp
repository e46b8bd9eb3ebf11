// edgescale/data/gz.hpp — gzip-compressed files, through zlib (OPTIONAL: link ZLIB::ZLIB).
//
// The data area's core reads std::istreams with the standard library alone; this header is the
// one place that needs zlib, so neither data.hpp nor edgescale.hpp includes it. MNIST-family
// datasets ship as gzipped IDX files: decompress the whole file into memory (47 MB for
// Fashion-MNIST's training images) and read it with the stream readers of idx.hpp.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/data/detail/stream.hpp>
#include <edgescale/data/idx.hpp>

#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace edgescale::data {

/// Most bytes read_gz_file decompresses by default: a guard against a corrupt or hostile file
/// that expands without end (a gzip "bomb").
inline constexpr std::uint64_t gz_max_bytes = std::uint64_t{1} << 32U;

/// The decompressed contents of a gzip file. A file that is not gzipped is returned as is (zlib's
/// transparent mode), so an already decompressed IDX file reads the same way. A missing or
/// unopenable file raises edgescale::error, a corrupt or truncated one format_error (with zlib's
/// reason), one that expands beyond `max_bytes` format_error; every message names the file.
///
///     const std::string bytes = read_gz_file(dir / "t10k-labels-idx1-ubyte.gz");
inline std::string read_gz_file(const std::filesystem::path& path,
                                std::uint64_t max_bytes = gz_max_bytes) {
  const std::string name = detail::quote_name(path.string());
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw error("gzip file " + name + " does not exist");
  }
#ifdef _WIN32
  gzFile raw = gzopen_w(path.c_str(), "rb");
#else
  gzFile raw = gzopen(path.c_str(), "rb");
#endif
  if (raw == nullptr) {
    throw error("cannot open gzip file " + name);
  }
  const std::unique_ptr<gzFile_s, decltype(&gzclose)> file(raw, &gzclose);
  auto zlib_reason = [&] {
    int code = Z_OK;
    const char* message = gzerror(file.get(), &code);
    return std::string(message != nullptr && *message != '\0' ? message : "unknown zlib error");
  };
  constexpr unsigned chunk = 1U << 20U;
  std::string bytes;
  for (;;) {
    const std::size_t old_size = bytes.size();
    bytes.resize(old_size + chunk);
    const int got = gzread(file.get(), bytes.data() + old_size, chunk);
    if (got < 0) {
      throw format_error("gzip file " + name + " is corrupt: " + zlib_reason());
    }
    bytes.resize(old_size + static_cast<std::size_t>(got));
    if (bytes.size() > max_bytes) {
      throw format_error("gzip file " + name + " decompresses to more than " +
                         std::to_string(max_bytes) + " bytes");
    }
    if (got == 0) {
      break;
    }
  }
  // A stream cut short inside the compressed data ends the reads quietly; zlib records it.
  int code = Z_OK;
  gzerror(file.get(), &code);
  if (code != Z_OK) {
    throw format_error("gzip file " + name + " is corrupt: " + zlib_reason());
  }
  return bytes;
}

/// IDX images from a gzipped (or plain) file; errors name the file.
inline IdxImages load_idx_images_gz(const std::filesystem::path& path) {
  std::istringstream in(read_gz_file(path));
  return read_idx_images(in, path.string());
}

/// IDX labels from a gzipped (or plain) file; errors name the file.
inline std::vector<std::uint8_t> load_idx_labels_gz(const std::filesystem::path& path) {
  std::istringstream in(read_gz_file(path));
  return read_idx_labels(in, path.string());
}

}  // namespace edgescale::data
