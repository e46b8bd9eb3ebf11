// ParameterSet and copy_tensors: reading and writing networks by name, arithmetic on the flat
// vector against per-element loops, a FedAvg round against the hand-computed weighted mean, many
// client models run by one worker network, and every mismatch rejected with the network unchanged.
#include <edgescale/core/parameter_set.hpp>
#include <edgescale/nn/activation.hpp>
#include <edgescale/nn/batchnorm.hpp>
#include <edgescale/nn/dense.hpp>
#include <edgescale/nn/loss.hpp>
#include <edgescale/nn/optim/sgd.hpp>
#include <edgescale/nn/sequential.hpp>
#include <edgescale/nn/train.hpp>
#include <edgescale/nn/transform.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

using Mlp = nn::Sequential<nn::Dense<6, 5>, nn::ReLU, nn::Dense<5, 3>>;
using OtherMlp = nn::Sequential<nn::Dense<6, 5>, nn::ReLU, nn::Dense<5, 4>>;  // last layer differs
using Renamed = nn::Sequential<nn::Dense<6, 5>, nn::ReLU, nn::ReLU, nn::Dense<5, 3>>;  // "3.weight"
using BnNet = nn::Sequential<nn::Dense<6, 5>, nn::BatchNorm, nn::ReLU, nn::Dense<5, 3>>;

Matrix<float> random_matrix(Index rows, Index cols, Rng& rng) {
  Matrix<float> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) {
    m.data()[i] = standard_normal<float>(rng);
  }
  return m;
}

/// Every tensor's values of a network, concatenated in visiting order, by a plain loop.
template <class Net>
std::vector<double> flat_values(const Net& net, bool buffers = false) {
  std::vector<double> v;
  for_each_tensor(net, [&](std::string_view, const auto& p) {
    if (buffers || p.trainable()) {
      for (Index i = 0; i < p.size(); ++i) {
        v.push_back(static_cast<double>(p.value[i]));
      }
    }
  });
  return v;
}

template <class T>
std::vector<double> as_vector(const Vector<T>& v) {
  std::vector<double> out(static_cast<std::size_t>(v.size()));
  for (Index i = 0; i < v.size(); ++i) {
    out[static_cast<std::size_t>(i)] = static_cast<double>(v[i]);
  }
  return out;
}

}  // namespace

TEST_CASE("a ParameterSet holds a network's trained tensors in one vector with their layout") {
  Rng rng = make_stream(1, "set");
  Mlp net{nn::init::kaiming_normal, rng};
  const ParameterSet<float> set(net);
  const auto& layout = set.layout();
  REQUIRE(layout.tensors().size() == 4);
  CHECK(layout.tensors()[0].name == "0.weight");
  CHECK(layout.tensors()[0].shape == std::vector<Index>{5, 6});
  CHECK(layout.tensors()[0].role == ParameterRole::weight);
  CHECK(layout.tensors()[1].role == ParameterRole::bias);
  CHECK(layout.tensors()[3].name == "2.bias");
  CHECK(layout.tensors()[3].offset == 30 + 5 + 15);
  CHECK(layout.size() == 30 + 5 + 15 + 3);
  CHECK(set.size() == net.parameter_count());
  CHECK(set.bytes() == static_cast<std::size_t>(53) * sizeof(float));
  CHECK(as_vector(set.values()) == flat_values(net));
  CHECK(set.tensor("2.weight") == net.layer<2>().parameters()[0].value);
  CHECK_THROWS_AS((void)set.tensor("9.weight"), argument_error);
  CHECK(!set.has_mask());
  CHECK(set.all_finite());

  // copies share the layout: many client sets cost one layout
  const ParameterSet<float> copy = set;
  CHECK(copy.shared_layout() == set.shared_layout());
}

TEST_CASE("TensorSelection::all also takes buffers (BatchNorm's running statistics)") {
  BnNet net;
  const ParameterSet<float> trained(net);
  const ParameterSet<float> all(net, TensorSelection::all);
  CHECK(trained.layout().find("1.running_mean") == nullptr);
  REQUIRE(all.layout().find("1.running_mean") != nullptr);
  CHECK(all.layout().find("1.weight")->role == ParameterRole::scale);
  CHECK(all.size() == trained.size() + 10);
  CHECK(as_vector(all.values()) == flat_values(net, true));
}

