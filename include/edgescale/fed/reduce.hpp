// edgescale/fed/reduce.hpp — a round's client updates summed into one buffer, the same bits on
// one process and on any number of ranks.
//
// A strategy is Reducible when its server step needs only the sum of what its clients contribute:
// FedAvg's Σ n_k Δ_k and Σ n_k, SCAFFOLD's Σ Δy, Σ Δc and the count, FED3R's Σ A_k (packed) and
// Σ b_k, FedNCM's class sums and counts. It says how long that sum is (reduction_size), adds one
// client's contribution into it in double (accumulate), and takes a step from the round's total
// (apply). Such a strategy runs over any fed::Transport; one that is not (FedAvg with the median
// or Krum, which need every update) runs in one process only.
//
// The order of the sum is fixed, so it does not depend on the rank count:
//   * clients fall into reduction_slots = 1024 slots by their number: slot(c) = ⌊c·1024 / K⌋
//     (contiguous runs of clients); within a slot their contributions are added in ascending
//     client order into a zeroed buffer;
//   * the 1024 slots are the leaves of a complete binary tree; a node is the sum left + right of
//     its children, where a subtree with no client is empty and adds nothing;
//   * rank r of P holds the slots [⌊r·1024/P⌋, ⌊(r+1)·1024/P⌋) and simulates their clients. It
//     reduces its slots into the tree nodes they cover, and ranks combine their node lists along a
//     binomial tree (rank r receives from r + 1, r + 2, r + 4, ...) by merging siblings only.
// Every node's value is therefore the same on 1, 2, 4 or 1000 ranks, and on one process
// (server_update of a Reducible strategy goes through reduce_received, the same tree). A rank holds
// at most one buffer per tree level (11) while it reduces, and sends one node list up the tree.
// The fast mode (a transport whose deterministic() is false) instead adds a rank's clients in
// ascending order and lets the transport's allreduce add the ranks in its own order.
#pragma once

#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/fed/client.hpp>
#include <edgescale/fed/concepts.hpp>
#include <edgescale/fed/detail/wire.hpp>
#include <edgescale/fed/transport.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace edgescale::fed {

// clang-format off

/// A strategy whose server step needs only the sum of its clients' contributions (see above).
template <class S>
concept Reducible = Strategy<S> &&
    requires(const S& cs, S& s, std::span<double> sum, std::span<const double> total,
             const typename S::update_type& u, Index samples, const RoundInfo& info) {
  { cs.reduction_size() } -> std::convertible_to<Index>;
  cs.accumulate(sum, u, samples);  // sum += this client's contribution (n_k its sample count)
  s.apply(total, info);            // the server step from the round's sum
};

// clang-format on

/// Levels of the reduction tree: 2^10 = 1024 slots.
inline constexpr int reduction_levels = 10;
inline constexpr Index reduction_slots = Index{1} << reduction_levels;

/// The slot of client `client` of `clients`: ⌊client·1024 / clients⌋.
[[nodiscard]] inline Index reduction_slot(Index client, Index clients) {
  if (clients < 1 || clients > (Index{1} << 52) || client < 0 || client >= clients) {
    throw argument_error("reduction_slot: client " + std::to_string(client) + " of " +
                         std::to_string(clients) + " (at most 2^52 clients)");
  }
  // client < clients <= 2^52 keeps the product inside 64 bits.
  return client * reduction_slots / clients;
}

/// The first slot of rank `rank` of `ranks` (rank == ranks gives the end).
[[nodiscard]] inline Index first_slot(int rank, int ranks) {
  return static_cast<Index>(static_cast<std::int64_t>(rank) * reduction_slots / ranks);
}

/// The rank that holds `slot` when there are `ranks`.
[[nodiscard]] inline int slot_owner(Index slot, int ranks) {
  // The largest r with first_slot(r) <= slot.
  auto r = static_cast<int>(((slot + 1) * static_cast<std::int64_t>(ranks) - 1) / reduction_slots);
  while (r + 1 < ranks && first_slot(r + 1, ranks) <= slot) {
    ++r;
  }
  while (r > 0 && first_slot(r, ranks) > slot) {
    --r;
  }
  return r;
}

