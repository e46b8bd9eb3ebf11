// edgescale/data/dataset.hpp — an in-memory labelled dataset and mini-batches over it.
//
// A dataset is a features x samples matrix (one sample per column, CHW order, as a batch is in
// core/tensor.hpp) and one int32 label per sample. Batches are copied into storage the sampler
// owns and reuses, so an epoch allocates nothing once the sampler exists; shuffling takes an
// explicit generator and draws with edgescale::shuffle, so a seed gives the same order with every
// standard library (DESIGN §4).
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/error.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/data/idx.hpp>

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgescale::data {

/// A labelled dataset held in memory.
///
///     Dataset<float> train = load_fashion_mnist<float>(Split::train);   // 784 x 60000
///     require_sample_size(train, 784, "LeNet-5");
///     auto [fit, val] = split(train, 50000);
template <std::floating_point T>
struct Dataset {
  Matrix<T> features;                   ///< sample_size() x size(), one sample per column, CHW
  std::vector<std::int32_t> labels;     ///< one class index in [0, classes) per sample
  std::array<Index, 3> sample_shape{};  ///< C, H, W (a feature vector of d values is 1 x 1 x d)
  Index classes = 0;
  std::string name;  ///< used in error messages: "fashion-mnist train"

  [[nodiscard]] Index size() const { return features.cols(); }
  [[nodiscard]] Index sample_size() const { return features.rows(); }
};

/// Pixel scaling applied after mapping bytes to [0, 1]: x = (p / 255 - mean) / stddev. The default
/// leaves pixels in [0, 1].
struct Standardize {
  double mean = 0.0;
  double stddev = 1.0;
};

namespace detail {

inline std::string shape_string(const std::array<Index, 3>& shape) {
  return std::to_string(shape[0]) + "x" + std::to_string(shape[1]) + "x" + std::to_string(shape[2]);
}

}  // namespace detail

/// Throws shape_error unless the parts of `data` agree: one label per column, `sample_shape`
/// multiplying to the sample size, labels in [0, classes).
template <std::floating_point T>
void validate(const Dataset<T>& data) {
  const std::string name = detail::quote_name(data.name);
  if (static_cast<Index>(data.labels.size()) != data.size()) {
    throw shape_error("dataset " + name + " has " + std::to_string(data.size()) + " samples but " +
                      std::to_string(data.labels.size()) + " labels");
  }
  const auto& s = data.sample_shape;
  if (s[0] * s[1] * s[2] != data.sample_size()) {
    throw shape_error("dataset " + name + " has samples of " + std::to_string(data.sample_size()) +
                      " values but its sample shape is " + detail::shape_string(s));
  }
  for (std::size_t i = 0; i < data.labels.size(); ++i) {
    if (data.labels[i] < 0 || data.labels[i] >= data.classes) {
      throw shape_error("dataset " + name + ": label " + std::to_string(data.labels[i]) +
                        " of sample " + std::to_string(i) + " is outside [0, " +
                        std::to_string(data.classes) + ")");
    }
  }
}

/// A dataset from IDX images and labels: pixels scaled to [0, 1], then standardised if asked.
/// Throws format_error when the counts differ or a label is not below `classes` (the files do not
/// belong together), argument_error for classes < 1 or stddev <= 0.
template <std::floating_point T>
Dataset<T> from_idx(const IdxImages& images, std::span<const std::uint8_t> labels, Index classes,
                    std::string name, Standardize standardize = {}) {
  if (classes < 1) {
    throw argument_error("dataset " + detail::quote_name(name) +
                         ": classes must be at least 1, got " + std::to_string(classes));
  }
  if (!(standardize.stddev > 0.0)) {
    throw argument_error("dataset " + detail::quote_name(name) +
                         ": standardisation needs stddev > 0, got " +
                         std::to_string(standardize.stddev));
  }
  if (static_cast<Index>(labels.size()) != images.count) {
    throw format_error("dataset " + detail::quote_name(name) + ": " + std::to_string(images.count) +
                       " images but " + std::to_string(labels.size()) + " labels");
  }
  if (static_cast<Index>(images.pixels.size()) != images.count * images.image_size()) {
    throw format_error("dataset " + detail::quote_name(name) + ": " +
                       std::to_string(images.pixels.size()) + " pixels do not make " +
                       std::to_string(images.count) + " images of " + std::to_string(images.rows) +
                       "x" + std::to_string(images.cols));
  }
  Dataset<T> data;
  data.name = std::move(name);
  data.classes = classes;
  data.sample_shape = {1, images.rows, images.cols};
  data.labels.resize(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= classes) {
      throw format_error("dataset " + detail::quote_name(data.name) + ": label " +
                         std::to_string(labels[i]) + " of sample " + std::to_string(i) +
                         " is not below the class count " + std::to_string(classes));
    }
    data.labels[i] = labels[i];
  }
  // An IDX image is row-major rows x cols, which is CHW with C = 1: each image is one column.
  using ByteMatrix = Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic>;
  const Eigen::Map<const ByteMatrix> bytes(images.pixels.data(), images.image_size(), images.count);
  data.features = bytes.cast<T>() / T(255);
  if (standardize.mean != 0.0 || standardize.stddev != 1.0) {
    data.features = (data.features.array() - static_cast<T>(standardize.mean)) /
                    static_cast<T>(standardize.stddev);
  }
  return data;
}

