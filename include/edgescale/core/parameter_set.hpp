// edgescale/core/parameter_set.hpp — a network's tensors as one flat vector with its layout, and
// copies between networks matched by name.
//
//   ParameterSet<float> global(net);                  // every trained tensor, in one vector
//   ParameterSet<float> client = global;               // a client model: one vector, shared layout
//   client.write(worker_net);  train(worker_net);  client.read(worker_net);
//   global = weighted_mean<float>(clients, sample_counts);   // FedAvg: Σ n_k x_k / Σ n_k
//   global.write(net);                                 // checked by name and size
//
// Why one vector: what federated strategies, server optimizers, pruning schedules and MPI do with
// parameters is arithmetic on all of them at once (a weighted mean, a delta, a momentum, a norm,
// one allreduce buffer). Held flat, each is one Eigen expression over one contiguous buffer, with
// no per-tensor loop; the layout (names, shapes, roles, offsets) says where each tensor sits and
// is shared by every set taken from the same network, so ten thousand client sets cost ten
// thousand vectors and one layout.
//
// Reading from and writing to a network matches tensors by their qualified name ("3.weight") and
// checks their sizes; a mismatch raises shape_error naming the tensor, and a failed write leaves
// the network unchanged. Masks travel with the values where a tensor has one.
#pragma once

#include <edgescale/core/concepts.hpp>
#include <edgescale/core/error.hpp>
#include <edgescale/core/parameter.hpp>
#include <edgescale/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgescale {

/// Which tensors a ParameterSet holds: the trained ones (weights, biases, scales), all of them
/// (buffers such as BatchNorm's running statistics too, as FedAvg over BatchNorm networks wants),
/// or the prunable ones (role weight: what pruning scores and masks).
enum class TensorSelection { trained, all, prunable };

/// Where one tensor sits in a flat parameter vector.
struct TensorSlot {
  std::string name;          ///< qualified name, e.g. "3.weight"
  std::vector<Index> shape;  ///< PyTorch order
  ParameterRole role = ParameterRole::weight;
  Index offset = 0;  ///< first value in the flat vector
  Index size = 0;    ///< number of values
};

namespace detail {

// Built by appending: g++ 12 at -O3 reports a false -Wrestrict overlap inside
// `"'" + std::string(name)` (GCC bug 105329), which broke the -Werror x86-64-v4 build.
inline std::string quote_tensor(std::string_view name) {
  std::string quoted;
  quoted.reserve(name.size() + 2);
  quoted.push_back('\'');
  quoted.append(name);
  quoted.push_back('\'');
  return quoted;
}

/// Finds visited names in a list of known names. Visiting order usually equals the list's order,
/// so the next position is tried first and the lookup is linear only when orders differ.
class NameMatcher {
 public:
  explicit NameMatcher(std::vector<std::string_view> names)
      : names_(std::move(names)), used_(names_.size(), false) {}

  /// Index of `name` among the known names; npos if absent. Marks it used; a name visited twice
  /// is reported as absent the second time.
  std::size_t find(std::string_view name) {
    std::size_t i = next_ < names_.size() && names_[next_] == name ? next_ : npos;
    for (std::size_t j = 0; i == npos && j < names_.size(); ++j) {
      if (names_[j] == name) {
        i = j;
      }
    }
    if (i == npos || used_[i]) {
      return npos;
    }
    used_[i] = true;
    next_ = i + 1;
    return i;
  }
  /// The first known name that was never found, or npos.
  [[nodiscard]] std::size_t first_unused() const {
    for (std::size_t i = 0; i < used_.size(); ++i) {
      if (!used_[i]) {
        return i;
      }
    }
    return npos;
  }
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

 private:
  std::vector<std::string_view> names_;
  std::vector<bool> used_;
  std::size_t next_ = 0;
};

template <class P>
bool selected(const P& p, TensorSelection which) {
  switch (which) {
    case TensorSelection::all:
      return true;
    case TensorSelection::prunable:
      return p.prunable();
    case TensorSelection::trained:
      break;
  }
  return p.trainable();
}

}  // namespace detail

/// The layout of a flat parameter vector: which tensors, in which order, at which offsets.
class ParameterLayout {
 public:
  ParameterLayout() = default;