/// The rank that simulates client `client` of `clients`.
[[nodiscard]] inline int client_owner(Index client, Index clients, int ranks) {
  return slot_owner(reduction_slot(client, clients), ranks);
}

/// A node of the reduction tree: `level` 0 is a slot, level 10 the root; `index` counts the nodes
/// of its level from the left. Empty when no client below it contributed.
struct ReductionNode {
  int level = 0;
  Index index = 0;
  bool empty = true;
  std::vector<double> values;
};

/// The nodes a rank holds while reducing, in ascending order of the slots they cover; pushing a
/// node merges it with its left sibling as long as there is one (a shift-reduce parse of the
/// tree), so a stack holds at most one node per level.
class ReductionStack {
 public:
  explicit ReductionStack(Index size) : size_(size) {}

  /// Adds the next node to the right of those held; throws argument_error if it is not a tree
  /// node or has another size (a rank that disagrees on the strategy).
  void push(ReductionNode node) {
    if (node.level < 0 || node.level > reduction_levels || node.index < 0 ||
        node.index >= (reduction_slots >> node.level) ||
        (!node.empty && static_cast<Index>(node.values.size()) != size_)) {
      throw argument_error("reduction: node (level " + std::to_string(node.level) + ", index " +
                           std::to_string(node.index) + ", " + std::to_string(node.values.size()) +
                           " values) is not a tree node of " + std::to_string(size_) + " values");
    }
    nodes_.push_back(std::move(node));
    while (nodes_.size() >= 2) {
      ReductionNode& left = nodes_[nodes_.size() - 2];
      ReductionNode& right = nodes_.back();
      if (left.level != right.level || left.index % 2 != 0 || right.index != left.index + 1) {
        break;
      }
      if (left.empty) {
        std::swap(left.values, right.values);
        left.empty = right.empty;
      } else if (!right.empty) {
        for (std::size_t i = 0; i < left.values.size(); ++i) {
          left.values[i] += right.values[i];
        }
      }
      if (!right.values.empty()) {
        spare_.push_back(std::move(right.values));
      }
      ++left.level;
      left.index /= 2;
      nodes_.pop_back();
    }
  }

  [[nodiscard]] Index size() const { return size_; }
  /// A zeroed buffer of size() values for the next leaf: one freed by an earlier merge when there
  /// is one (a round touches fresh memory for at most one buffer per tree level).
  [[nodiscard]] std::vector<double> zeros() {
    if (spare_.empty()) {
      return std::vector<double>(static_cast<std::size_t>(size_), 0.0);
    }
    std::vector<double> v = std::move(spare_.back());
    spare_.pop_back();
    std::fill(v.begin(), v.end(), 0.0);
    return v;
  }
  [[nodiscard]] const std::vector<ReductionNode>& nodes() const { return nodes_; }
  std::vector<ReductionNode>& nodes() { return nodes_; }

  /// The root's values (zeros when it is empty); throws logic_error unless the stack is the root.
  [[nodiscard]] std::vector<double> root() && {
    if (nodes_.size() != 1 || nodes_[0].level != reduction_levels) {
      throw std::logic_error("reduction: the tree is incomplete (" + std::to_string(nodes_.size()) +
                             " nodes held)");
    }
    if (nodes_[0].empty) {
      return std::vector<double>(static_cast<std::size_t>(size_), 0.0);
    }
    return std::move(nodes_[0].values);
  }

 private:
  Index size_;
  std::vector<ReductionNode> nodes_;
  std::vector<std::vector<double>> spare_;
};