/// Throws shape_error unless the samples of `data` have `expected` values: the check to make when
/// a dataset meets a network whose input size is fixed.
template <std::floating_point T>
void require_sample_size(const Dataset<T>& data, Index expected, std::string_view network_name) {
  if (data.sample_size() != expected) {
    throw shape_error("dataset " + detail::quote_name(data.name) + " has samples of " +
                      std::to_string(data.sample_size()) + " values (" +
                      detail::shape_string(data.sample_shape) + ") but network " +
                      detail::quote_name(network_name) + " expects " + std::to_string(expected));
  }
}

/// The samples `indices` of `data`, in that order (repeats allowed: a bootstrap sample is a
/// subset). Throws argument_error for an index outside [0, size).
template <std::floating_point T>
Dataset<T> subset(const Dataset<T>& data, std::span<const Index> indices) {
  validate(data);
  Dataset<T> out;
  out.name = data.name;
  out.classes = data.classes;
  out.sample_shape = data.sample_shape;
  out.features.resize(data.sample_size(), static_cast<Index>(indices.size()));
  out.labels.resize(indices.size());
  for (std::size_t j = 0; j < indices.size(); ++j) {
    const Index i = indices[j];
    if (i < 0 || i >= data.size()) {
      throw argument_error("subset of dataset " + detail::quote_name(data.name) + ": index " +
                           std::to_string(i) + " is outside [0, " + std::to_string(data.size()) +
                           ")");
    }
    out.features.col(static_cast<Index>(j)) = data.features.col(i);
    out.labels[j] = data.labels[static_cast<std::size_t>(i)];
  }
  return out;
}

/// `per_class` samples of every class of `data`, drawn without replacement from `rng` (each
/// class's samples shuffled, the first `per_class` taken): their indices, class 0's first, then
/// class 1's, and so on. The same generator state gives the same indices. Throws argument_error
/// for per_class < 1 or a class with fewer than `per_class` samples (shape_error for an
/// inconsistent dataset).
template <std::floating_point T>
std::vector<Index> class_balanced_indices(const Dataset<T>& data, Index per_class, Rng& rng) {
  validate(data);
  if (per_class < 1) {
    throw argument_error("class-balanced sample of dataset " + detail::quote_name(data.name) +
                         ": samples per class must be at least 1, got " +
                         std::to_string(per_class));
  }
  std::vector<std::vector<Index>> by_class(static_cast<std::size_t>(data.classes));
  for (Index i = 0; i < data.size(); ++i) {
    by_class[static_cast<std::size_t>(data.labels[static_cast<std::size_t>(i)])].push_back(i);
  }
  for (std::size_t c = 0; c < by_class.size(); ++c) {
    if (static_cast<Index>(by_class[c].size()) < per_class) {
      throw argument_error("class-balanced sample of dataset " + detail::quote_name(data.name) +
                           ": class " + std::to_string(c) + " has " +
                           std::to_string(by_class[c].size()) + " samples, " +
                           std::to_string(per_class) + " per class were asked for");
    }
  }
  std::vector<Index> chosen;
  chosen.reserve(by_class.size() * static_cast<std::size_t>(per_class));
  for (std::vector<Index>& members : by_class) {
    edgescale::shuffle(members, rng);
    chosen.insert(chosen.end(), members.begin(), members.begin() + per_class);
  }
  return chosen;
}