TEST_CASE("write and read go by name and size, and a failed write changes nothing") {
  Rng rng = make_stream(2, "write");
  Mlp a{nn::init::kaiming_normal, rng};
  Mlp b{nn::init::kaiming_normal, rng};
  const ParameterSet<float> from_a(a);
  from_a.write(b);
  CHECK(flat_values(b) == flat_values(a));

  ParameterSet<float> reread(b);
  b.layer<0>().parameters()[1].value.setConstant(2.0F);
  reread.read(b);
  CHECK(reread.tensor("0.bias").isConstant(2.0F));

  // another network: the message names the tensor, and nothing is written
  OtherMlp other{nn::init::kaiming_normal, rng};
  const std::vector<double> before = flat_values(other);
  try {
    from_a.write(other);
    FAIL("no exception");
  } catch (const shape_error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find("'2.weight'") != std::string::npos);
  }
  CHECK(flat_values(other) == before);
  Renamed renamed;
  try {
    from_a.write(renamed);
    FAIL("no exception");
  } catch (const shape_error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find("'3.weight'") != std::string::npos);
  }
  CHECK_THROWS_AS(reread.read(other), shape_error);

  // a double set of a float network converts both ways
  ParameterSet<double> wide(a);
  CHECK(wide.values().cast<float>() == from_a.values());
  wide.values().array() += 1.0;
  wide.write(b);
  CHECK(b.layer<2>().parameters()[0].value ==
        (a.layer<2>().parameters()[0].value.array() + 1.0F).matrix());
}

TEST_CASE("masks travel with the values") {
  Rng rng = make_stream(3, "mask");
  Mlp net{nn::init::kaiming_normal, rng};
  auto& w = net.layer<0>().parameters()[0];
  w.mask = Vector<float>::Ones(w.size());
  w.mask[4] = 0;
  w.apply_mask();
  const ParameterSet<float> set(net);
  REQUIRE(set.has_mask());
  CHECK(set.mask().size() == set.size());
  CHECK(set.mask()[4] == 0);
  CHECK(set.mask().sum() == static_cast<float>(set.size() - 1));

  Mlp dense{nn::init::kaiming_normal, rng};
  set.write(dense);
  CHECK(dense.layer<0>().parameters()[0].masked());
  CHECK(!dense.layer<2>().parameters()[0].masked());  // an all-ones segment stays dense
  CHECK(dense.layer<0>().parameters()[0].value[4] == 0);
  CHECK_THROWS_AS(ParameterSet<float>(set).set_mask(Vector<float>::Ones(3)), shape_error);
}

TEST_CASE("arithmetic on the flat vector equals per-element loops") {
  Rng rng = make_stream(4, "arith");
  Mlp a{nn::init::kaiming_normal, rng};
  Mlp b{nn::init::kaiming_normal, rng};
  ParameterSet<double> x(a);
  const ParameterSet<double> y(b);
  const std::vector<double> xa = flat_values(a);
  const std::vector<double> yb = flat_values(b);
  double dot = 0;
  double squares = 0;
  for (std::size_t i = 0; i < xa.size(); ++i) {
    dot += xa[i] * yb[i];
    squares += xa[i] * xa[i];
  }
  CHECK(x.dot(y) == doctest::Approx(dot).epsilon(1e-12));
  CHECK(x.squared_norm() == doctest::Approx(squares).epsilon(1e-12));
  CHECK(x.norm() == doctest::Approx(std::sqrt(squares)).epsilon(1e-12));

  x.axpy(-0.5, y).scale(2.0);  // x = 2 (x − y/2)
  for (std::size_t i = 0; i < xa.size(); ++i) {
    CHECK(x.values()[static_cast<Index>(i)] == doctest::Approx(2 * (xa[i] - 0.5 * yb[i])));
  }
  x += y;
  x -= y;
  CHECK(x.values()[0] == doctest::Approx(2 * (xa[0] - 0.5 * yb[0])));

  const ParameterSet<double> other{OtherMlp{}};
  CHECK_THROWS_AS(x.axpy(1.0, other), shape_error);
  CHECK_THROWS_AS((void)x.dot(other), shape_error);
  x.values()[3] = std::numeric_limits<double>::quiet_NaN();
  CHECK(!x.all_finite());
}

