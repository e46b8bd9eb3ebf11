// Trainer and fit: classification and regression, batch sources (data's BatchSampler and a user's
// own), callbacks, gradient hooks (FedProx's correction checked against its formula), divergence.
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/data/dataset.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/loss.hpp>
#include <edgescale/nn/optim/sgd.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/nn/train.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

/// Three Gaussian blobs in 2-D, well separated, as a dataset.
data::Dataset<float> make_blobs(Index n, Rng& rng) {
  data::Dataset<float> d;
  d.name = "blobs";
  d.classes = 3;
  d.sample_shape = {1, 1, 2};
  d.features.resize(2, n);
  d.labels.resize(static_cast<std::size_t>(n));
  const double cx[3] = {-3, 3, 0};
  const double cy[3] = {-2, -2, 3};
  for (Index i = 0; i < n; ++i) {
    const int k = static_cast<int>(i % 3);
    d.labels[static_cast<std::size_t>(i)] = k;
    d.features(0, i) = static_cast<float>(cx[k] + 0.5 * standard_normal(rng));
    d.features(1, i) = static_cast<float>(cy[k] + 0.5 * standard_normal(rng));
  }
  return d;
}

struct CountingCallback {
  int begins = 0;
  int ends = 0;
  long batches = 0;
  long gradients = 0;
  long step_ends = 0;
  bool step_end_first = true;  // on_step_end runs before on_batch_end of the same batch
  void on_epoch_begin(int, int) { ++begins; }
  void on_batch_end(Index, Index, double) {
    step_end_first = step_end_first && step_ends == batches + 1;
    ++batches;
  }
  template <class Net>
  void on_gradients(Net&) {
    ++gradients;
  }
  template <class Net>
  void on_step_end(Net&) {
    ++step_ends;
  }
  bool on_epoch_end(const nn::EpochReport& r) {
    ++ends;
    return r.epoch < 3;  // stop after the 4th epoch
  }
};

struct NoHooks {
  void on_epoch_ends(const nn::EpochReport&) {}  // misspelt: not a hook
};

using BlobNet = nn::Sequential<nn::Dense<2, 16>, nn::ReLU, nn::Dense<16, 3>>;
static_assert(nn::FitCallback<CountingCallback, BlobNet>);
static_assert(nn::FitCallback<nn::ProgressDisplay, BlobNet>);
static_assert(!nn::FitCallback<NoHooks, BlobNet>);
static_assert(nn::GradientCallback<CountingCallback, BlobNet>);
static_assert(nn::StepEndCallback<CountingCallback, BlobNet>);

/// A user's own batch source of regression pairs (x, y): what any streamed or generated data
/// plugs into fit with. Batches in a fixed order or shuffled by index.
class RegressionSource {
 public:
  struct Batch {
    ConstBatchView<double> features;
    ConstBatchView<double> targets;
  };
  RegressionSource(const Matrix<double>& x, const Matrix<double>& y, Index batch)
      : x_(x), y_(y), batch_(batch), order_(static_cast<std::size_t>(x.cols())) {}

  void start_epoch(Rng& rng) {
    std::iota(order_.begin(), order_.end(), Index{0});
    shuffle(order_, rng);
    position_ = 0;
  }
  void start_epoch() {
    std::iota(order_.begin(), order_.end(), Index{0});
    position_ = 0;
  }
  bool next() {
    const Index left = x_.cols() - position_;
    if (left <= 0) {
      return false;
    }
    const Index count = std::min(left, batch_);
    bx_.resize(x_.rows(), count);
    by_.resize(y_.rows(), count);
    for (Index j = 0; j < count; ++j) {
      const Index i = order_[static_cast<std::size_t>(position_ + j)];
      bx_.col(j) = x_.col(i);
      by_.col(j) = y_.col(i);
    }
    position_ += count;
    return true;
  }
  [[nodiscard]] Batch batch() const { return {batch_view(bx_), batch_view(by_)}; }
  [[nodiscard]] Index samples_per_epoch() const { return x_.cols(); }

 private:
  const Matrix<double>& x_;
  const Matrix<double>& y_;
  Index batch_;
  std::vector<Index> order_;
  Index position_ = 0;
  Matrix<double> bx_, by_;
};
static_assert(BatchSource<RegressionSource, double>);
static_assert(!BatchSource<RegressionSource, float>);  // features are double

}  // namespace

