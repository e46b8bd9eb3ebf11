// edgescale/core/concepts.hpp — the contracts that more than one area relies on: named tensors
// (what networks, parameter files, parameter sets, optimizers, scorers and strategies visit) and
// batch sources (what a training loop pulls batches from).
//
// They live in core because both sides must see them: nn's layers and networks model
// NamedTensors and data's parameter files consume it; data's BatchSampler models BatchSource and
// nn's fit consumes it. Neither nn nor data includes the other (DESIGN §1).
//
//   for_each_tensor(net, [](std::string_view name, Parameter<float>& p) { ... });   // every tensor
//   for_each_parameter(net, [](std::string_view name, auto& p) { ... });            // trained ones
#pragma once

#include <edgescale/core/parameter.hpp>
#include <edgescale/core/random.hpp>
#include <edgescale/core/tensor.hpp>

#include <concepts>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>

// clang-format 14 cannot lay out C++20 concepts and requires-clauses (it glues `&&` to its
// operands and joins a requires-clause to the declaration after it): this file is laid out by
// hand, in the style of .clang-format.
// clang-format off
namespace edgescale {

/// A type that names a floating-point `scalar_type` (layers, networks, parameter holders).
template <class X>
concept HasScalarType = requires { typename X::scalar_type; } &&
                        std::floating_point<typename X::scalar_type>;

// ---------------------------------------------------------------------------------------------
// Named tensors: a type that holds Parameter<T> tensors and lets others visit them by name, in a
// fixed order. Two spellings are accepted, because a layer with a fixed handful of tensors is
// simplest as a span and a container (a network, a residual block) as a visitor:
//   for_each_tensor(f)   calls f(std::string_view name, Parameter<T>&) for each tensor (and a
//                        const overload with const Parameter<T>&, optional)
//   parameters()         returns std::span<Parameter<T>>; the name is Parameter::name
// The free functions below resolve the two once, so no caller repeats the choice. A type with
// neither has no tensors (an activation): visiting it visits nothing.
// ---------------------------------------------------------------------------------------------

template <class X>
concept HasTensorVisitor = HasScalarType<X> && requires(X& x) {
  x.for_each_tensor([](std::string_view, Parameter<typename X::scalar_type>&) {});
};

template <class X>
concept HasConstTensorVisitor = HasScalarType<X> && requires(const X& x) {
  x.for_each_tensor([](std::string_view, const Parameter<typename X::scalar_type>&) {});
};

template <class X>
concept HasParameterSpan = HasScalarType<X> && requires(X& x) {
  { x.parameters() } -> std::convertible_to<std::span<Parameter<typename X::scalar_type>>>;
};

template <class X>
concept HasConstParameterSpan = HasScalarType<X> && requires(const X& x) {
  { x.parameters() } -> std::convertible_to<std::span<const Parameter<typename X::scalar_type>>>;
};

/// Holds named tensors in one of the two spellings above: what parameter files save and load,
/// what ParameterSet reads and writes, what optimizers and scorers visit.
template <class X>
concept NamedTensors = HasTensorVisitor<X> || HasParameterSpan<X>;

/// Calls f(std::string_view name, Parameter<T>&) for every tensor of x (buffers included), in
/// x's order; with a const x, f receives const Parameter<T>&. Does nothing for a type without
/// tensors.
template <class X, class F>
void for_each_tensor(X& x, F&& f) {
  using L = std::remove_const_t<X>;
  constexpr bool read_only = std::is_const_v<X>;
  if constexpr (HasTensorVisitor<L>) {
    using T = typename L::scalar_type;
    if constexpr (read_only && !HasConstTensorVisitor<L>) {
      // Only non-const access is offered: visit through it, handing out const references.
      const_cast<L&>(x).for_each_tensor(
          [&](std::string_view name, Parameter<T>& p) { f(name, std::as_const(p)); });
    } else {
      x.for_each_tensor(f);
    }
  } else if constexpr (HasParameterSpan<L>) {
    if constexpr (read_only && !HasConstParameterSpan<L>) {
      for (const auto& p : const_cast<L&>(x).parameters()) {
        f(std::string_view(p.name), p);
      }
    } else {
      for (auto& p : x.parameters()) {
        f(std::string_view(p.name), p);
      }
    }
  }
}

/// As for_each_tensor, over the trained tensors only (weights, biases, scales; not buffers):
/// what optimizers, gradient checks and scorers visit.
template <class X, class F>
void for_each_parameter(X& x, F&& f) {
  for_each_tensor(x, [&](std::string_view name, auto& p) {
    if (p.trainable()) {
      f(name, p);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Batch sources: where a training or evaluation loop gets its mini-batches. One epoch is
//   source.start_epoch(rng);            // or start_epoch() for dataset order (evaluation)
//   while (source.next()) { const auto& b = source.batch(); use(b.features, b.targets); }
// `features` is a features x batch view (one sample per column); `targets` is what the loss
// compares the output with: class labels (std::span<const std::int32_t>) for cross-entropy, a
// batch view for regression. samples_per_epoch() says how many samples an epoch yields (for
// progress display). data::BatchSampler is the library's model; a user's own source (streamed
// from disk, augmented on the fly) plugs into nn::fit the same way.
// ---------------------------------------------------------------------------------------------

template <class B, class T>
concept SampleBatch = requires(const B& b) {
  { b.features } -> std::convertible_to<ConstBatchView<T>>;
  b.targets;
};

template <class S, class T>
concept BatchSource = requires(S& s, Rng& rng) {
  s.start_epoch(rng);
  s.start_epoch();
  { s.next() } -> std::same_as<bool>;
  { s.batch() } -> SampleBatch<T>;
  { s.samples_per_epoch() } -> std::convertible_to<Index>;
};

/// The targets type of a batch source's batches.
template <class S>
using batch_targets_t = std::remove_cvref_t<decltype(std::declval<S&>().batch().targets)>;

}  // namespace edgescale
// clang-format on
