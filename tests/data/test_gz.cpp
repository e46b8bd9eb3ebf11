// The zlib-backed readers: built only when CMake found zlib (EDGESCALE_HAVE_ZLIB).
#ifdef EDGESCALE_HAVE_ZLIB

#include <edgescale/data/fashion_mnist.hpp>
#include <edgescale/data/gz.hpp>

#include "data/temp_dir.hpp"
#include <doctest/doctest.h>
#include <zlib.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using namespace edgescale;
using namespace edgescale::data;
using edgescale::test::file_bytes;
using edgescale::test::TempDir;
using edgescale::test::write_file;

namespace {

void write_gz(const std::filesystem::path& path, const std::string& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) ==
          static_cast<int>(bytes.size()));
  REQUIRE(gzclose(file) == Z_OK);
}

IdxImages gradient_images(Index count, Index rows, Index cols) {
  IdxImages images{count, rows, cols, {}};
  for (Index i = 0; i < count * rows * cols; ++i) {
    images.pixels.push_back(static_cast<std::uint8_t>((i * 7) % 256));
  }
  return images;
}

/// Writes the four Fashion-MNIST files of a fake dataset into `dir`, gzipped.
void write_fake_fashion_mnist(const std::filesystem::path& dir, Index train, Index test,
                              std::uint8_t label_offset = 0) {
  for (const auto& [prefix, count] : {std::pair<std::string, Index>{"train", train},
                                      std::pair<std::string, Index>{"t10k", test}}) {
    std::ostringstream images;
    write_idx_images(images, gradient_images(count, 28, 28));
    write_gz(dir / (prefix + "-images-idx3-ubyte.gz"), images.str());
    std::vector<std::uint8_t> labels;
    for (Index i = 0; i < count; ++i) {
      labels.push_back(static_cast<std::uint8_t>(i % 10 + label_offset));
    }
    std::ostringstream label_bytes;
    write_idx_labels(label_bytes, labels);
    write_gz(dir / (prefix + "-labels-idx1-ubyte.gz"), label_bytes.str());
  }
}

}  // namespace

TEST_CASE("gzipped IDX files read back what was written") {
  const TempDir dir;
  const IdxImages images = gradient_images(3, 5, 4);
  std::ostringstream image_bytes;
  write_idx_images(image_bytes, images);
  write_gz(dir.path() / "images.gz", image_bytes.str());
  CHECK(read_gz_file(dir.path() / "images.gz") == image_bytes.str());
  const IdxImages back = load_idx_images_gz(dir.path() / "images.gz");
  CHECK(back.count == 3);
  CHECK(back.rows == 5);
  CHECK(back.cols == 4);
  CHECK(back.pixels == images.pixels);

  const std::vector<std::uint8_t> labels{4, 0, 9};
  std::ostringstream label_bytes;
  write_idx_labels(label_bytes, labels);
  write_gz(dir.path() / "labels.gz", label_bytes.str());
  CHECK(load_idx_labels_gz(dir.path() / "labels.gz") == labels);

  // an uncompressed file reads as is (zlib's transparent mode)
  write_file(dir.path() / "plain-labels", label_bytes.str());
  CHECK(load_idx_labels_gz(dir.path() / "plain-labels") == labels);
  // a larger file spans several read chunks
  const std::string big(3'000'000, 'z');
  write_gz(dir.path() / "big.gz", big);
  CHECK(read_gz_file(dir.path() / "big.gz") == big);
}

TEST_CASE("gz errors: missing, corrupt, truncated, too large, wrong content") {
  const TempDir dir;
  try {
    (void)read_gz_file(dir.path() / "absent.gz");
    FAIL("no exception");
  } catch (const format_error&) {
    FAIL("a missing file is not a format error");
  } catch (const error& e) {
    CHECK(std::string(e.what()).find("absent.gz' does not exist") != std::string::npos);
  }

  std::string payload;
  for (int i = 0; i < 20000; ++i) {
    payload += std::to_string(i * 7919 % 10007);
  }
  write_gz(dir.path() / "good.gz", payload);
  const std::string gz = file_bytes(dir.path() / "good.gz");

  std::string corrupt = gz;
  for (std::size_t i = 20; i < 60; ++i) {
    corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5A);
  }
  write_file(dir.path() / "corrupt.gz", corrupt);
  CHECK_THROWS_WITH_AS(read_gz_file(dir.path() / "corrupt.gz"),
                       doctest::Contains("corrupt.gz' is corrupt"), format_error);

  std::string bad_crc = gz;
  bad_crc[bad_crc.size() - 6] = static_cast<char>(bad_crc[bad_crc.size() - 6] ^ 1);
  write_file(dir.path() / "crc.gz", bad_crc);
  CHECK_THROWS_WITH_AS(read_gz_file(dir.path() / "crc.gz"), doctest::Contains("crc.gz' is corrupt"),
                       format_error);

  write_file(dir.path() / "cut.gz", gz.substr(0, gz.size() / 2));
  CHECK_THROWS_WITH_AS(read_gz_file(dir.path() / "cut.gz"), doctest::Contains("cut.gz' is corrupt"),
                       format_error);

  CHECK_THROWS_WITH_AS(read_gz_file(dir.path() / "good.gz", 1000),
                       doctest::Contains("decompresses to more than 1000 bytes"), format_error);

  // valid gzip, but not an IDX file: the IDX reader names the file
  CHECK_THROWS_WITH_AS(load_idx_images_gz(dir.path() / "good.gz"),
                       doctest::Contains("good.gz': expected magic 0x00000803"), format_error);
}

