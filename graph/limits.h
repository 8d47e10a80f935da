#pragma once
// Size limits and overflow-checked arithmetic for everything computed from untrusted model
// files: a hostile dim or attribute must give an fgq::Error, never a huge allocation or UB.
#include <cstdint>
#include <optional>

#include "graph/ir.h"

namespace fgq {

// No tensor in a supported CNN comes near this; larger declared sizes are rejected unread.
constexpr int64_t kMaxElements = int64_t(1) << 31;
constexpr size_t kMaxRank = 8;
// Kernel sizes, strides, dilations and pads above this are nonsense for an image CNN, and the
// cap keeps every window computation far away from int64 overflow.
constexpr int64_t kMaxWindowParam = int64_t(1) << 20;

// a * b, or nullopt when either is negative or above kMaxElements, or the product is.
inline std::optional<int64_t> capped_mul(int64_t a, int64_t b) {
  if (a < 0 || b < 0 || a > kMaxElements || b > kMaxElements) return std::nullopt;
  if (a != 0 && b > kMaxElements / a) return std::nullopt;
  return a * b;
}

// Product of dims, or nullopt when a dim is negative or the product exceeds kMaxElements.
inline std::optional<int64_t> capped_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    auto p = capped_mul(n, d);
    if (!p) return std::nullopt;
    n = *p;
  }
  return n;
}

}  // namespace fgq