namespace detail {

// A node list on the wire: a header of (count) then (level, index, empty) per node, as words;
// the non-empty nodes' values follow as one message of doubles each.
inline std::string encode_node_headers(const std::vector<ReductionNode>& nodes) {
  std::string bytes;
  put_word(bytes, static_cast<std::int64_t>(nodes.size()));
  for (const ReductionNode& n : nodes) {
    put_word(bytes, n.level);
    put_word(bytes, n.index);
    put_word(bytes, n.empty ? 1 : 0);
  }
  return bytes;
}

inline std::vector<ReductionNode> decode_node_headers(const std::string& bytes, int from) {
  const std::string bad = "reduction: rank " + std::to_string(from) +
                          " sent a malformed node list (" + std::to_string(bytes.size()) +
                          " bytes)";
  WordReader r(bytes, bad);
  const std::int64_t count = r.word();
  if (count < 0 || static_cast<std::size_t>(count) * 3 * sizeof(std::int64_t) !=
                       bytes.size() - sizeof(std::int64_t)) {
    throw argument_error(bad);
  }
  std::vector<ReductionNode> nodes(static_cast<std::size_t>(count));
  for (ReductionNode& n : nodes) {
    const std::int64_t level = r.word();
    if (level < 0 || level > reduction_levels) {
      throw argument_error(bad);
    }
    n.level = static_cast<int>(level);
    n.index = r.word();
    n.empty = r.word() != 0;
  }
  return nodes;
}

}  // namespace detail

/// Combines every rank's stack into the root along a binomial tree (rank r receives from r + 1,
/// r + 2, r + 4, ... while r is a multiple of twice the step, then sends its nodes to r − step),
/// merging only siblings, and broadcasts the root from rank 0: every rank returns the same bits,
/// which are those of one process. `stack` holds this rank's slots (RoundReducer).
template <Transport X>
[[nodiscard]] std::vector<double> reduce_tree(X& transport, ReductionStack stack) {
  const int rank = transport.rank();
  const int ranks = transport.ranks();
  for (int step = 1; step < ranks; step *= 2) {
    if (rank % (2 * step) == 0) {
      const int from = rank + step;
      if (from >= ranks) {
        continue;
      }
      std::vector<ReductionNode> nodes = detail::decode_node_headers(transport.receive(from), from);
      for (ReductionNode& n : nodes) {
        if (!n.empty) {
          n.values = stack.zeros();
          transport.receive(from, std::span<double>(n.values));
        }
        stack.push(std::move(n));
      }
    } else {
      const int to = rank - step;
      transport.send(to, std::string_view(detail::encode_node_headers(stack.nodes())));
      for (const ReductionNode& n : stack.nodes()) {
        if (!n.empty) {
          transport.send(to, std::span<const double>(n.values));
        }
      }
      break;
    }
  }
  std::vector<double> root(static_cast<std::size_t>(stack.size()), 0.0);
  if (rank == 0) {
    root = std::move(stack).root();
  }
  transport.broadcast(std::span<double>(root));
  return root;
}

/// One round's reduction on one rank, fed update by update in ascending client order, so a
/// client's update can be freed as soon as it is added (a rank holds its slots' partial sums, not
/// its round's updates: what lets FED3R-RF's 400 MB statistics at D = 10⁴ stream through).
/// Deterministic transports reduce along the fixed tree (reduce_tree); the others add the rank's
/// updates in order into one buffer and allreduce it.
template <Reducible S, Transport X>
class RoundReducer {
 public:
  RoundReducer(const S& strategy, X& transport, Index clients)
      : strategy_(strategy),
        transport_(transport),
        clients_(clients),
        deterministic_(transport.deterministic()),
        stack_(static_cast<Index>(strategy.reduction_size())),
        slot_(first_slot(transport.rank(), transport.ranks())),
        last_(first_slot(transport.rank() + 1, transport.ranks())) {
    if (!deterministic_) {
      sum_.assign(static_cast<std::size_t>(stack_.size()), 0.0);
    }
  }