  /// The layout of x's tensors (in x's visiting order).
  template <NamedTensors X>
  static ParameterLayout of(const X& x, TensorSelection which = TensorSelection::trained) {
    ParameterLayout layout;
    layout.selection_ = which;
    for_each_tensor(x, [&](std::string_view name, const auto& p) {
      if (detail::selected(p, which)) {
        layout.slots_.push_back(
            TensorSlot{std::string(name), p.shape, p.role, layout.size_, p.size()});
        layout.size_ += p.size();
      }
    });
    return layout;
  }

  [[nodiscard]] std::span<const TensorSlot> tensors() const { return slots_; }
  /// Total number of values.
  [[nodiscard]] Index size() const { return size_; }
  [[nodiscard]] TensorSelection selection() const { return selection_; }
  /// The slot named `name`, or nullptr.
  [[nodiscard]] const TensorSlot* find(std::string_view name) const {
    for (const TensorSlot& s : slots_) {
      if (s.name == name) {
        return &s;
      }
    }
    return nullptr;
  }
  /// The names in order (views into this layout).
  [[nodiscard]] std::vector<std::string_view> names() const {
    std::vector<std::string_view> n;
    n.reserve(slots_.size());
    for (const TensorSlot& s : slots_) {
      n.emplace_back(s.name);
    }
    return n;
  }

  /// For each of `names` (another holder's tensors, e.g. an optimizer's), the index of the slot
  /// with that name. Throws shape_error (prefixed by `what`) unless the names are exactly this
  /// layout's tensors, in any order.
  [[nodiscard]] std::vector<std::size_t> match(std::span<const std::string> names,
                                               std::string_view what) const {
    detail::NameMatcher matcher(this->names());
    std::vector<std::size_t> slots;
    slots.reserve(names.size());
    for (const std::string& name : names) {
      const std::size_t i = matcher.find(name);
      if (i == detail::NameMatcher::npos) {
        throw shape_error(std::string(what) + ": tensor " + detail::quote_tensor(name) +
                          " is not in the layout");
      }
      slots.push_back(i);
    }
    if (const std::size_t i = matcher.first_unused(); i != detail::NameMatcher::npos) {
      throw shape_error(std::string(what) + ": the layout's tensor " +
                        detail::quote_tensor(slots_[i].name) + " has no counterpart");
    }
    return slots;
  }

  /// Same tensors (names, shapes, roles) in the same order.
  friend bool operator==(const ParameterLayout& a, const ParameterLayout& b) {
    return a.difference(b).empty();
  }

  /// Empty when `other` is the same layout, else what differs first ("tensor '0.weight' has
  /// shape (300, 784) here and (100, 784) there").
  [[nodiscard]] std::string difference(const ParameterLayout& other) const {
    const std::size_t n = std::min(slots_.size(), other.slots_.size());
    for (std::size_t i = 0; i < n; ++i) {
      const TensorSlot& a = slots_[i];
      const TensorSlot& b = other.slots_[i];
      if (a.name != b.name) {
        return "tensor " + std::to_string(i) + " is " + detail::quote_tensor(a.name) +
               " here and " + detail::quote_tensor(b.name) + " there";
      }
      if (a.shape != b.shape || a.role != b.role) {
        return "tensor " + detail::quote_tensor(a.name) + " has " + std::to_string(a.size) +
               " values here and " + std::to_string(b.size) + " there (or another role)";
      }
    }
    if (slots_.size() != other.slots_.size()) {
      return std::to_string(slots_.size()) + " tensors here, " +
             std::to_string(other.slots_.size()) + " there";
    }
    return {};
  }

 private:
  std::vector<TensorSlot> slots_;
  Index size_ = 0;
  TensorSelection selection_ = TensorSelection::trained;
};

/// A network's tensors (or any NamedTensors') as one contiguous vector of T plus a shared layout.
/// T may differ from the network's scalar type (a double set of a float network); values are
/// converted on reading and writing.
template <class T>
class ParameterSet {
 public:
  using scalar_type = T;

  ParameterSet() = default;

  /// Zeros in the given layout.
  explicit ParameterSet(std::shared_ptr<const ParameterLayout> layout)
      : layout_(std::move(layout)), values_(Vector<T>::Zero(layout_ ? layout_->size() : 0)) {}

  /// The values (and masks, where present) of x's tensors.
  template <NamedTensors X>
  explicit ParameterSet(const X& x, TensorSelection which = TensorSelection::trained)
      : ParameterSet(std::make_shared<const ParameterLayout>(ParameterLayout::of(x, which))) {
    read(x);
  }