TEST_CASE("load_fashion_mnist: a missing dataset says what to install") {
  const TempDir dir;
  CHECK_THROWS_WITH_AS(load_fashion_mnist<float>(Split::train, dir.path()),
                       doctest::Contains("install the Debian package dataset-fashion-mnist"),
                       error);
  CHECK_THROWS_WITH_AS(load_fashion_mnist<float>(Split::test, dir.path()),
                       doctest::Contains("t10k-images-idx3-ubyte.gz' not found"), error);
}

TEST_CASE("load_fashion_mnist reads a dataset from EDGESCALE_FASHION_MNIST_DIR") {
  const TempDir dir;
  write_fake_fashion_mnist(dir.path(), 20, 10);
  const char* old = std::getenv("EDGESCALE_FASHION_MNIST_DIR");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("EDGESCALE_FASHION_MNIST_DIR", dir.path().c_str(), 1);
  CHECK(default_fashion_mnist_dir() == dir.path());
  const Dataset<double> train = load_fashion_mnist<double>(Split::train);
  const Dataset<float> test = load_fashion_mnist<float>(Split::test);
  if (old != nullptr) {
    ::setenv("EDGESCALE_FASHION_MNIST_DIR", saved.c_str(), 1);
  } else {
    ::unsetenv("EDGESCALE_FASHION_MNIST_DIR");
  }
  CHECK(train.size() == 20);
  CHECK(test.size() == 10);
  CHECK(train.name == "fashion-mnist train");
  CHECK(test.name == "fashion-mnist test");
  CHECK(train.sample_shape == std::array<Index, 3>{1, 28, 28});
  CHECK(train.features(1, 0) == 7.0 / 255.0);
  CHECK(train.labels[13] == 3);
  ::unsetenv("EDGESCALE_FASHION_MNIST_DIR");
  CHECK(default_fashion_mnist_dir() == "/usr/share/datasets/fashion-mnist");
  if (old != nullptr) {
    ::setenv("EDGESCALE_FASHION_MNIST_DIR", saved.c_str(), 1);
  }
}

TEST_CASE("load_fashion_mnist rejects files that do not belong together") {
  const TempDir dir;
  write_fake_fashion_mnist(dir.path(), 20, 10);
  std::ostringstream labels;
  write_idx_labels(labels, std::vector<std::uint8_t>(19, 1));
  write_gz(dir.path() / "train-labels-idx1-ubyte.gz", labels.str());
  CHECK_THROWS_WITH_AS(load_fashion_mnist<float>(Split::train, dir.path()),
                       doctest::Contains("holds 20 images but"), format_error);
  CHECK_NOTHROW(load_fashion_mnist<float>(Split::test, dir.path()));

  const TempDir bad_labels;
  write_fake_fashion_mnist(bad_labels.path(), 20, 10, 1);  // labels 1..10
  CHECK_THROWS_WITH_AS(load_fashion_mnist<float>(Split::test, bad_labels.path()),
                       doctest::Contains("label 10 of sample 9"), format_error);
}

TEST_CASE("the real Fashion-MNIST, when installed (Debian: dataset-fashion-mnist)") {
  const std::filesystem::path dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(dir / "train-images-idx3-ubyte.gz")) {
    MESSAGE("Fashion-MNIST is not installed in " << dir << ": real-data checks not run");
    return;
  }
  const IdxImages raw = load_idx_images_gz(dir / "t10k-images-idx3-ubyte.gz");
  CHECK(raw.count == 10000);
  CHECK(raw.rows == 28);
  CHECK(raw.cols == 28);

  const Dataset<float> train = load_fashion_mnist<float>(Split::train, dir);
  const Dataset<float> test = load_fashion_mnist<float>(Split::test, dir);
  CHECK(train.size() == 60000);
  CHECK(test.size() == 10000);
  CHECK(train.sample_size() == 784);
  CHECK(train.classes == 10);
  std::array<int, 10> train_counts{};
  std::array<int, 10> test_counts{};
  for (const std::int32_t y : train.labels) {
    REQUIRE((y >= 0 && y < 10));
    ++train_counts[static_cast<std::size_t>(y)];
  }
  for (const std::int32_t y : test.labels) {
    REQUIRE((y >= 0 && y < 10));
    ++test_counts[static_cast<std::size_t>(y)];
  }
  for (std::size_t c = 0; c < 10; ++c) {
    CHECK(train_counts[c] == 6000);  // Fashion-MNIST is balanced
    CHECK(test_counts[c] == 1000);
  }
  CHECK(train.features.minCoeff() == 0.0F);
  CHECK(train.features.maxCoeff() == 1.0F);
  // the published standardisation constants are the training set's mean and deviation
  const double mean = train.features.cast<double>().mean();
  const double variance = (train.features.cast<double>().array() - mean).square().mean();
  CHECK(mean == doctest::Approx(fashion_mnist_standardize.mean).epsilon(1e-3));
  CHECK(std::sqrt(variance) == doctest::Approx(fashion_mnist_standardize.stddev).epsilon(1e-3));
  const Dataset<float> standard =
      load_fashion_mnist<float>(Split::train, dir, fashion_mnist_standardize);
  CHECK(standard.features.cast<double>().mean() == doctest::Approx(0.0).epsilon(0.01));
}

#endif  // EDGESCALE_HAVE_ZLIB