TEST_CASE("fit learns separable blobs from a BatchSampler, reproducibly; callbacks can stop it") {
  auto run = [](std::uint64_t seed, CountingCallback& cb) {
    Rng data_rng = make_stream(seed, "data");
    const auto train = make_blobs(300, data_rng);
    const auto test = make_blobs(150, data_rng);
    data::BatchSampler train_batches(train, 32);
    data::BatchSampler test_batches(test, 50);
    Rng init = make_stream(seed, "init");
    BlobNet net{nn::init::kaiming_normal, init};
    nn::Trainer trainer{net};
    nn::SGD opt{{.learning_rate = 0.1, .momentum = 0.9}};
    Rng shuffle = make_stream(seed, "shuffle");
    std::ostringstream log;
    return nn::fit(trainer, opt, train_batches, test_batches, {.epochs = 10},
                   nn::ConstantSchedule{0.1}, shuffle, cb, nn::ProgressDisplay{log});
  };
  CountingCallback cb1, cb2;
  const auto h1 = run(5, cb1);
  const auto h2 = run(5, cb2);
  REQUIRE(h1.size() == 4);  // stopped by the callback
  CHECK(cb1.begins == 4);
  CHECK(cb1.ends == 4);
  CHECK(cb1.batches == 4 * 10);         // ceil(300 / 32) = 10 batches an epoch
  CHECK(cb1.gradients == cb1.batches);  // on_gradients once per step
  CHECK(cb1.step_ends == cb1.batches);  // on_step_end too, after the update
  CHECK(cb1.step_end_first);
  CHECK(h1.back().classification);
  CHECK(h1.back().test.samples == 150);
  CHECK(h1.back().test.accuracy > 0.97);
  CHECK(h1.back().test.accuracy == h2.back().test.accuracy);
  CHECK(h1.back().train_loss == h2.back().train_loss);
}

TEST_CASE("the short last batch has one spelling: the sampler's LastBatch") {
  Rng rng = make_stream(8, "data");
  const auto train = make_blobs(100, rng);
  data::BatchSampler keep(train, 32);
  data::BatchSampler drop(train, 32, data::LastBatch::drop);
  CHECK(keep.samples_per_epoch() == 100);
  CHECK(drop.samples_per_epoch() == 96);
  BlobNet net;
  nn::Trainer trainer{net};
  nn::SGD opt{{.learning_rate = 0.01}};
  CountingCallback counter;
  nn::fit(trainer, opt, drop, nn::no_evaluation, {.epochs = 1}, nn::ConstantSchedule{0.01}, rng,
          counter);
  CHECK(counter.batches == 3);
}

TEST_CASE("fit rejects a data set of the wrong sample size at the first batch, before any step") {
  Rng rng = make_stream(6, "data");
  const auto train = make_blobs(30, rng);
  data::BatchSampler batches(train, 8);
  nn::Sequential<nn::Dense<3, 3>> net;
  nn::Trainer trainer{net};
  nn::SGD opt{{.learning_rate = 0.1}};
  CHECK_THROWS_AS(
      nn::fit(trainer, opt, batches, batches, {.epochs = 1}, nn::ConstantSchedule{0.1}, rng),
      shape_error);
  CHECK(opt.steps() == 0);
  CHECK_THROWS_AS(nn::fit(trainer, opt, batches, nn::no_evaluation, {.epochs = -1},
                          nn::ConstantSchedule{0.1}, rng),
                  argument_error);
}

TEST_CASE("MSE trains a regression network through fit with a user's batch source") {
  // y = A x + b with a fixed A, b: a linear network can fit it exactly.
  Rng rng = make_stream(9, "regression");
  const Index n = 256;
  Matrix<double> a(2, 3);
  a << 0.5, -1.0, 2.0, 1.5, 0.25, -0.75;
  const Vector<double> b = (Vector<double>(2) << 0.3, -0.2).finished();
  Matrix<double> x(3, n);
  for (Index i = 0; i < x.size(); ++i) {
    x.data()[i] = standard_normal(rng);
  }
  const Matrix<double> y = (a * x).colwise() + b;
  RegressionSource source(x, y, 16);

  nn::BasicSequential<double, nn::Dense<3, 8>, nn::Tanh, nn::Dense<8, 2>> net{
      nn::init::xavier_normal, rng};
  nn::Trainer<decltype(net), nn::MeanSquaredError> trainer{net};
  static_assert(!decltype(trainer)::classification);
  nn::SGD opt{{.learning_rate = 0.05, .momentum = 0.9}};
  const double before = trainer.evaluate(source).loss;
  const auto history = nn::fit(trainer, opt, source, source, {.epochs = 60},
                               nn::CosineSchedule{.base = 0.05, .epochs = 60}, rng);
  const double after = history.back().test.loss;
  INFO("MSE before " << before << ", after " << after);
  CHECK(before > 1.0);
  CHECK(after < 1e-3 * before);
  CHECK(!history.back().classification);
  CHECK(history.back().test.accuracy == 0);

  // one step by hand: the trainer takes the loss's target type, a batch view
  const double loss = trainer.step(opt, batch_view(x), batch_view(y));
  CHECK(loss < 1e-3 * before);
}

