// edgescale/data/fashion_mnist.hpp — the Fashion-MNIST dataset (OPTIONAL: zlib, via gz.hpp).
//
// Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 70 000 grayscale 28x28 images of clothing in 10
// classes, 60 000 for training and 10 000 for testing, as four gzipped IDX files. Debian ships them
// in the package dataset-fashion-mnist under /usr/share/datasets/fashion-mnist; the environment
// variable EDGESCALE_FASHION_MNIST_DIR points elsewhere (a directory with the same four files,
// gzipped or not).
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/data/gz.hpp>

#include <array>
#include <concepts>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace edgescale::data {

/// Which part of a dataset.
enum class Split { train, test };

/// The class names, in label order.
inline constexpr std::array<std::string_view, 10> fashion_mnist_classes{
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/// Mean and standard deviation of the training pixels scaled to [0, 1] (computed from the 47M
/// training pixels; the test in tests/data/test_gz.cpp recomputes them).
inline constexpr Standardize fashion_mnist_standardize{0.2860, 0.3530};

/// $EDGESCALE_FASHION_MNIST_DIR if set and not empty, else /usr/share/datasets/fashion-mnist.
inline std::filesystem::path default_fashion_mnist_dir() {
  if (const char* dir = std::getenv("EDGESCALE_FASHION_MNIST_DIR"); dir != nullptr && *dir != 0) {
    return dir;
  }
  return "/usr/share/datasets/fashion-mnist";
}

namespace detail {

/// DIR/<file>.gz, or DIR/<file> if only the decompressed file is there.
inline std::filesystem::path fashion_mnist_file(const std::filesystem::path& dir,
                                                const std::string& file) {
  std::error_code ec;
  const std::filesystem::path gz = dir / (file + ".gz");
  if (std::filesystem::exists(gz, ec)) {
    return gz;
  }
  if (std::filesystem::exists(dir / file, ec)) {
    return dir / file;
  }
  throw error("Fashion-MNIST file " + quote_name(gz.string()) +
              " not found: install the Debian package dataset-fashion-mnist "
              "(apt install dataset-fashion-mnist), or set EDGESCALE_FASHION_MNIST_DIR to a "
              "directory holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
              "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz");
}

}  // namespace detail

/// One split of Fashion-MNIST: 784 x N features (1x28x28, pixels in [0, 1], then standardised if
/// asked, e.g. with fashion_mnist_standardize), labels in [0, 10), named "fashion-mnist train" or
/// "fashion-mnist test".
///
///     const auto train = load_fashion_mnist<float>(Split::train);
///     const auto test = load_fashion_mnist<float>(Split::test, default_fashion_mnist_dir(),
///                                                 fashion_mnist_standardize);
///
/// Throws edgescale::error when a file is missing (saying what to install), format_error when a
/// file is corrupt or the images and labels do not match.
template <std::floating_point T>
Dataset<T> load_fashion_mnist(Split split,
                              const std::filesystem::path& dir = default_fashion_mnist_dir(),
                              Standardize standardize = {}) {
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const std::filesystem::path images_file =
      detail::fashion_mnist_file(dir, prefix + "-images-idx3-ubyte");
  const std::filesystem::path labels_file =
      detail::fashion_mnist_file(dir, prefix + "-labels-idx1-ubyte");
  const IdxImages images = load_idx_images_gz(images_file);
  const std::vector<std::uint8_t> labels = load_idx_labels_gz(labels_file);
  if (static_cast<Index>(labels.size()) != images.count) {
    throw format_error("Fashion-MNIST: " + detail::quote_name(images_file.string()) + " holds " +
                       std::to_string(images.count) + " images but " +
                       detail::quote_name(labels_file.string()) + " holds " +
                       std::to_string(labels.size()) + " labels");
  }
  const std::string name = split == Split::train ? "fashion-mnist train" : "fashion-mnist test";
  return from_idx<T>(images, labels, static_cast<Index>(fashion_mnist_classes.size()), name,
                     standardize);
}

}  // namespace edgescale::data
