#include "ops/pad.h"

#include <algorithm>
#include <vector>

#include "fgq/error.h"
#include "ops/elementwise.h"

namespace fgq::ops {
namespace {

// The input index that padded position i (may be outside [0, n)) reads.
int source(PadMode mode, int i, int n) {
  if (i >= 0 && i < n) return i;
  if (mode == PadMode::Edge) return std::clamp(i, 0, n - 1);
  if (n == 1) return 0;
  const int period = 2 * (n - 1);  // reflect: 0 1 .. n-1 n-2 .. 1 0 1 ..
  int m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

}  // namespace

void pad2d_f32(PadMode mode, const float* x, float* y, int C, int H, int W, int PT, int PL, int PB, int PR,
               float value) {
  if (mode == PadMode::Constant) return pad_f32(x, y, C, H, W, PT, PL, PB, PR, value);
  if (C <= 0 || H <= 0 || W <= 0 || PT < 0 || PL < 0 || PB < 0 || PR < 0)
    fail("pad", "invalid shape (non-positive size or negative pad)");
  const int OH = H + PT + PB, OW = W + PL + PR;
  std::vector<int> cols(static_cast<size_t>(OW));
  for (int w = 0; w < OW; ++w) cols[size_t(w)] = source(mode, w - PL, W);
  for (int c = 0; c < C; ++c) {
    const float* xc = x + static_cast<long>(c) * H * W;
    float* yc = y + static_cast<long>(c) * OH * OW;
    for (int h = 0; h < OH; ++h) {
      const float* row = xc + static_cast<long>(source(mode, h - PT, H)) * W;
      float* out = yc + static_cast<long>(h) * OW;
      for (int w = 0; w < PL; ++w) out[w] = row[cols[size_t(w)]];
      std::copy(row, row + W, out + PL);
      for (int w = PL + W; w < OW; ++w) out[w] = row[cols[size_t(w)]];
    }
  }
}

}  // namespace fgq::ops
