// TEMPORARY (not committed): the portable path of the interface, until the kernels branch lands.
#pragma once
#include <edgescale/core/error.hpp>
#include <edgescale/core/tensor.hpp>
#include <edgescale/quant/fixed_point.hpp>

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>
namespace edgescale::quant {
enum class GemmPath { portable, avx2, avx512_vnni };
inline constexpr GemmPath default_gemm_path = GemmPath::portable;
class PackedS8 {
 public:
  PackedS8() = default;
  PackedS8(const std::int8_t* w, Index m, Index k)
      : w_(w, w + m * k), m_(m), k_(k), sums_(static_cast<std::size_t>(m)) {
    for (Index c = 0; c < m; ++c) {
      std::int32_t s = 0;
      for (Index i = 0; i < k; ++i)
        s += w[c * k + i];
      sums_[static_cast<std::size_t>(c)] = s;
    }
  }
  Index rows() const { return m_; }
  Index depth() const { return k_; }
  std::span<const std::int32_t> row_sums() const { return sums_; }
  std::size_t bytes() const { return w_.size(); }
  const std::int8_t* data() const { return w_.data(); }

 private:
  std::vector<std::int8_t> w_;
  Index m_ = 0, k_ = 0;
  std::vector<std::int32_t> sums_;
};
template <GemmPath P = default_gemm_path>
void gemm_s8(const PackedS8& w, const std::int8_t* x, Index n, std::int32_t* acc) {
  const Index m = w.rows(), k = w.depth();
  for (Index j = 0; j < n; ++j)
    for (Index c = 0; c < m; ++c) {
      std::int32_t s = 0;
      for (Index i = 0; i < k; ++i)
        s += std::int32_t{w.data()[c * k + i]} * x[j * k + i];
      acc[j * m + c] = s;
    }
}
template <GemmPath P = default_gemm_path>
void requantize_s8(const std::int32_t* acc, Index m, Index n, const std::int32_t* bias,
                   const Multiplier* mult, std::int32_t zero_point, std::int32_t act_min,
                   std::int32_t act_max, std::int8_t* out) {
  for (Index j = 0; j < n; ++j)
    for (Index c = 0; c < m; ++c) {
      std::int32_t v =
          multiply_by_quantized_multiplier(acc[j * m + c] + bias[c], mult[c]) + zero_point;
      out[j * m + c] = static_cast<std::int8_t>(std::clamp(v, act_min, act_max));
    }
}
}  // namespace edgescale::quant