  /// A set of zeros with this set's layout (no mask).
  [[nodiscard]] ParameterSet zeros_like() const { return ParameterSet(layout_); }

  // ---- to and from networks, by name ----

  /// Reads x's values (and masks) into this set; x must hold the layout's tensors by name and size.
  template <NamedTensors X>
  void read(const X& x) {
    bool any_mask = false;
    visit_matched(x, "read", [&](const TensorSlot& s, const auto& p) {
      segment(s) = p.value.template cast<T>();
      any_mask = any_mask || p.masked();
    });
    if (!any_mask) {
      mask_.resize(0);
      return;
    }
    mask_.setOnes(values_.size());
    visit_matched(x, "read", [&](const TensorSlot& s, const auto& p) {
      if (p.masked()) {
        mask_.segment(s.offset, s.size) = p.mask.template cast<T>();
      }
    });
  }

  /// Reads x's gradients into this set (a gradient set: the layout must hold trained tensors).
  template <NamedTensors X>
  void read_gradients(const X& x) {
    visit_matched(x, "read gradients", [&](const TensorSlot& s, const auto& p) {
      if (!p.trainable()) {
        throw argument_error("ParameterSet: tensor " + detail::quote_tensor(s.name) +
                             " is a buffer and has no gradient");
      }
      segment(s) = p.grad.template cast<T>();
    });
  }

  /// Writes this set's values into x's tensors, matched by name and size; when the set carries
  /// masks, a tensor whose mask segment has a zero (or that is masked already) gets the mask.
  /// Either every tensor is written or, on a mismatch, none.
  template <NamedTensors X>
  void write(X& x) const {
    visit_matched(std::as_const(x), "write", [](const TensorSlot&, const auto&) {});  // check
    visit_matched(x, "write", [&](const TensorSlot& s, auto& p) {
      using U = typename std::remove_cvref_t<decltype(p)>::scalar_type;
      p.value = segment(s).template cast<U>();
      if (has_mask()) {
        const auto m = mask_.segment(s.offset, s.size);
        if (p.masked() || (m.array() == T(0)).any()) {
          p.mask = m.template cast<U>();
        }
      }
    });
  }

  /// Calls f(Parameter<U>& p, segment) for each of x's tensors in the layout, with the matching
  /// read-only segment of this set: per-tensor work that involves a network and a set, such as a
  /// FedProx gradient correction p.grad += μ (p.value − segment).
  template <NamedTensors X, class F>
  void zip(X& x, F&& f) const {
    visit_matched(x, "zip", [&](const TensorSlot& s, auto& p) { f(p, segment(s)); });
  }

  // ---- the flat vector and its parts ----

  [[nodiscard]] const ParameterLayout& layout() const {
    static const ParameterLayout empty;
    return layout_ ? *layout_ : empty;
  }
  [[nodiscard]] const std::shared_ptr<const ParameterLayout>& shared_layout() const {
    return layout_;
  }
  /// The flat vector: every tensor's values, one after another in layout order.
  Vector<T>& values() { return values_; }
  [[nodiscard]] const Vector<T>& values() const { return values_; }
  [[nodiscard]] Index size() const { return values_.size(); }
  /// Bytes of the values: what a client sends or receives for this set (a mask is structure
  /// both sides already know, and is not counted).
  [[nodiscard]] std::size_t bytes() const {
    return static_cast<std::size_t>(values_.size()) * sizeof(T);
  }

  /// The values of one tensor, by qualified name; throws argument_error for an unknown name.
  Eigen::Map<Vector<T>> tensor(std::string_view name) {
    const TensorSlot& s = slot(name);
    return {values_.data() + s.offset, s.size};
  }
  [[nodiscard]] Eigen::Map<const Vector<T>> tensor(std::string_view name) const {
    const TensorSlot& s = slot(name);
    return {values_.data() + s.offset, s.size};
  }

  [[nodiscard]] bool has_mask() const { return mask_.size() != 0; }
  /// 0/1 per value (1 for tensors without a mask); empty when no tensor is masked.
  [[nodiscard]] const Vector<T>& mask() const { return mask_; }
  /// Sets the mask (entries 0 or 1, one per value), or clears it with an empty vector.
  void set_mask(Vector<T> mask) {
    if (mask.size() != 0 && mask.size() != values_.size()) {
      throw shape_error("ParameterSet::set_mask: " + std::to_string(mask.size()) +
                        " mask entries for " + std::to_string(values_.size()) + " values");
    }
    mask_ = std::move(mask);
  }