TEST_CASE("a gradient hook corrects the gradient before the step: FedProx, by its formula") {
  // FedProx (Li et al. 2020): the client minimises L(θ) + μ/2 ‖θ − θ_global‖², so the step is
  // θ' = θ − η (∇L(θ) + μ (θ − θ_global)).
  Rng rng = make_stream(10, "prox");
  using Net = nn::BasicSequential<double, nn::Dense<4, 5>, nn::ReLU, nn::Dense<5, 3>>;
  Net net{nn::init::kaiming_normal, rng};
  Net global_net{nn::init::kaiming_normal, rng};
  const ParameterSet<double> global(global_net);
  Matrix<double> x(4, 6);
  for (Index i = 0; i < x.size(); ++i) {
    x.data()[i] = standard_normal(rng);
  }
  const std::vector<std::int32_t> y{0, 1, 2, 2, 1, 0};
  const double mu = 0.7;
  const double lr = 0.1;

  // ∇L(θ) and θ, independently of the hook
  net.zero_grad();
  nn::SoftmaxCrossEntropy ce;
  Matrix<double> g(3, 6);
  BatchView<double> gv(g.data(), 3, 6);
  ce.value_and_gradient(net.forward(x), nn::Labels(y), gv);
  net.backward_parameters(batch_view(g));
  ParameterSet<double> grad(net);
  grad.read_gradients(net);
  const ParameterSet<double> theta(net);

  nn::Trainer trainer{net};
  nn::SGD opt{{.learning_rate = lr}};
  int calls = 0;
  trainer.step(opt, batch_view(x), nn::Labels(y), [&](Net& n) {
    ++calls;
    global.zip(n, [&](Parameter<double>& p, const auto& g0) { p.grad += mu * (p.value - g0); });
  });
  CHECK(calls == 1);

  ParameterSet<double> expected = theta;
  expected.axpy(-lr, grad);
  ParameterSet<double> proximal = theta;
  proximal -= global;
  expected.axpy(-lr * mu, proximal);
  const ParameterSet<double> after(net);
  CHECK((after.values() - expected.values()).cwiseAbs().maxCoeff() < 1e-14);
  // and the correction mattered
  ParameterSet<double> plain = theta;
  plain.axpy(-lr, grad);
  CHECK((after.values() - plain.values()).norm() > 1e-3);
}

TEST_CASE("evaluate restores the network's mode") {
  Rng rng = make_stream(11, "mode");
  const auto test = make_blobs(30, rng);
  data::BatchSampler batches(test, 10);
  BlobNet net;
  nn::Trainer trainer{net};
  net.set_training(true);
  const auto e = trainer.evaluate(batches);
  CHECK(e.samples == 30);
  CHECK(e.classification);
  CHECK(net.training());
  net.set_training(false);
  trainer.evaluate(batches);
  CHECK(!net.training());
}

TEST_CASE("a non-finite loss stops training before the step and leaves the network unchanged") {
  Rng rng = make_stream(7, "nan");
  nn::Sequential<nn::Dense<4, 3>, nn::ReLU, nn::Dense<3, 2>> net{nn::init::kaiming_normal, rng};
  nn::Trainer trainer{net};
  nn::SGD opt{{.learning_rate = 0.1, .momentum = 0.9}};
  Matrix<float> x = Matrix<float>::Random(4, 3);
  x(2, 1) = std::numeric_limits<float>::quiet_NaN();
  const std::vector<std::int32_t> y{0, 1, 0};
  const ParameterSet<float> before(net, TensorSelection::all);
  CHECK_THROWS_AS(trainer.step(opt, batch_view(x), nn::Labels(y)), error);
  const ParameterSet<float> after(net, TensorSelection::all);
  CHECK(after.values() == before.values());  // bit for bit: no update reached the weights
  CHECK(opt.steps() == 0);
}

TEST_CASE("a per-step cosine schedule sets the rate before every step, at the epoch's progress") {
  Rng rng = make_stream(11, "per-step");
  Matrix<double> x(3, 64);
  for (Index i = 0; i < x.size(); ++i) {
    x.data()[i] = standard_normal(rng);
  }
  const Matrix<double> y = x.topRows(2);
  RegressionSource source(x, y, 16);  // 4 steps per epoch
  nn::BasicSequential<double, nn::Dense<3, 2>> net{nn::init::xavier_normal, rng};
  nn::Trainer<decltype(net), nn::MeanSquaredError> trainer{net};
  nn::SGD opt{{.learning_rate = 1.0}};
  const nn::CosineSchedule per_step{.base = 0.1, .epochs = 2, .per_step = true};
  static_assert(nn::StepwiseSchedule<nn::CosineSchedule>);
  CHECK(per_step.at(0.5) == doctest::Approx(0.1 * (1 + std::cos(std::numbers::pi / 4)) / 2));
  const auto h = nn::fit(trainer, opt, source, nn::no_evaluation, {.epochs = 2}, per_step, rng);
  // the last step of epoch e ran at progress e + 48/64
  CHECK(h[0].learning_rate == doctest::Approx(per_step.at(0.75)).epsilon(1e-14));
  CHECK(h[1].learning_rate == doctest::Approx(per_step.at(1.75)).epsilon(1e-14));
  // per epoch, the rate of the epoch's start throughout
  const nn::CosineSchedule per_epoch{.base = 0.1, .epochs = 2};
  const auto e = nn::fit(trainer, opt, source, nn::no_evaluation, {.epochs = 2}, per_epoch, rng);
  CHECK(e[1].learning_rate == doctest::Approx(per_epoch(1)).epsilon(1e-14));
}
