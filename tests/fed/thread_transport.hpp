// A fed::Transport whose ranks are threads of one process: the reduction tree and the
// simulation's exchanges run for any rank count (3, 5, 8, ...) without MPI. Messages are copied
// through mailboxes, collectives meet at a std::barrier.
#pragma once

#include <edgescale/fed/transport.hpp>

#include <algorithm>
#include <barrier>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

namespace edgescale::test {

class ThreadWorld {
 public:
  explicit ThreadWorld(int ranks)
      : ranks_(ranks),
        barrier_(ranks),
        gathered_(static_cast<std::size_t>(ranks)),
        sums_(static_cast<std::size_t>(ranks)) {}

  int ranks() const { return ranks_; }

  // Runs body(rank) on `ranks` threads and rethrows the first exception.
  void run(const std::function<void(int)>& body) {
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(ranks_));
    {
      std::vector<std::jthread> threads;
      for (int r = 0; r < ranks_; ++r) {
        threads.emplace_back([&, r] {
          try {
            body(r);
          } catch (...) {
            errors[static_cast<std::size_t>(r)] = std::current_exception();
          }
        });
      }
    }
    for (const auto& e : errors) {
      if (e) {
        std::rethrow_exception(e);
      }
    }
  }

  void post(int from, int to, std::string message) {
    {
      std::lock_guard lock(mutex_);
      mail_[{from, to}].push_back(std::move(message));
    }
    arrived_.notify_all();
  }
  std::string take(int from, int to) {
    std::unique_lock lock(mutex_);
    auto& box = mail_[{from, to}];
    arrived_.wait(lock, [&] { return !box.empty(); });
    std::string m = std::move(box.front());
    box.pop_front();
    return m;
  }

  std::vector<std::string> allgather(int rank, std::string_view bytes) {
    gathered_[static_cast<std::size_t>(rank)] = std::string(bytes);
    barrier_.arrive_and_wait();
    std::vector<std::string> out = gathered_;
    barrier_.arrive_and_wait();
    return out;
  }
  void allreduce_sum(int rank, std::span<double> values) {
    sums_[static_cast<std::size_t>(rank)].assign(values.begin(), values.end());
    barrier_.arrive_and_wait();
    for (std::size_t i = 0; i < values.size(); ++i) {
      double s = 0;
      for (const auto& v : sums_) {
        s += v[i];
      }
      values[i] = s;
    }
    barrier_.arrive_and_wait();
  }
  void broadcast(int rank, std::span<double> values) {
    if (rank == 0) {
      sums_[0].assign(values.begin(), values.end());
    }
    barrier_.arrive_and_wait();
    if (rank != 0) {
      std::copy(sums_[0].begin(), sums_[0].end(), values.begin());
    }
    barrier_.arrive_and_wait();
  }

 private:
  int ranks_;
  std::barrier<> barrier_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::map<std::tuple<int, int>, std::deque<std::string>> mail_;
  std::vector<std::string> gathered_;
  std::vector<std::vector<double>> sums_;
};

/// Rank `rank` of a ThreadWorld.
class ThreadTransport {
 public:
  ThreadTransport(ThreadWorld& world, int rank, bool deterministic = true)
      : world_(&world), rank_(rank), deterministic_(deterministic) {}

  int rank() const { return rank_; }
  int ranks() const { return world_->ranks(); }
  bool deterministic() const { return deterministic_; }
  std::vector<std::string> allgather(std::string_view bytes) {
    sent_ += bytes.size();
    return world_->allgather(rank_, bytes);
  }
  void send(int to, std::span<const double> values) {
    sent_ += values.size_bytes();
    world_->post(rank_, to,
                 std::string(reinterpret_cast<const char*>(values.data()), values.size_bytes()));
  }
  void receive(int from, std::span<double> values) {
    const std::string m = world_->take(from, rank_);
    if (m.size() != values.size_bytes()) {
      throw std::runtime_error("ThreadTransport: a message of another size");
    }
    std::memcpy(values.data(), m.data(), m.size());
  }
  void send(int to, std::string_view bytes) {
    sent_ += bytes.size();
    world_->post(rank_, to, std::string(bytes));
  }
  std::string receive(int from) { return world_->take(from, rank_); }
  void allreduce_sum(std::span<double> values) {
    sent_ += values.size_bytes();
    world_->allreduce_sum(rank_, values);
  }
  void broadcast(std::span<double> values) {
    if (rank_ == 0) {
      sent_ += values.size_bytes();
    }
    world_->broadcast(rank_, values);
  }
  std::size_t bytes_sent() const { return sent_; }

 private:
  ThreadWorld* world_;
  int rank_;
  bool deterministic_;
  std::size_t sent_ = 0;
};

static_assert(fed::Transport<ThreadTransport>);

}  // namespace edgescale::test
