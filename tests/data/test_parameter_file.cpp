// Parameter files (data/parameter_file.hpp): a network's tensors as one .npy file each.
#include <edgescale/data/npy.hpp>
#include <edgescale/data/parameter_file.hpp>

#include "data/temp_dir.hpp"
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

using namespace edgescale;
using namespace edgescale::data;
using edgescale::test::file_bytes;
using edgescale::test::TempDir;
using edgescale::test::write_file;

namespace {

const std::filesystem::path fixtures = std::filesystem::path(EDGESCALE_TEST_DATA_DIR) / "npy";

/// A network of three tensors in the shape of PyTorch's nn.Sequential(Linear(2, 3),
/// BatchNorm1d(3)).
template <class T>
struct TinyNet {
  using scalar_type = T;
  Parameter<T> weight{"weight", {3, 2}, ParameterRole::weight};
  Parameter<T> bias{"bias", {3}, ParameterRole::bias};
  Parameter<T> running_mean{"running_mean", {3}, ParameterRole::buffer};

  template <class F>
  void for_each_tensor(F&& f) {
    f("0.weight", weight);
    f("0.bias", bias);
    f("1.running_mean", running_mean);
  }
  template <class F>
  void for_each_tensor(F&& f) const {
    f("0.weight", weight);
    f("0.bias", bias);
    f("1.running_mean", running_mean);
  }

  void fill(T start) {
    T v = start;
    for (Parameter<T>* p : {&weight, &bias, &running_mean}) {
      for (Index i = 0; i < p->size(); ++i) {
        p->value[i] = v;
        v += T(0.25);
      }
    }
  }
};

/// Only the Linear layer: what the numpy-made fixture in tests/fixtures/npy/params holds.
template <class T>
struct LinearNet {
  using scalar_type = T;
  Parameter<T> weight{"weight", {3, 2}, ParameterRole::weight};
  Parameter<T> bias{"bias", {3}, ParameterRole::bias};

  template <class F>
  void for_each_tensor(F&& f) {
    f("0.weight", weight);
    f("0.bias", bias);
  }
  template <class F>
  void for_each_tensor(F&& f) const {
    f("0.weight", weight);
    f("0.bias", bias);
  }
};

struct NoTensors {};

/// Two tensors under one name: the second file would overwrite the first.
struct DuplicateNet {
  using scalar_type = float;
  Parameter<float> a{"weight", {1}, ParameterRole::weight};
  Parameter<float> b{"weight", {1}, ParameterRole::weight};
  template <class F>
  void for_each_tensor(F&& f) {
    f("0.weight", a);
    f("0.weight", b);
  }
  template <class F>
  void for_each_tensor(F&& f) const {
    f("0.weight", a);
    f("0.weight", b);
  }
};

/// A tensor whose name would leave the directory.
struct EscapingNet {
  using scalar_type = float;
  Parameter<float> weight{"weight", {1}, ParameterRole::weight};
  template <class F>
  void for_each_tensor(F&& f) {
    f("../0.weight", weight);
  }
  template <class F>
  void for_each_tensor(F&& f) const {
    f("../0.weight", weight);
  }
};

}  // namespace

static_assert(NamedTensors<TinyNet<float>>);
static_assert(NamedTensors<LinearNet<double>>);
static_assert(!NamedTensors<NoTensors>);
static_assert(!NamedTensors<int>);

TEST_CASE_TEMPLATE("save_parameters and load_parameters round-trip a network", T, float, double) {
  const TempDir dir;
  TinyNet<T> net;
  net.fill(T(-1.5));
  const auto path = dir.path() / "run" / "weights";  // created, parents too
  save_parameters(net, path);
  CHECK(std::filesystem::exists(path / "0.weight.npy"));
  CHECK(std::filesystem::exists(path / "0.bias.npy"));
  CHECK(std::filesystem::exists(path / "1.running_mean.npy"));
  const auto weight = load_npy<T>(path / "0.weight.npy");
  CHECK(weight.shape == std::vector<Index>{3, 2});
  CHECK(weight.data[1] == T(-1.25));

  TinyNet<T> loaded;
  load_parameters(loaded, path);
  CHECK(loaded.weight.value == net.weight.value);
  CHECK(loaded.bias.value == net.bias.value);
  CHECK(loaded.running_mean.value == net.running_mean.value);
}

TEST_CASE("a failed load names the tensor and the file and leaves the network unchanged") {
  const TempDir dir;
  TinyNet<float> saved;
  saved.fill(1.0F);
  save_parameters(saved, dir.path());
  TinyNet<float> net;
  net.fill(-7.0F);
  const TinyNet<float> before = net;
  auto unchanged = [&] {
    CHECK(net.weight.value == before.weight.value);
    CHECK(net.bias.value == before.bias.value);
    CHECK(net.running_mean.value == before.running_mean.value);
  };

  SUBCASE("wrong shape") {
    const std::vector<float> four{1, 2, 3, 4};
    save_npy(dir.path() / "0.bias.npy", four.data(), std::array<Index, 1>{4});
    CHECK_THROWS_WITH_AS(load_parameters(net, dir.path()),
                         doctest::Contains("tensor '0.bias': file '"), shape_error);
    CHECK_THROWS_WITH_AS(
        load_parameters(net, dir.path()),
        doctest::Contains("0.bias.npy' has shape (4,) but the network expects (3,)"), shape_error);
    unchanged();
  }
  SUBCASE("missing file") {
    std::filesystem::remove(dir.path() / "1.running_mean.npy");
    try {
      load_parameters(net, dir.path());
      FAIL("no exception");
    } catch (const format_error&) {
      FAIL("a missing file is not a format error");
    } catch (const error& e) {
      CHECK(std::string(e.what()).find("tensor '1.running_mean'") != std::string::npos);
      CHECK(std::string(e.what()).find("1.running_mean.npy' does not exist") != std::string::npos);
    }
    unchanged();
  }
  SUBCASE("corrupt file") {
    const std::string bytes = file_bytes(dir.path() / "0.bias.npy");
    write_file(dir.path() / "0.bias.npy", bytes.substr(0, bytes.size() - 2));
    CHECK_THROWS_WITH_AS(load_parameters(net, dir.path()),
                         doctest::Contains("tensor '0.bias': .npy file '"), format_error);
    unchanged();
  }
  SUBCASE("a value that does not fit the network's type") {
    const std::vector<double> big{1e300, 0, 0};
    save_npy(dir.path() / "0.bias.npy", big.data(), std::array<Index, 1>{3});
    TinyNet<float> other;
    load_parameters(other, dir.path());  // rounds to float, as numpy's astype does
    CHECK(std::isinf(other.bias.value[0]));
  }
}