TEST_CASE("a FedAvg round over three client sets equals the hand-computed weighted mean") {
  // Three clients start from the global model, each trains a few steps on its own data in ONE
  // worker network (client models are sets, the network is shared), the server averages with
  // weights n_k (McMahan et al. 2017).
  Rng rng = make_stream(5, "fedavg");
  Mlp worker{nn::init::kaiming_normal, rng};
  const ParameterSet<float> global(worker);
  const std::array<Index, 3> sizes{12, 30, 18};
  std::vector<ParameterSet<float>> clients(3, global);
  nn::SGD opt{{.learning_rate = 0.1}};
  nn::Trainer trainer{worker};
  for (std::size_t k = 0; k < clients.size(); ++k) {
    clients[k].write(worker);
    const Matrix<float> x = random_matrix(6, sizes[k], rng);
    std::vector<std::int32_t> y(static_cast<std::size_t>(sizes[k]));
    for (auto& label : y) {
      label = static_cast<std::int32_t>((uniform_index(rng, 2) + k) % 3);  // skewed labels
    }
    for (int step = 0; step < 3; ++step) {
      trainer.step(opt, batch_view(x), nn::Labels(y));
    }
    clients[k].read(worker);
  }
  const std::vector<double> weights{12, 30, 18};
  const ParameterSet<float> mean = weighted_mean<float>(clients, weights);

  // by hand, per value
  for (Index i = 0; i < mean.size(); ++i) {
    double expected = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      expected += weights[k] * static_cast<double>(clients[k].values()[i]);
    }
    expected /= 60.0;
    CHECK(static_cast<double>(mean.values()[i]) == doctest::Approx(expected).epsilon(1e-6));
  }
  // clients really differ, so the mean is not trivially one of them
  CHECK((clients[0].values() - clients[1].values()).norm() > 1e-3F);

  // the same clients trained in separate networks give the same sets: the worker keeps nothing
  // between clients but its scratch memory
  Mlp separate;
  global.write(separate);
  CHECK(ParameterSet<float>(separate).values() == global.values());
}

TEST_CASE("weighted_mean rejects bad weights, mismatched layouts and differing masks") {
  Rng rng = make_stream(6, "mean");
  Mlp net{nn::init::kaiming_normal, rng};
  const ParameterSet<float> a(net);
  const ParameterSet<float> b = a;
  const std::vector<ParameterSet<float>> two{a, b};
  CHECK_THROWS_AS(weighted_mean<float>(two, std::vector<double>{1.0}), argument_error);
  CHECK_THROWS_AS(weighted_mean<float>(two, std::vector<double>{1.0, -1.0}), argument_error);
  CHECK_THROWS_AS(weighted_mean<float>(two, std::vector<double>{0.0, 0.0}), argument_error);
  CHECK_THROWS_AS(weighted_mean<float>(two, std::vector<double>{1.0, std::nan("")}),
                  argument_error);
  CHECK_THROWS_AS(weighted_mean<float>(std::vector<ParameterSet<float>>{}, std::vector<double>{}),
                  argument_error);
  const std::vector<ParameterSet<float>> mixed{a, ParameterSet<float>(OtherMlp{})};
  CHECK_THROWS_AS(weighted_mean<float>(mixed, std::vector<double>{1, 1}), shape_error);
  ParameterSet<float> masked = a;
  masked.set_mask(Vector<float>::Ones(a.size()));
  const std::vector<ParameterSet<float>> masks{a, masked};
  CHECK_THROWS_AS(weighted_mean<float>(masks, std::vector<double>{1, 1}), argument_error);
}

TEST_CASE("copy_tensors matches by name and checks sizes, all or nothing") {
  Rng rng = make_stream(7, "copy");
  Mlp from{nn::init::kaiming_normal, rng};
  nn::rebind_scalar_t<Mlp, double> to;
  copy_tensors(from, to);
  CHECK(flat_values(to) == flat_values(from));

  OtherMlp other{nn::init::kaiming_normal, rng};
  const std::vector<double> before = flat_values(other);
  try {
    copy_tensors(from, other);
    FAIL("no exception");
  } catch (const shape_error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find("'2.weight'") != std::string::npos);
  }
  CHECK(flat_values(other) == before);  // 0.weight and 0.bias were not written either

  Renamed renamed;
  CHECK_THROWS_AS(copy_tensors(from, renamed), shape_error);
  CHECK_THROWS_AS(copy_tensors(from, renamed, TensorMatch::target_extra), shape_error);

  // a target with more tensors takes the source's and keeps the rest
  BnNet bn;
  nn::Sequential<nn::Dense<6, 5>> small{nn::init::kaiming_normal, rng};
  bn.layer<1>().parameters()[0].value.setConstant(3.0F);
  copy_tensors(small, bn, TensorMatch::target_extra);
  CHECK(bn.layer<0>().parameters()[0].value == small.layer<0>().parameters()[0].value);
  CHECK(bn.layer<1>().parameters()[0].value.isConstant(3.0F));
  CHECK_THROWS_AS(copy_tensors(small, bn), shape_error);  // exact: bn has more
}