/// `per_class` samples of every class of `data`, drawn as class_balanced_indices draws them, copied
/// into a dataset of their own (class 0's first): the pruning batch of DESIGN §3a (10 per class),
/// a calibration batch. Throws as class_balanced_indices.
template <std::floating_point T>
Dataset<T> class_balanced_subset(const Dataset<T>& data, Index per_class, Rng& rng) {
  const std::vector<Index> chosen = class_balanced_indices(data, per_class, rng);
  return subset(data, std::span<const Index>(chosen));
}

/// The first `n_first` samples and the rest, in order (shuffle first, through `subset`, for a
/// random split). Throws argument_error unless 0 <= n_first <= size.
template <std::floating_point T>
std::pair<Dataset<T>, Dataset<T>> split(const Dataset<T>& data, Index n_first) {
  validate(data);
  if (n_first < 0 || n_first > data.size()) {
    throw argument_error("split of dataset " + detail::quote_name(data.name) + ": first part of " +
                         std::to_string(n_first) + " samples is outside [0, " +
                         std::to_string(data.size()) + "]");
  }
  auto part = [&](Index begin, Index count) {
    Dataset<T> out;
    out.name = data.name;
    out.classes = data.classes;
    out.sample_shape = data.sample_shape;
    out.features = data.features.middleCols(begin, count);
    out.labels.assign(data.labels.begin() + begin, data.labels.begin() + begin + count);
    return out;
  };
  return {part(0, n_first), part(n_first, data.size() - n_first)};
}

/// What to do with the samples left over when the batch size does not divide the dataset size.
enum class LastBatch {
  keep,  ///< a last, shorter batch
  drop,  ///< skip them (every batch has the same size, as BatchNorm statistics prefer)
};

/// One mini-batch: views into the sampler's storage, valid until the sampler moves on. Models
/// core's SampleBatch, so nn::fit and nn::Trainer::evaluate take it.
template <std::floating_point T>
struct Batch {
  ConstBatchView<T> features;             ///< sample_size x size()
  std::span<const std::int32_t> targets;  ///< size() class labels
  std::span<const Index> indices;         ///< the dataset columns the batch was copied from
  Index number = 0;                       ///< position of the batch in its epoch, from 0

  [[nodiscard]] Index size() const { return features.cols(); }
};

/// Iterates over a dataset in mini-batches, in order or shuffled afresh each epoch: the batch
/// source (core/concepts.hpp) that nn::fit and nn::Trainer::evaluate take.
///
///     Rng rng = make_stream(seed, "shuffle");
///     BatchSampler batches(train, 64);            // LastBatch::drop to skip a short last batch
///     nn::fit(trainer, opt, batches, test_batches, {.epochs = 10}, schedule, rng);
///     // or a loop of one's own:
///     for (int epoch = 0; epoch < 10; ++epoch) {
///       for (const Batch<float>& batch : batches.epoch(rng)) {
///         const auto out = net.forward(batch.features);   // 784 x 64, the same memory each batch
///         loss.value_and_gradient(out, batch.targets, grad);
///         ...
///       }
///     }
///
/// Each batch is copied into one sample_size x batch_size buffer allocated when the sampler is
/// made; a short last batch views the first columns of the same buffer. The sampler keeps a
/// pointer to the dataset, which must outlive it.
template <std::floating_point T>
class BatchSampler {
 public:
  /// An input iterator over the batches of one epoch (single pass).
  class iterator {
   public:
    using value_type = Batch<T>;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    explicit iterator(BatchSampler* sampler) : sampler_(sampler), done_(!sampler->next()) {}

    Batch<T> operator*() const { return sampler_->batch(); }
    iterator& operator++() {
      done_ = !sampler_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.done_; }

   private:
    BatchSampler* sampler_ = nullptr;
    bool done_ = true;
  };

  /// The batches of one epoch, for a range-for; begin() fetches the first batch.
  class Batches {
   public:
    explicit Batches(BatchSampler& sampler) : sampler_(&sampler) {}
    iterator begin() { return iterator(sampler_); }
    std::default_sentinel_t end() { return {}; }

   private:
    BatchSampler* sampler_;
  };

