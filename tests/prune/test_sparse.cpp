// prune/csr.hpp and prune/sparse.hpp: the CSR form of a masked weight, its two products against
// dense ones (every block width and tail), compiled networks (Dense and Conv2D, float and double)
// against the masked dense forward at densities 0 to 1 with a fully pruned row and column, the
// picking rule, and bad input.
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/conv2d.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/flatten.hpp>
#include <edgescale/nn/init.hpp>
#include <edgescale/nn/pool.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/prune/csr.hpp>
#include <edgescale/prune/sparse.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

template <class T>
using Mlp = nn::BasicSequential<T, nn::Input<20>, nn::Dense<20, 13>, nn::ReLU,
                                nn::Dense<13, 9, nn::NoBias>, nn::ReLU, nn::Dense<9, 5>>;
// Padding, stride, a 5x5 kernel whose taps leave the image, no bias.
template <class T>
using ConvNet = nn::BasicSequential<T, nn::Input<2, 9, 9>, nn::Conv2D<2, 4, 3, nn::Pad<1>>,
                                    nn::ReLU, nn::Conv2D<4, 8, 3, nn::Stride<2>, nn::NoBias>,
                                    nn::ReLU, nn::Conv2D<8, 3, 5, nn::Stride<2>, nn::Pad<2>>,
                                    nn::Flatten, nn::Dense<12, 4>>;
template <class T>
using LeNet5 = nn::BasicSequential<T, nn::Input<1, 28, 28>, nn::Conv2D<1, 6, 5, nn::Pad<2>>,
                                   nn::ReLU, nn::MaxPool2D<2>, nn::Conv2D<6, 16, 5>, nn::ReLU,
                                   nn::MaxPool2D<2>, nn::Flatten, nn::Dense<400, 120>, nn::ReLU,
                                   nn::Dense<120, 84>, nn::ReLU, nn::Dense<84, 10>>;

constexpr prune::Crossover always_csr{.dense_single = 1, .dense_batched = 1, .conv = 1};
constexpr prune::Crossover never_csr{.dense_single = 0, .dense_batched = 0, .conv = 0};

template <class T>
Matrix<T> random_matrix(Index rows, Index cols, Rng& rng) {
  Matrix<T> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) {
    m.data()[i] = uniform<T>(rng, T(-1), T(1));
  }
  return m;
}

/// Masks every weight tensor at `density` (1: no mask at all), with weight row 0 and input
/// column 0 of every tensor fully pruned when 0 < density < 1 (a dead output and a dead input).
template <class Net>
void prune_randomly(Net& net, double density, Rng& rng) {
  using T = typename Net::scalar_type;
  net.for_each_parameter([&](std::string_view, Parameter<T>& p) {
    if (!p.prunable() || density == 1.0) {
      return;
    }
    p.mask = Vector<T>(p.size());
    const Index rows = p.shape[0];
    const Index cols = p.size() / rows;
    for (Index i = 0; i < p.size(); ++i) {
      const bool dead = density > 0.0 && (i / cols == 0 || i % cols == 0);
      p.mask[i] = !dead && uniform01<double>(rng) < density ? T(1) : T(0);
    }
    p.apply_mask();
  });
}

template <class T>
T tolerance() {
  return std::is_same_v<T, float> ? T(2e-5) : T(1e-12);
}

/// max |a − b| <= tol · max(1, max |b|).
template <class T>
void check_close(const ConstBatchView<T>& a, const ConstBatchView<T>& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  const T scale = std::max(T(1), b.cwiseAbs().maxCoeff());
  CHECK((a - b).cwiseAbs().maxCoeff() <= tolerance<T>() * scale);
}

