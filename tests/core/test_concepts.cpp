// The shared contracts of core/concepts.hpp: both spellings of named tensors visited by the free
// functions (const and not), trained tensors only, and batch sources.
#include <edgescale/core/concepts.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

using namespace edgescale;

namespace {

/// Span spelling, non-const access only.
struct SpanHolder {
  using scalar_type = double;
  std::array<Parameter<double>, 2> p{Parameter<double>("weight", {2, 3}, ParameterRole::weight),
                                     Parameter<double>("running", {3}, ParameterRole::buffer)};
  std::span<Parameter<double>> parameters() { return p; }
};

/// Visitor spelling, with a const overload.
struct VisitorHolder {
  using scalar_type = float;
  Parameter<float> a{"a", {4}, ParameterRole::scale};
  Parameter<float> b{"b", {1}, ParameterRole::bias};
  template <class F>
  void for_each_tensor(F&& f) {
    f("x.a", a);
    f("x.b", b);
  }
  template <class F>
  void for_each_tensor(F&& f) const {
    f("x.a", a);
    f("x.b", b);
  }
};

struct NoTensors {
  using scalar_type = float;
};

struct Source {
  struct Batch {
    ConstBatchView<float> features;
    std::span<const std::int32_t> targets;
  };
  void start_epoch(Rng&) {}
  void start_epoch() {}
  bool next() { return false; }
  Batch batch() const { return {ConstBatchView<float>(nullptr, 0, 0), {}}; }
  Index samples_per_epoch() const { return 0; }
};
struct NoTargets {
  struct Batch {
    ConstBatchView<float> features;
  };
  void start_epoch(Rng&) {}
  void start_epoch() {}
  bool next() { return false; }
  Batch batch() const { return {ConstBatchView<float>(nullptr, 0, 0)}; }
  Index samples_per_epoch() const { return 0; }
};

}  // namespace

static_assert(NamedTensors<SpanHolder> && HasParameterSpan<SpanHolder>);
static_assert(!HasConstParameterSpan<SpanHolder>);
static_assert(NamedTensors<VisitorHolder> && HasConstTensorVisitor<VisitorHolder>);
static_assert(!NamedTensors<NoTensors> && !NamedTensors<int>);
static_assert(BatchSource<Source, float>);
static_assert(!BatchSource<Source, double>);
static_assert(!BatchSource<NoTargets, float>);
static_assert(std::is_same_v<batch_targets_t<Source>, std::span<const std::int32_t>>);

TEST_CASE("for_each_tensor resolves the span and visitor spellings, const or not") {
  SpanHolder s;
  std::vector<std::string> names;
  for_each_tensor(s, [&](std::string_view n, Parameter<double>& p) {
    names.emplace_back(n);
    p.value.setConstant(1.5);
  });
  CHECK(names == std::vector<std::string>{"weight", "running"});
  CHECK(s.p[0].value.isConstant(1.5));
  const SpanHolder& cs = s;
  double total = 0;
  for_each_tensor(cs,
                  [&](std::string_view, const Parameter<double>& p) { total += p.value.sum(); });
  CHECK(total == doctest::Approx(1.5 * 9));

  const VisitorHolder v;
  names.clear();
  for_each_tensor(v, [&](std::string_view n, const Parameter<float>&) { names.emplace_back(n); });
  CHECK(names == std::vector<std::string>{"x.a", "x.b"});

  int visited = 0;
  NoTensors none;
  for_each_tensor(none, [&](std::string_view, auto&) { ++visited; });
  CHECK(visited == 0);
}

TEST_CASE("for_each_parameter skips buffers") {
  SpanHolder s;
  std::vector<std::string> names;
  for_each_parameter(s, [&](std::string_view n, auto&) { names.emplace_back(n); });
  CHECK(names == std::vector<std::string>{"weight"});
  Parameter<double> scale("gamma", {3}, ParameterRole::scale);
  CHECK(scale.trainable());
  CHECK(!scale.prunable());
  CHECK(s.p[0].prunable());
}