  /// Throws argument_error for an empty dataset or a batch size outside [1, data.size()], and
  /// shape_error for an inconsistent dataset (see validate).
  BatchSampler(const Dataset<T>& data, Index batch_size, LastBatch last = LastBatch::keep)
      : data_(&data), batch_size_(batch_size), last_(last) {
    validate(data);
    if (data.size() == 0) {
      throw argument_error("cannot draw batches from dataset " + detail::quote_name(data.name) +
                           ": it is empty");
    }
    if (batch_size < 1 || batch_size > data.size()) {
      throw argument_error("batch size " + std::to_string(batch_size) + " for dataset " +
                           detail::quote_name(data.name) + " is outside [1, " +
                           std::to_string(data.size()) + "]");
    }
    order_.resize(static_cast<std::size_t>(data.size()));
    std::iota(order_.begin(), order_.end(), Index{0});
    storage_.reserve(data.sample_size(), batch_size);
    labels_.resize(static_cast<std::size_t>(batch_size));
    position_ = data.size();  // no epoch started: next() returns false
  }
  /// A sampler over a temporary would dangle.
  BatchSampler(const Dataset<T>&&, Index, LastBatch = LastBatch::keep) = delete;

  /// Starts an epoch in a fresh random order drawn from `rng` and returns its batches.
  Batches epoch(Rng& rng) {
    start_epoch(rng);
    return Batches(*this);
  }
  /// Starts an epoch in dataset order and returns its batches.
  Batches epoch() {
    start_epoch();
    return Batches(*this);
  }

  /// Starts an epoch in a random order (a permutation of the dataset, independent of the previous
  /// epoch's, so it depends only on the generator's state). Then call next() for each batch.
  void start_epoch(Rng& rng) {
    std::iota(order_.begin(), order_.end(), Index{0});
    edgescale::shuffle(order_, rng);
    restart();
  }
  /// Starts an epoch in dataset order.
  void start_epoch() {
    std::iota(order_.begin(), order_.end(), Index{0});
    restart();
  }

  /// Copies the next batch of the epoch into the sampler's storage; false when the epoch is over.
  bool next() {
    const Index left = data_->size() - position_;
    if (left == 0 || (last_ == LastBatch::drop && left < batch_size_)) {
      return false;
    }
    const Index count = std::min(left, batch_size_);
    BatchView<T> features = storage_.resize(data_->sample_size(), count);  // never reallocates
    for (Index j = 0; j < count; ++j) {
      const Index i = order_[static_cast<std::size_t>(position_ + j)];
      features.col(j) = data_->features.col(i);
      labels_[static_cast<std::size_t>(j)] = data_->labels[static_cast<std::size_t>(i)];
    }
    begin_ = position_;
    position_ += count;
    ++number_;
    return true;
  }

  /// The current batch (after next() returned true).
  [[nodiscard]] Batch<T> batch() const {
    const auto count = static_cast<std::size_t>(storage_.cols());
    return Batch<T>{storage_.view(), std::span<const std::int32_t>(labels_).first(count),
                    std::span<const Index>(order_).subspan(static_cast<std::size_t>(begin_), count),
                    number_};
  }
  /// The current batch's features, writable (for in-place augmentation).
  [[nodiscard]] BatchView<T> features() { return storage_.view(); }

  [[nodiscard]] Index batch_size() const { return batch_size_; }
  [[nodiscard]] Index batches_per_epoch() const {
    const Index n = data_->size();
    return last_ == LastBatch::drop ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
  }
  /// Samples an epoch yields (all of them, or whole batches only with LastBatch::drop).
  [[nodiscard]] Index samples_per_epoch() const {
    const Index n = data_->size();
    return last_ == LastBatch::drop ? n - n % batch_size_ : n;
  }
  [[nodiscard]] const Dataset<T>& dataset() const { return *data_; }

 private:
  void restart() {
    position_ = 0;
    begin_ = 0;
    number_ = -1;
  }

  const Dataset<T>* data_;
  Index batch_size_;
  LastBatch last_;
  std::vector<Index> order_;
  Index position_ = 0;  // index into order_ of the next batch's first sample
  Index begin_ = 0;     // index into order_ of the current batch's first sample
  Index number_ = -1;
  Workspace<T> storage_;
  std::vector<std::int32_t> labels_;
};

static_assert(BatchSource<BatchSampler<float>, float> && BatchSource<BatchSampler<double>, double>);

}  // namespace edgescale::data