/// The compiled network's forward against the masked dense one, at several batch sizes and
/// densities, with CSR forced everywhere, nowhere and by the measured crossovers.
template <class Net>
void check_against_dense(std::initializer_list<Index> batches) {
  using T = typename Net::scalar_type;
  for (const double density : {0.0, 0.02, 0.1, 0.5, 1.0}) {
    CAPTURE(density);
    Rng rng = make_stream(7, "sparse");
    Net net{nn::init::kaiming_uniform, rng};
    // Nonzero biases, so a fully pruned row still has an output to get right.
    net.for_each_parameter([&](std::string_view, Parameter<T>& p) {
      if (p.role == ParameterRole::bias) {
        for (Index i = 0; i < p.size(); ++i) {
          p.value[i] = uniform<T>(rng, T(-0.5), T(0.5));
        }
      }
    });
    prune_randomly(net, density, rng);
    net.set_training(false);
    for (const prune::Crossover& c : {always_csr, never_csr, prune::measured_crossover}) {
      auto sparse = prune::compile_sparse(net, c);
      for (const Index batch : batches) {
        CAPTURE(batch);
        const Matrix<T> x = random_matrix<T>(Net::input_shape::size, batch, rng);
        const Matrix<T> expected = net.forward(x);
        check_close<T>(sparse.forward(x), batch_view(expected));
      }
    }
  }
}

}  // namespace