TEST_CASE("parameters exported with numpy load into a network (float32 into double too)") {
  const auto dir = fixtures / "params";
  LinearNet<float> f;
  load_parameters(f, dir);
  LinearNet<double> d;
  load_parameters(d, dir);
  for (Index k = 0; k < 6; ++k) {
    CHECK(f.weight.value[k] == (static_cast<float>(k) - 2.5F) / 2);
    CHECK(d.weight.value[k] == (static_cast<double>(k) - 2.5) / 2);
  }
  CHECK(f.bias.value == Vector<float>{{0.5F, -0.5F, 1.0F}});
  // the extra tensor of TinyNet is not in the directory
  TinyNet<float> tiny;
  CHECK_THROWS_WITH_AS(load_parameters(tiny, dir), doctest::Contains("1.running_mean"), error);
}

TEST_CASE("tensor names must be file names, once each") {
  const TempDir dir;
  EscapingNet net;
  CHECK_THROWS_WITH_AS(save_parameters(net, dir.path()), doctest::Contains("'../0.weight'"),
                       argument_error);
  CHECK_THROWS_AS(load_parameters(net, dir.path()), argument_error);
  CHECK_THROWS_WITH_AS(save_parameters(DuplicateNet{}, dir.path()),
                       doctest::Contains("'0.weight' appears twice"), argument_error);
  TinyNet<float> inconsistent;
  inconsistent.bias.value.resize(5);
  CHECK_THROWS_WITH_AS(save_parameters(inconsistent, dir.path()),
                       doctest::Contains("tensor '0.bias' has 5 values but shape (3,)"),
                       shape_error);
}

TEST_CASE_TEMPLATE("a pruning mask is saved beside its tensor as <name>_mask.npy and restored", T,
                   float, double) {
  const TempDir dir;
  TinyNet<T> net;
  net.fill(T(0.5));
  net.weight.mask = Vector<T>::Ones(6);
  net.weight.mask[1] = T(0);
  net.weight.mask[4] = T(0);
  net.weight.apply_mask();
  save_parameters(net, dir.path());
  // torch.nn.utils.prune's buffer name, in the tensor's shape; dense tensors get no mask file.
  const auto mask = load_npy<T>(dir.path() / "0.weight_mask.npy");
  CHECK(mask.shape == std::vector<Index>{3, 2});
  CHECK(mask.data == std::vector<T>{1, 0, 1, 1, 0, 1});
  CHECK_FALSE(std::filesystem::exists(dir.path() / "0.bias_mask.npy"));

  TinyNet<T> loaded;
  loaded.bias.mask = Vector<T>::Ones(3);  // a mask the files do not have is cleared
  load_parameters(loaded, dir.path());
  CHECK(loaded.weight.mask == net.weight.mask);
  CHECK(loaded.weight.value == net.weight.value);
  CHECK(loaded.weight.value[1] == T(0));
  CHECK_FALSE(loaded.bias.masked());

  SUBCASE("saving the tensor dense again removes the mask file") {
    net.weight.mask.resize(0);
    save_parameters(net, dir.path());
    CHECK_FALSE(std::filesystem::exists(dir.path() / "0.weight_mask.npy"));
    load_parameters(loaded, dir.path());
    CHECK_FALSE(loaded.weight.masked());
  }
  SUBCASE("a mask file with an entry other than 0 and 1 is refused; nothing changes") {
    const std::array<T, 6> bad{1, 0.5, 1, 1, 0, 1};
    const std::array<Index, 2> shape{3, 2};
    save_npy(dir.path() / "0.weight_mask.npy", bad.data(), std::span<const Index>(shape));
    TinyNet<T> fresh;
    fresh.fill(T(7));
    CHECK_THROWS_AS(load_parameters(fresh, dir.path()), format_error);
    CHECK(fresh.weight.value[1] == T(7.25));
    CHECK_FALSE(fresh.weight.masked());
  }
  SUBCASE("a mask file of another shape is refused, naming it") {
    const std::array<T, 3> wrong{1, 0, 1};
    const std::array<Index, 1> shape{3};
    save_npy(dir.path() / "0.weight_mask.npy", wrong.data(), std::span<const Index>(shape));
    TinyNet<T> fresh;
    CHECK_THROWS_WITH_AS(load_parameters(fresh, dir.path()),
                         doctest::Contains("tensor '0.weight_mask'"), shape_error);
    CHECK_FALSE(fresh.weight.masked());
  }
}
