// edgescale/core/tensor.hpp — Eigen aliases, static shapes and grow-only workspaces.
//
// Layout: a batch is a column-major matrix with one sample per column (features x batch). A
// sample of rank 3 is stored channel-major (C, H, W), as PyTorch does, so Flatten is free and
// weights interchange with PyTorch without permutation.
//
// Static shapes live in the types (`Shape<C, H, W>`), where they are checked at compile time. The
// kernels compute on dynamic-size Eigen maps: every Dense of one scalar type shares one set of
// Eigen product instantiations, which keeps compile time and memory low (docs/results/nn.md).
#pragma once

#include <edgescale/core/eigen.hpp>

#include <array>
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

namespace edgescale {

using Index = Eigen::Index;

/// Eigen's marker for a size known only at run time.
inline constexpr int Dynamic = Eigen::Dynamic;

template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// A batch: features x batch, one sample per column, viewed in memory someone else owns.
template <class T>
using BatchView = Eigen::Map<Matrix<T>>;
/// A read-only batch view; what layers take and return.
template <class T>
using ConstBatchView = Eigen::Map<const Matrix<T>>;

/// A static sample shape: `Shape<N>` for a feature vector, `Shape<C, H, W>` for an image.
template <int... Dims>
struct Shape {
  static_assert(sizeof...(Dims) > 0, "Shape needs at least one dimension");
  static_assert(((Dims > 0) && ...), "Shape dimensions must be positive");
  static constexpr int rank = sizeof...(Dims);
  static constexpr int size = (Dims * ...);
  static constexpr std::array<int, sizeof...(Dims)> dims{Dims...};
};

namespace detail {
template <class S>
struct is_shape : std::false_type {};
template <int... D>
struct is_shape<Shape<D...>> : std::true_type {};
}  // namespace detail

/// A type is a static shape.
template <class S>
concept StaticShape = detail::is_shape<S>::value;

/// An image shape (C, H, W).
template <class S>
concept ImageShape = StaticShape<S> && S::rank == 3;

/// A read-only batch view of a column-major matrix (or vector) the caller owns.
template <class Derived>
ConstBatchView<typename Derived::Scalar> batch_view(const Eigen::PlainObjectBase<Derived>& m) {
  static_assert(!Derived::IsRowMajor || Derived::ColsAtCompileTime == 1,
                "batch_view: the matrix must be column-major, one sample per column");
  return ConstBatchView<typename Derived::Scalar>(m.data(), m.rows(), m.cols());
}

/// Number of values a tensor of this shape holds (1 for the empty shape of a scalar).
inline Index shape_size(std::span<const Index> shape) {
  Index n = 1;
  for (const Index d : shape) {
    n *= d;
  }
  return n;
}

/// Grow-only storage for a batch with a fixed number of rows: resizing to fewer columns, or back,
/// never reallocates, so alternating batch sizes (training at 256, inferring at 1) costs no heap
/// traffic after the largest batch has been seen.
///
/// A workspace is scratch that belongs to one object: copying it copies nothing (the copy starts
/// empty, and copy-assignment keeps the target's own storage), so a copied network does not drag
/// along buffers sized for the largest batch its original saw. `release()` frees the storage.
template <class T>
class Workspace {
 public:
  Workspace() = default;
  Workspace(Index rows, Index cols) { resize(rows, cols); }
  Workspace(const Workspace& /*other*/) noexcept {}
  Workspace& operator=(const Workspace& other) noexcept {
    if (this != &other) {
      rows_ = 0;
      cols_ = 0;
    }
    return *this;
  }
  Workspace(Workspace&&) noexcept = default;
  Workspace& operator=(Workspace&&) noexcept = default;
  ~Workspace() = default;

  /// Sets the view to rows x cols, growing the storage only if it is too small.
  BatchView<T> resize(Index rows, Index cols) {
    reserve(rows, cols);
    rows_ = rows;
    cols_ = cols;
    return view();
  }
  /// Grows the capacity to hold rows x cols without changing the view.
  void reserve(Index rows, Index cols) {
    if (rows * cols > storage_.size()) {
      storage_.resize(rows * cols);
    }
  }
  /// Frees the storage; the view becomes empty and the next resize allocates again.
  void release() {
    storage_.resize(0);
    rows_ = 0;
    cols_ = 0;
  }
  BatchView<T> view() { return BatchView<T>(storage_.data(), rows_, cols_); }
  ConstBatchView<T> view() const { return cview(); }
  ConstBatchView<T> cview() const { return ConstBatchView<T>(storage_.data(), rows_, cols_); }
  [[nodiscard]] Index rows() const { return rows_; }
  [[nodiscard]] Index cols() const { return cols_; }
  [[nodiscard]] Index capacity() const { return storage_.size(); }
  /// Bytes of storage held.
  [[nodiscard]] std::size_t bytes() const {
    return static_cast<std::size_t>(storage_.size()) * sizeof(T);
  }

 private:
  Vector<T> storage_;
  Index rows_ = 0;
  Index cols_ = 0;
};

}  // namespace edgescale