TEST_CASE("CsrMatrix keeps the masked-in nonzero entries, row by row") {
  // 3 x 4, row-major; mask drops (0, 1); the exact zero at (2, 3) is dropped too.
  const std::vector<double> dense = {1, 2, 0, 3, 0, 0, 0, 0, 4, 0, 5, 0};
  const std::vector<double> mask = {1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  prune::CsrMatrix<double> a(3, 4, dense, mask);
  CHECK(a.rows() == 3);
  CHECK(a.cols() == 4);
  CHECK(a.nonzeros() == 4);
  CHECK(a.density() == doctest::Approx(4.0 / 12.0));
  CHECK(std::vector<std::int32_t>(a.row_starts().begin(), a.row_starts().end()) ==
        std::vector<std::int32_t>{0, 2, 2, 4});
  CHECK(std::vector<std::int32_t>(a.columns().begin(), a.columns().end()) ==
        std::vector<std::int32_t>{0, 3, 0, 2});
  CHECK(std::vector<double>(a.values().begin(), a.values().end()) ==
        std::vector<double>{1, 3, 4, 5});

  const std::vector<std::int32_t> used = a.drop_empty_columns();
  CHECK(used == std::vector<std::int32_t>{0, 2, 3});
  CHECK(a.cols() == 3);
  CHECK(std::vector<std::int32_t>(a.columns().begin(), a.columns().end()) ==
        std::vector<std::int32_t>{0, 2, 0, 1});

  const prune::CsrMatrix<double> unmasked(3, 4, dense);
  CHECK(unmasked.nonzeros() == 5);
  const prune::CsrMatrix<float> empty;
  CHECK(empty.nonzeros() == 0);
  CHECK(empty.row_starts().size() == 1);
}

TEST_CASE_TEMPLATE("csr_gemv and csr_gemm equal the dense products", T, float, double) {
  Rng rng = make_stream(11, "products");
  const Index rows = 37;
  const Index cols = 53;
  Matrix<T> w = random_matrix<T>(rows, cols, rng);  // column-major here; CSR wants row-major
  for (Index i = 0; i < w.size(); ++i) {
    if (uniform01<double>(rng) < 0.7) {
      w.data()[i] = T(0);
    }
  }
  w.row(5).setZero();  // an empty row
  const Eigen::Matrix<T, Dynamic, Dynamic, Eigen::RowMajor> w_rows = w;
  const prune::CsrMatrix<T> a(rows, cols, std::span<const T>(w_rows.data(), w_rows.size()));
  const Vector<T> bias = random_matrix<T>(rows, 1, rng);

  const Vector<T> x = random_matrix<T>(cols, 1, rng);
  Vector<T> y(rows);
  prune::csr_gemv(a, x.data(), y.data(), bias.data());
  const Vector<T> expected = bias + w * x;
  check_close<T>(batch_view(y), batch_view(expected));
  prune::csr_gemv(a, x.data(), y.data(), static_cast<const T*>(nullptr));
  const Vector<T> expected_unbiased = w * x;
  check_close<T>(batch_view(y), batch_view(expected_unbiased));

  // n from below one SIMD vector to several blocks of 8 vectors with a tail, and a B whose rows
  // are longer than n (ldb > n) and a C with ldc > n.
  for (const Index n : {1, 3, 4, 8, 13, 16, 31, 32, 33, 64, 100, 200}) {
    CAPTURE(n);
    const Index ldb = n + 3;
    const Index ldc = n + 5;
    // B as rows of ldb values: the column-major ldb x cols matrix's columns.
    const Matrix<T> b_storage = random_matrix<T>(ldb, cols, rng);
    Matrix<T> c_storage = Matrix<T>::Constant(ldc, rows, T(-7));
    prune::csr_gemm(a, b_storage.data(), ldb, n, c_storage.data(), ldc, bias.data());
    // C = bias 1ᵀ + W B with B = the first n values of each row: cols x n.
    const Matrix<T> b = b_storage.topRows(n).transpose();
    const Matrix<T> c_expected = (w * b).colwise() + bias;
    const Matrix<T> c = c_storage.topRows(n).transpose();
    check_close<T>(batch_view(c), batch_view(c_expected));
    CHECK((c_storage.bottomRows(ldc - n).array() == T(-7)).all());  // nothing past n written
  }
}

TEST_CASE_TEMPLATE("a compiled MLP equals the masked dense forward", T, float, double) {
  check_against_dense<Mlp<T>>({1, 2, 8, 13, 32, 70});
}

TEST_CASE_TEMPLATE("a compiled conv net equals the masked dense forward", T, float, double) {
  check_against_dense<ConvNet<T>>({1, 3});
}

TEST_CASE("a compiled LeNet-5 equals the masked dense forward (float)") {
  check_against_dense<LeNet5<float>>({1, 2});
}

TEST_CASE("compile_sparse copies the tensors and leaves the network alone") {
  Rng rng = make_stream(3, "copy");
  Mlp<double> net{nn::init::kaiming_uniform, rng};
  prune_randomly(net, 0.3, rng);
  // A masked weight whose value is not zero: the compiled network applies the mask.
  auto& w0 = net.layer<0>().parameters()[0];
  const Index dead = 0;  // row 0 is pruned
  w0.value[dead] = 5.0;
  auto sparse = prune::compile_sparse(net, always_csr);
  CHECK(w0.value[dead] == 5.0);
  CHECK(sparse.layer<0>().parameters()[0].value[dead] == 0.0);
  CHECK(sparse.layer<0>().parameters()[0].mask == w0.mask);
  CHECK_FALSE(sparse.training());
  CHECK(prune::sparse_network_t<Mlp<double>>::size == Mlp<double>::size);
}

TEST_CASE("the picking rule: CSR at or below the crossover of the regime") {
  using prune::SparseKernel;
  CHECK(prune::pick_kernel(0.1, 0.1) == SparseKernel::csr);
  CHECK(prune::pick_kernel(0.1000001, 0.1) == SparseKernel::dense);
  CHECK(prune::pick_kernel(0.0, 0.0) == SparseKernel::csr);  // a dead layer costs nothing
  CHECK(prune::pick_kernel(1.0, 1.0) == SparseKernel::csr);

  // Layer 0 kept at 15 %, layer 2 at 60 %, layer 4 dense, the conv layers of LeNet-5 alike.
  Rng rng = make_stream(5, "pick");
  Mlp<float> net{nn::init::kaiming_uniform, rng};
  auto& w0 = net.layer<0>().parameters()[0];
  w0.mask = Vector<float>::Zero(w0.size());
  w0.mask.head(39).setOnes();  // 39 of 260 = 15 %
  w0.apply_mask();
  auto& w2 = net.layer<2>().parameters()[0];
  w2.mask = Vector<float>::Zero(w2.size());
  w2.mask.head(70).setOnes();  // 70 of 117 ≈ 60 %
  w2.apply_mask();
  const prune::Crossover c{.dense_single = 0.2, .dense_batched = 0.1, .conv = 0.5};
  auto sparse = prune::compile_sparse(net, c);
  const std::vector<prune::LayerKernels> plan = prune::sparse_plan(sparse);
  REQUIRE(plan.size() == 3);
  CHECK(plan[0].layer == "0");
  CHECK(plan[0].density == doctest::Approx(0.15));
  CHECK(plan[0].single == SparseKernel::csr);
  CHECK(plan[0].batched == SparseKernel::dense);
  CHECK(plan[1].layer == "2");
  CHECK(plan[1].single == SparseKernel::dense);
  CHECK(plan[2].layer == "4");
  CHECK(plan[2].density == 1.0);
  CHECK(plan[2].batched == SparseKernel::dense);
  CHECK(sparse.layer<0>().csr().nonzeros() == 39);
  CHECK(sparse.layer<2>().csr().nonzeros() == 0);  // never runs: not built

  // Preparing again after the weights changed picks again.
  sparse.layer<2>().parameters()[0].mask.setZero();
  prune::prepare_sparse(sparse, c);
  CHECK(sparse.layer<2>().kernel(1) == SparseKernel::csr);
  CHECK(sparse.layer<2>().kernel(32) == SparseKernel::csr);

  ConvNet<float> conv{nn::init::kaiming_uniform, rng};
  prune_randomly(conv, 0.1, rng);
  const std::vector<prune::LayerKernels> conv_plan =
      prune::sparse_plan(prune::compile_sparse(conv, c));
  REQUIRE(conv_plan.size() == 4);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(conv_plan[i].single == SparseKernel::csr);
    CHECK(conv_plan[i].batched == SparseKernel::csr);
  }
}