  /// Adds the accepted update of `client` (above every client added so far, and of this rank).
  void add(Index client, const typename S::update_type& update, Index samples) {
    if (client <= last_client_) {
      throw std::logic_error("reduction: client " + std::to_string(client) + " after client " +
                             std::to_string(last_client_) + ": not in ascending order");
    }
    last_client_ = client;
    if (!deterministic_) {
      strategy_.accumulate(std::span<double>(sum_), update, samples);
      return;
    }
    const Index slot = reduction_slot(client, clients_);
    if (slot < slot_ || slot >= last_) {
      throw std::logic_error("reduction: client " + std::to_string(client) +
                             " is not in this rank's slots [" + std::to_string(slot_) + ", " +
                             std::to_string(last_) + ")");
    }
    while (slot_ < slot) {
      close_leaf();
    }
    if (leaf_.empty) {
      leaf_.values = stack_.zeros();
      leaf_.empty = false;
    }
    strategy_.accumulate(std::span<double>(leaf_.values), update, samples);
  }

  /// The round's sum over every rank, the same bits on every rank (collective: every rank calls
  /// it once, after its last add).
  [[nodiscard]] std::vector<double> finish() && {
    if (!deterministic_) {
      if (transport_.ranks() > 1) {
        transport_.allreduce_sum(std::span<double>(sum_));
      }
      return std::move(sum_);
    }
    while (slot_ < last_) {
      close_leaf();
    }
    if (transport_.ranks() == 1) {
      return std::move(stack_).root();
    }
    return reduce_tree(transport_, std::move(stack_));
  }

 private:
  void close_leaf() {
    leaf_.level = 0;
    leaf_.index = slot_;
    stack_.push(std::move(leaf_));
    leaf_ = ReductionNode{};
    ++slot_;
  }

  const S& strategy_;
  X& transport_;
  Index clients_;
  bool deterministic_;
  ReductionStack stack_;
  Index slot_;
  Index last_;
  Index last_client_ = -1;
  ReductionNode leaf_{};
  std::vector<double> sum_;
};

/// The round's sum over every rank: `local` holds this rank's accepted updates in client order
/// (RoundReducer over a list).
template <Reducible S, Transport X>
[[nodiscard]] std::vector<double> reduce_round(
    const S& strategy, X& transport, std::span<const Received<typename S::update_type>> local,
    Index clients) {
  RoundReducer<S, X> reducer(strategy, transport, clients);
  for (const auto& r : local) {
    reducer.add(r.client, *r.update, r.samples);
  }
  return std::move(reducer).finish();
}

/// The sum of a whole round's updates in the fixed tree order, in one process: what a Reducible
/// strategy's server_update applies. Sorts a copy of `received` by client first. `clients` is K
/// (RoundInfo::clients); 0, or fewer than the highest client number + 1 (a server_update called
/// by hand), counts up to that client.
template <Reducible S>
[[nodiscard]] std::vector<double> reduce_received(
    const S& strategy, std::span<const Received<typename S::update_type>> received, Index clients) {
  std::vector<Received<typename S::update_type>> sorted(received.begin(), received.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.client < b.client; });
  for (const auto& r : sorted) {
    if (r.update == nullptr) {
      throw argument_error("reduction: the update of client " + std::to_string(r.client) +
                           " is missing");
    }
  }
  if (!sorted.empty()) {
    clients = std::max(clients, sorted.back().client + 1);
  }
  InProcess one;
  return reduce_round(strategy, one, std::span<const Received<typename S::update_type>>(sorted),
                      std::max<Index>(clients, 1));
}

/// Throws argument_error unless a buffer handed to accumulate or apply has `expected` values.
inline void require_reduction_size(std::size_t got, Index expected, const char* who) {
  if (static_cast<Index>(got) != expected) {
    throw argument_error(std::string(who) + ": a reduction buffer of " + std::to_string(got) +
                         " values, expected " + std::to_string(expected));
  }
}

}  // namespace edgescale::fed
