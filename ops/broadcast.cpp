#include "ops/broadcast.h"

#include <algorithm>
#include <cmath>

#include "fgq/error.h"

namespace fgq::ops {
namespace {

// One row: n elements, a and b either contiguous (stride 1) or one repeated value (stride 0).
// Through local blocks of fixed length, as ops/elementwise.cpp does: y may alias an operand, and
// GCC at -O2 vectorises fixed-length loops but does not version a loop for aliasing.
template <bool IA, bool IB, class F>
void row_of(F f, const float* a, const float* b, float* y, int64_t n) {
  constexpr int kLanes = 16;
  const float a0 = *a, b0 = *b;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    float va[kLanes], vb[kLanes];
    for (int j = 0; j < kLanes; ++j) {
      if constexpr (IA) va[j] = a[i + j]; else va[j] = a0;
      if constexpr (IB) vb[j] = b[i + j]; else vb[j] = b0;
    }
    for (int j = 0; j < kLanes; ++j) y[i + j] = f(va[j], vb[j]);
  }
  for (; i < n; ++i) {
    float u, v;
    if constexpr (IA) u = a[i]; else u = a0;
    if constexpr (IB) v = b[i]; else v = b0;
    y[i] = f(u, v);
  }
}

template <class F>
void row(F f, const float* a, int64_t ia, const float* b, int64_t ib, float* y, int64_t n) {
  if (ia && ib) row_of<true, true>(f, a, b, y, n);
  else if (ia) row_of<true, false>(f, a, b, y, n);
  else if (ib) row_of<false, true>(f, a, b, y, n);
  else row_of<false, false>(f, a, b, y, n);
}

template <class F>
void range(F f, const BroadcastPlan& p, const float* a, const float* b, float* y, int64_t e0, int64_t e1) {
  if (e0 >= e1) return;
  const size_t outer = p.dims.size() - 1;
  const int64_t n = p.inner(), ia = p.sa.back(), ib = p.sb.back();
  // Odometer over the outer dims, started at the row holding element e0.
  std::vector<int64_t> idx(outer, 0);
  int64_t oa = 0, ob = 0, col = e0 % n;
  for (size_t k = outer, rem = size_t(e0 / n); k-- > 0;) {
    idx[k] = int64_t(rem % size_t(p.dims[k]));
    rem /= size_t(p.dims[k]);
    oa += idx[k] * p.sa[k];
    ob += idx[k] * p.sb[k];
  }
  while (e0 < e1) {
    const int64_t len = std::min(n - col, e1 - e0);
    row(f, a + oa + col * ia, ia, b + ob + col * ib, ib, y + e0, len);
    e0 += len;
    col = 0;
    for (size_t k = outer; k-- > 0;) {
      oa += p.sa[k];
      ob += p.sb[k];
      if (++idx[k] < p.dims[k]) break;
      oa -= p.sa[k] * p.dims[k];
      ob -= p.sb[k] * p.dims[k];
      idx[k] = 0;
    }
  }
}

}  // namespace

int64_t BroadcastPlan::rows() const {
  int64_t r = 1;
  for (size_t k = 0; k + 1 < dims.size(); ++k) r *= dims[k];
  return r;
}

bool broadcast_shape(const std::vector<int64_t>& a, const std::vector<int64_t>& b, std::vector<int64_t>& y) {
  const size_t r = std::max(a.size(), b.size());
  y.assign(r, 1);
  for (size_t k = 0; k < r; ++k) {
    const int64_t da = k + a.size() >= r ? a[k + a.size() - r] : 1;
    const int64_t db = k + b.size() >= r ? b[k + b.size() - r] : 1;
    if (da != db && da != 1 && db != 1) return false;
    y[k] = da == 1 ? db : da;
  }
  return true;
}

BroadcastPlan plan_broadcast(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                             const std::vector<int64_t>& y) {
  std::vector<int64_t> check;
  if (!broadcast_shape(a, b, check) || check != y) fail("broadcast", "operand shapes do not broadcast to the output");
  const size_t r = y.size();
  auto dim = [r](const std::vector<int64_t>& s, size_t k) { return k + s.size() >= r ? s[k + s.size() - r] : 1; };
  BroadcastPlan p;
  p.a_size = p.b_size = p.y_size = 1;
  for (int64_t d : a) p.a_size *= d;
  for (int64_t d : b) p.b_size *= d;
  for (int64_t d : y) p.y_size *= d;
  // Collapse: drop dims of size 1, merge neighbours that repeat the same operands.
  std::vector<int64_t> dims;
  std::vector<bool> ra, rb;  // operand repeats along this dim
  for (size_t k = 0; k < r; ++k) {
    if (y[k] == 1) continue;
    const bool a_rep = dim(a, k) == 1, b_rep = dim(b, k) == 1;
    if (!dims.empty() && ra.back() == a_rep && rb.back() == b_rep) {
      dims.back() *= y[k];
    } else {
      dims.push_back(y[k]);
      ra.push_back(a_rep);
      rb.push_back(b_rep);
    }
  }
  if (dims.empty()) {  // every dim 1: one element
    dims.push_back(1);
    ra.push_back(true);
    rb.push_back(true);
  }
  p.dims = dims;
  p.sa.assign(dims.size(), 0);
  p.sb.assign(dims.size(), 0);
  int64_t stride_a = 1, stride_b = 1;
  for (size_t k = dims.size(); k-- > 0;) {
    if (!ra[k]) p.sa[k] = stride_a, stride_a *= dims[k];
    if (!rb[k]) p.sb[k] = stride_b, stride_b *= dims[k];
  }
  return p;
}

void broadcast_binary_f32(BinaryOp op, const BroadcastPlan& p, const float* a, const float* b,
                          float* y, int64_t e0, int64_t e1) {
  switch (op) {
    case BinaryOp::Add: return range([](float u, float v) { return u + v; }, p, a, b, y, e0, e1);
    case BinaryOp::Sub: return range([](float u, float v) { return u - v; }, p, a, b, y, e0, e1);
    case BinaryOp::Mul: return range([](float u, float v) { return u * v; }, p, a, b, y, e0, e1);
    case BinaryOp::Div: return range([](float u, float v) { return u / v; }, p, a, b, y, e0, e1);
    case BinaryOp::Pow: return range([](float u, float v) { return std::pow(u, v); }, p, a, b, y, e0, e1);
    case BinaryOp::PRelu: return range([](float u, float v) { return u < 0.f ? u * v : u; }, p, a, b, y, e0, e1);
    // NaN in either operand gives NaN, as numpy's maximum / minimum.
    case BinaryOp::Max:
      return range([](float u, float v) { return u > v || std::isnan(u) ? u : v; }, p, a, b, y, e0, e1);
    case BinaryOp::Min:
      return range([](float u, float v) { return u < v || std::isnan(u) ? u : v; }, p, a, b, y, e0, e1);
  }
}

}  // namespace fgq::ops