  /// No NaN or infinity among the values (what a server checks before aggregating an update).
  [[nodiscard]] bool all_finite() const { return values_.allFinite(); }

  // ---- arithmetic on the flat vector (layouts must agree: same tensors, same order) ----

  /// this += a · x.
  ParameterSet& axpy(T a, const ParameterSet& x) {
    check_compatible(x, "axpy");
    values_.noalias() += a * x.values_;
    return *this;
  }
  /// this *= a.
  ParameterSet& scale(T a) {
    values_ *= a;
    return *this;
  }
  ParameterSet& operator+=(const ParameterSet& x) { return axpy(T(1), x); }
  ParameterSet& operator-=(const ParameterSet& x) { return axpy(T(-1), x); }
  /// Σ this_i x_i.
  [[nodiscard]] T dot(const ParameterSet& x) const {
    check_compatible(x, "dot");
    return values_.dot(x.values_);
  }
  [[nodiscard]] T squared_norm() const { return values_.squaredNorm(); }
  [[nodiscard]] T norm() const { return values_.norm(); }

  /// Throws shape_error unless x has the same layout (same tensors, shapes, order).
  void check_compatible(const ParameterSet& x, const char* what) const {
    if (layout_ == x.layout_) {
      return;
    }
    const std::string d = layout().difference(x.layout());
    if (!d.empty()) {
      throw shape_error(std::string("ParameterSet::") + what + ": layouts differ: " + d);
    }
  }

 private:
  Eigen::Map<Vector<T>> segment(const TensorSlot& s) { return {values_.data() + s.offset, s.size}; }
  [[nodiscard]] Eigen::Map<const Vector<T>> segment(const TensorSlot& s) const {
    return {values_.data() + s.offset, s.size};
  }

  [[nodiscard]] const TensorSlot& slot(std::string_view name) const {
    const TensorSlot* s = layout().find(name);
    if (s == nullptr) {
      throw argument_error("ParameterSet: no tensor named " + detail::quote_tensor(name));
    }
    return *s;
  }

  /// Visits x's tensors of the layout's selection, calling f(slot, parameter) for each after
  /// checking that the name is in the layout and the size agrees; then checks that every slot was
  /// visited. Throws shape_error naming the tensor otherwise.
  template <class X, class F>
  void visit_matched(X& x, const char* what, F&& f) const {
    const ParameterLayout& l = layout();
    detail::NameMatcher matcher(l.names());
    const auto fail = [&](const std::string& problem) {
      throw shape_error(std::string("ParameterSet::") + what + ": " + problem);
    };
    for_each_tensor(x, [&](std::string_view name, auto& p) {
      if (!detail::selected(p, l.selection())) {
        return;
      }
      const std::size_t i = matcher.find(name);
      if (i == detail::NameMatcher::npos) {
        fail("the network's tensor " + detail::quote_tensor(name) + " is not in the set");
      }
      const TensorSlot& s = l.tensors()[i];
      if (p.size() != s.size) {
        fail("tensor " + detail::quote_tensor(name) + " has " + std::to_string(p.size()) +
             " values in the network and " + std::to_string(s.size) + " in the set");
      }
      f(s, p);
    });
    if (const std::size_t i = matcher.first_unused(); i != detail::NameMatcher::npos) {
      fail("the set's tensor " + detail::quote_tensor(l.tensors()[i].name) +
           " is not in the network");
    }
  }

  std::shared_ptr<const ParameterLayout> layout_;
  Vector<T> values_;
  Vector<T> mask_;
};

