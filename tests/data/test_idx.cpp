#include <edgescale/data/idx.hpp>

#include "data/unseekable.hpp"
#include <doctest/doctest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

using namespace edgescale;
using namespace edgescale::data;
using edgescale::test::UnseekableStream;

namespace {

IdxImages make_images(Index count, Index rows, Index cols) {
  IdxImages images{count, rows, cols, {}};
  images.pixels.resize(static_cast<std::size_t>(count * rows * cols));
  for (std::size_t i = 0; i < images.pixels.size(); ++i) {
    images.pixels[i] = static_cast<std::uint8_t>((i * 37U + 11U) % 256U);
  }
  return images;
}

std::string image_bytes(const IdxImages& images) {
  std::ostringstream out;
  write_idx_images(out, images);
  return out.str();
}

std::string label_bytes(const std::vector<std::uint8_t>& labels) {
  std::ostringstream out;
  write_idx_labels(out, labels);
  return out.str();
}

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24U), static_cast<char>(v >> 16U), static_cast<char>(v >> 8U),
          static_cast<char>(v)};
}

IdxImages images_from(const std::string& bytes, const std::string& name = "images.idx") {
  std::istringstream in(bytes);
  return read_idx_images(in, name);
}

std::vector<std::uint8_t> labels_from(const std::string& bytes,
                                      const std::string& name = "labels.idx") {
  std::istringstream in(bytes);
  return read_idx_labels(in, name);
}

}  // namespace

TEST_CASE("IDX images and labels round-trip, seekable or not") {
  const IdxImages images = make_images(5, 4, 3);
  const std::vector<std::uint8_t> labels{0, 9, 3, 3, 7};
  const std::string ib = image_bytes(images);
  const std::string lb = label_bytes(labels);
  CHECK(ib.size() == 16 + 5 * 4 * 3);
  CHECK(ib.substr(0, 4) == be32(0x00000803));
  CHECK(ib.substr(4, 4) == be32(5));

  const IdxImages back = images_from(ib);
  CHECK(back.count == 5);
  CHECK(back.rows == 4);
  CHECK(back.cols == 3);
  CHECK(back.pixels == images.pixels);
  CHECK(back.image(2)[1] == images.pixels[2 * 12 + 1]);
  CHECK(labels_from(lb) == labels);

  UnseekableStream pipe_images(ib);
  CHECK(read_idx_images(pipe_images, "pipe").pixels == images.pixels);
  UnseekableStream pipe_labels(lb);
  CHECK(read_idx_labels(pipe_labels, "pipe") == labels);
}

TEST_CASE("IDX: zero images is a valid file") {
  const IdxImages empty = images_from(image_bytes(make_images(0, 28, 28)));
  CHECK(empty.count == 0);
  CHECK(empty.pixels.empty());
  CHECK(labels_from(label_bytes({})).empty());
}

TEST_CASE("IDX: a wrong magic names the file, what was expected and what was found") {
  const std::string labels = label_bytes({1, 2, 3});
  CHECK_THROWS_WITH_AS(images_from(labels, "train-images"), doctest::Contains("'train-images'"),
                       format_error);
  CHECK_THROWS_WITH_AS(
      images_from(labels, "train-images"),
      doctest::Contains("expected magic 0x00000803 (unsigned byte, 3 dimensions), found "
                        "0x00000801 (unsigned byte, 1 dimension)"),
      format_error);
  CHECK_THROWS_WITH_AS(labels_from(image_bytes(make_images(1, 2, 2)), "train-labels"),
                       doctest::Contains("expected magic 0x00000801"), format_error);
  CHECK_THROWS_WITH_AS(images_from("\x89PNG\r\n\x1a\n and more", "picture.png"),
                       doctest::Contains("not an IDX file"), format_error);
  // float images: a valid IDX file of a type we do not read
  CHECK_THROWS_WITH_AS(images_from(be32(0x00000D03) + be32(1) + be32(1) + be32(1) + "abcd", "f"),
                       doctest::Contains("float, 3 dimensions"), format_error);
}

TEST_CASE("IDX: every truncation raises format_error naming the file") {
  const std::string full = image_bytes(make_images(3, 4, 5));
  for (std::size_t n = 0; n < full.size(); ++n) {
    CAPTURE(n);
    CHECK_THROWS_WITH_AS(images_from(full.substr(0, n), "cut.idx"), doctest::Contains("'cut.idx'"),
                         format_error);
    UnseekableStream pipe(full.substr(0, n));
    CHECK_THROWS_WITH_AS(read_idx_images(pipe, "cut.idx"), doctest::Contains("truncated"),
                         format_error);
  }
  CHECK_THROWS_WITH_AS(images_from(full.substr(0, 10), "cut.idx"),
                       doctest::Contains("truncated header"), format_error);
  CHECK_THROWS_WITH_AS(images_from(full.substr(0, 20), "cut.idx"),
                       doctest::Contains("expected 60 data bytes (3 images of 4x5), found 4"),
                       format_error);
  const std::string labels = label_bytes({1, 2, 3, 4});
  CHECK_THROWS_WITH_AS(labels_from(labels.substr(0, labels.size() - 1), "l"),
                       doctest::Contains("expected 4 data bytes (4 labels), found 3"),
                       format_error);
}

TEST_CASE("IDX: trailing garbage is rejected") {
  const std::string full = image_bytes(make_images(2, 2, 2)) + "junk";
  CHECK_THROWS_WITH_AS(images_from(full, "extra.idx"), doctest::Contains("trailing data"),
                       format_error);
  UnseekableStream pipe(full);
  CHECK_THROWS_WITH_AS(read_idx_images(pipe, "extra.idx"), doctest::Contains("'extra.idx'"),
                       format_error);
  CHECK_THROWS_AS(labels_from(label_bytes({1}) + "x"), format_error);
}

TEST_CASE("IDX: absurd dimensions are rejected before allocating") {
  const std::string magic = be32(idx_images_magic);
  // 2^96 bytes: overflows 64 bits
  CHECK_THROWS_WITH_AS(
      images_from(magic + be32(0xFFFFFFFF) + be32(0xFFFFFFFF) + be32(0xFFFFFFFF), "huge"),
      doctest::Contains("more than the limit"), format_error);
  // 2^40 bytes: beyond the limit
  CHECK_THROWS_WITH_AS(images_from(magic + be32(1U << 20U) + be32(1024) + be32(1024), "huge"),
                       doctest::Contains("4294967296 bytes"), format_error);
  // 1.6 GB declared, a few bytes present: the seekable check stops it, the chunked read too
  const std::string liar = magic + be32(2000000) + be32(28) + be32(28) + "tiny";
  CHECK_THROWS_WITH_AS(images_from(liar, "liar"),
                       doctest::Contains("expected 1568000000 data bytes (2000000 images of "
                                         "28x28), found 4"),
                       format_error);
  UnseekableStream pipe(liar);
  CHECK_THROWS_WITH_AS(read_idx_images(pipe, "liar"), doctest::Contains("found 4"), format_error);
  // images of no pixels
  CHECK_THROWS_WITH_AS(images_from(magic + be32(5) + be32(0) + be32(28), "flat"),
                       doctest::Contains("at least 1x1"), format_error);
}

TEST_CASE("IDX writer rejects pixels that do not match the dimensions") {
  IdxImages images = make_images(2, 3, 3);
  images.pixels.pop_back();
  std::ostringstream out;
  CHECK_THROWS_AS(write_idx_images(out, images), argument_error);
}