TEST_CASE("sparse execution rejects bad input with clear errors") {
  const std::vector<float> six(6, 1.0F);
  CHECK_THROWS_AS(prune::CsrMatrix<float>(2, 4, six), shape_error);
  CHECK_THROWS_AS(prune::CsrMatrix<float>(2, 3, six, std::vector<float>(5, 1.0F)), shape_error);
  CHECK_THROWS_WITH_AS(prune::CsrMatrix<float>(-1, 3, six), doctest::Contains("CsrMatrix"),
                       shape_error);

  Rng rng = make_stream(9, "bad");
  Mlp<float> net{nn::init::kaiming_uniform, rng};
  for (const double bad : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    CHECK_THROWS_AS(prune::compile_sparse(net, {.dense_single = bad}), argument_error);
    CHECK_THROWS_AS(prune::compile_sparse(net, {.conv = bad}), argument_error);
  }
  auto sparse = prune::compile_sparse(net, always_csr);
  const Matrix<float> wrong = Matrix<float>::Ones(19, 2);
  CHECK_THROWS_AS(sparse.forward(wrong), shape_error);
  CHECK_THROWS_WITH_AS(sparse.layer<0>().forward(batch_view(wrong)),
                       doctest::Contains("SparseDense: the input has 19 rows"), shape_error);
  ConvNet<float> conv{nn::init::kaiming_uniform, rng};
  auto sparse_conv = prune::compile_sparse(conv, always_csr);
  CHECK_THROWS_WITH_AS(sparse_conv.layer<0>().forward(batch_view(wrong)),
                       doctest::Contains("SparseConv2D: the input has 19 rows"), shape_error);

  const Matrix<float> x = Matrix<float>::Ones(20, 2);
  const Matrix<float> y = sparse.forward(x);
  CHECK_THROWS_WITH_AS(sparse.backward(batch_view(y)), doctest::Contains("inference-only"), error);
}