/// Σ_k w_k x_k / Σ_k w_k over sets of one layout (FedAvg's aggregate with w_k = n_k), accumulated
/// in input order, so the result does not depend on how the sets were computed. Throws
/// argument_error for no sets, a count mismatch, or weights that are negative, not finite or sum
/// to zero; shape_error for layouts that differ. The result carries the first set's mask, and
/// masks must agree.
template <class T>
ParameterSet<T> weighted_mean(std::span<const ParameterSet<T>* const> sets,
                              std::span<const double> weights) {
  if (sets.empty() || sets.size() != weights.size()) {
    throw argument_error("weighted_mean: " + std::to_string(sets.size()) + " sets and " +
                         std::to_string(weights.size()) + " weights (need as many, at least one)");
  }
  double total = 0;
  for (const double w : weights) {
    if (!(w >= 0) || !std::isfinite(w)) {
      throw argument_error("weighted_mean: weights must be finite and >= 0, got " +
                           std::to_string(w));
    }
    total += w;
  }
  if (!(total > 0)) {
    throw argument_error("weighted_mean: the weights sum to zero");
  }
  ParameterSet<T> mean = sets[0]->zeros_like();
  for (std::size_t k = 0; k < sets.size(); ++k) {
    mean.check_compatible(*sets[k], "weighted_mean");
    const Vector<T>& mask = sets[k]->mask();
    if (mask.size() != sets[0]->mask().size() || (mask.size() != 0 && mask != sets[0]->mask())) {
      throw argument_error("weighted_mean: set " + std::to_string(k) +
                           " has another mask than set 0");
    }
    mean.values().noalias() += static_cast<T>(weights[k] / total) * sets[k]->values();
  }
  mean.set_mask(sets[0]->mask());
  return mean;
}

/// weighted_mean over a contiguous range of sets.
template <class T>
ParameterSet<T> weighted_mean(std::span<const ParameterSet<T>> sets,
                              std::span<const double> weights) {
  std::vector<const ParameterSet<T>*> pointers;
  pointers.reserve(sets.size());
  for (const ParameterSet<T>& s : sets) {
    pointers.push_back(&s);
  }
  return weighted_mean<T>(std::span<const ParameterSet<T>* const>(pointers), weights);
}

/// How copy_tensors matches the two sides' tensors.
enum class TensorMatch {
  exact,         ///< both hold the same tensor names, and every tensor is copied
  target_extra,  ///< every source tensor is copied; the target may hold more (a wrapped network's
                 ///< added tensors), which are left as they are
  source_extra,  ///< every target tensor is filled; the source may hold more, which are not copied
                 ///< (from a wrapped network back to the plain one)
};

/// Copies the values of `from`'s tensors into `to`'s tensors of the same qualified name (any two
/// NamedTensors, any scalar types: float into double, a plain network into its transformed twin).
/// Masks are copied where the source tensor has one. Sizes must agree; every tensor is checked
/// before any is written, so on error (shape_error naming the tensor) `to` is unchanged.
template <NamedTensors From, NamedTensors To>
void copy_tensors(const From& from, To& to, TensorMatch match = TensorMatch::exact) {
  using S = typename From::scalar_type;
  struct Source {
    std::string_view name;
    const Parameter<S>* tensor;
  };
  std::vector<Source> sources;
  std::vector<std::string_view> names;
  std::vector<std::string> storage;  // names outlive the visit
  for_each_tensor(from, [&](std::string_view name, const Parameter<S>& p) {
    storage.emplace_back(name);
    sources.push_back({{}, &p});
  });
  for (std::size_t i = 0; i < sources.size(); ++i) {
    sources[i].name = storage[i];
    names.push_back(storage[i]);
  }
  const auto fail = [](const std::string& problem) {
    throw shape_error("copy_tensors: " + problem);
  };
  auto match_all = [&](auto&& assign) {
    detail::NameMatcher matcher(names);
    for_each_tensor(to, [&](std::string_view name, auto& p) {
      const std::size_t i = matcher.find(name);
      if (i == detail::NameMatcher::npos) {
        if (match == TensorMatch::target_extra) {
          return;
        }
        fail("the target's tensor " + detail::quote_tensor(name) + " is not in the source");
      }
      const Parameter<S>& s = *sources[i].tensor;
      if (s.size() != p.size()) {
        fail("tensor " + detail::quote_tensor(name) + " has " + std::to_string(s.size()) +
             " values in the source and " + std::to_string(p.size()) + " in the target");
      }
      assign(s, p);
    });
    if (const std::size_t i = matcher.first_unused();
        i != detail::NameMatcher::npos && match != TensorMatch::source_extra) {
      fail("the source's tensor " + detail::quote_tensor(names[i]) + " is not in the target");
    }
  };
  match_all([](const auto&, const auto&) {});  // check everything first
  match_all([](const Parameter<S>& s, auto& p) {
    using U = typename std::remove_cvref_t<decltype(p)>::scalar_type;
    p.value = s.value.template cast<U>();
    if (s.masked()) {
      p.mask = s.mask.template cast<U>();
    }
  });
}

}  // namespace edgescale
