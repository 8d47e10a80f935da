#include "ops/transpose.h"

#include <cstring>

#include "fgq/error.h"

namespace fgq::ops {

void transpose_f32(const float* x, const std::vector<int64_t>& x_shape, const std::vector<int64_t>& perm, float* y) {
  const size_t r = x_shape.size();
  if (perm.size() != r) fail("transpose", "perm does not match the rank");
  std::vector<int64_t> xstride(r, 1);
  for (size_t k = r; k-- > 1;) xstride[k - 1] = xstride[k] * x_shape[k];
  // Output dims with the input stride each walks; size-1 dims dropped, and an output dim whose
  // input axis directly follows the previous one's merged into it.
  std::vector<int64_t> dims, strides;
  int64_t prev_axis = -2;
  for (size_t k = 0; k < r; ++k) {
    const int64_t ax = perm[k], d = x_shape[size_t(ax)];
    if (d == 1) continue;
    if (!dims.empty() && ax == prev_axis + 1) {
      dims.back() *= d;
      strides.back() = xstride[size_t(ax)];
    } else {
      dims.push_back(d);
      strides.push_back(xstride[size_t(ax)]);
    }
    prev_axis = ax;
  }
  if (dims.empty()) {
    y[0] = x[0];
    return;
  }
  const int64_t n = dims.back(), s = strides.back();
  const size_t outer = dims.size() - 1;
  int64_t rows = 1;
  for (size_t k = 0; k < outer; ++k) rows *= dims[k];
  std::vector<int64_t> idx(outer, 0);
  int64_t off = 0;
  for (int64_t row = 0; row < rows; ++row) {
    float* yr = y + row * n;
    if (s == 1) {
      std::memcpy(yr, x + off, sizeof(float) * size_t(n));
    } else {
      const float* xr = x + off;
      for (int64_t k = 0; k < n; ++k) yr[k] = xr[k * s];
    }
    for (size_t k = outer; k-- > 0;) {
      off += strides[k];
      if (++idx[k] < dims[k]) break;
      off -= strides[k] * dims[k];
      idx[k] = 0;
    }
  }
}

void copy_blocks_f32(const float* x, int64_t x_stride, int64_t block, int64_t count, float* y, int64_t y_stride) {
  for (int64_t k = 0; k < count; ++k)
    std::memcpy(y + k * y_stride, x + k * x_stride, sizeof(float) * size_t(block));
}

void slice_f32(const float* x, const std::vector<int64_t>& x_shape, const std::vector<int64_t>& starts,
               const std::vector<int64_t>& steps, const std::vector<int64_t>& counts, float* y) {
  const size_t r = x_shape.size();
  if (starts.size() != r || steps.size() != r || counts.size() != r) fail("slice", "parameters do not match the rank");
  if (r == 0) {
    y[0] = x[0];
    return;
  }
  std::vector<int64_t> xstride(r, 1);
  for (size_t k = r; k-- > 1;) xstride[k - 1] = xstride[k] * x_shape[k];
  for (int64_t c : counts)
    if (c == 0) return;
  int64_t base = 0;
  for (size_t k = 0; k < r; ++k) base += starts[k] * xstride[k];
  const int64_t n = counts[r - 1], s = steps[r - 1] * xstride[r - 1];
  int64_t rows = 1;
  for (size_t k = 0; k + 1 < r; ++k) rows *= counts[k];
  std::vector<int64_t> idx(r - 1, 0);
  int64_t off = base;
  for (int64_t row = 0; row < rows; ++row) {
    float* yr = y + row * n;
    if (s == 1) {
      std::memcpy(yr, x + off, sizeof(float) * size_t(n));
    } else {
      for (int64_t k = 0; k < n; ++k) yr[k] = x[off + k * s];
    }
    for (size_t k = r - 1; k-- > 0;) {
      off += steps[k] * xstride[k];
      if (++idx[k] < counts[k]) break;
      off -= steps[k] * xstride[k] * counts[k];
      idx[k] = 0;
    }
  }
}

}  // namespace fgq::ops
