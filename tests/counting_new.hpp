// tests/counting_new.hpp — a global operator new that counts, for the tests that show a piece of
// code allocates nothing (tests/nn/test_no_allocation.cpp, tests/quant/test_gemm_s8.cpp, the
// exported header's driver tests/quant/export/driver.cpp).
//
//   #include "counting_new.hpp"   // in exactly ONE translation unit of the program
//   const long made = edgescale::test::count_allocations([&] { code_under_test(); });
//
// It defines the replaceable allocation and deallocation functions (plain, array and aligned
// forms), so a program may include it once only. C++17, so that the C++17 driver of the exported
// headers can use it too.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace edgescale::test {

/// Calls of any form of operator new since the program started.
inline std::atomic<long> allocations{0};

/// Heap allocations (operator new calls) made by f. Eigen's own aligned_malloc calls malloc, not
/// operator new: Eigen::internal::set_is_malloc_allowed(false) catches those.
template <class F>
long count_allocations(F&& f) {
  const long before = allocations.load();
  f();
  return allocations.load() - before;
}

namespace detail {

inline void* counted_allocation(std::size_t size, std::size_t alignment) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t rounded = (size + alignment - 1) / alignment * alignment;
  void* p = alignment <= alignof(std::max_align_t) ? std::malloc(rounded == 0 ? 1 : rounded)
                                                   : std::aligned_alloc(alignment, rounded);
  if (p == nullptr) {
    throw std::bad_alloc();
  }
  return p;
}

}  // namespace detail
}  // namespace edgescale::test

void* operator new(std::size_t size) {
  return edgescale::test::detail::counted_allocation(size, alignof(std::max_align_t));
}
void* operator new[](std::size_t size) {
  return edgescale::test::detail::counted_allocation(size, alignof(std::max_align_t));
}
void* operator new(std::size_t size, std::align_val_t alignment) {
  return edgescale::test::detail::counted_allocation(size, static_cast<std::size_t>(alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment) {
  return edgescale::test::detail::counted_allocation(size, static_cast<std::size_t>(alignment));
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t /*size*/) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t /*size*/) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t /*alignment*/) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t /*alignment*/) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t /*size*/, std::align_val_t /*alignment*/) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t /*size*/, std::align_val_t /*alignment*/) noexcept {
  std::free(p);
}
