// Max / average pooling over one NCHW image, with ONNX ceil_mode and count_include_pad.
#include "ops/pool.h"

#include <algorithm>
#include <limits>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "fgq/error.h"

namespace fgq::ops {
namespace {

constexpr double kParallelWork = 2e5;  // below this a second thread costs more than it saves

// ONNX: floor or ceil of (in + pads - kernel) / stride, plus one; in ceil mode a last window
// that would start entirely inside the right/bottom padding is dropped.
// A dilated window spans (k - 1) * d + 1 positions and sizes the output like a kernel that long.
int pooled_size(int in, int k, int s, int d, int pad_begin, int pad_end, bool ceil_mode) {
  if (in <= 0 || k <= 0 || s <= 0 || d <= 0 || pad_begin < 0 || pad_end < 0)
    fail("pool", "invalid shape (non-positive size, kernel, stride or dilation, or negative pad)");
  const long extent = long(k - 1) * d + 1;
  if (extent > in + long(pad_begin) + pad_end) fail("pool", "kernel larger than the padded input");
  const int span = in + pad_begin + pad_end - int(extent);
  int out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= in + pad_begin) --out;
  return out;
}

// Pools one channel. Each output row first reduces its (clipped) window rows column-wise into
// `cols` (contiguous, so it vectorizes), then slides the horizontal window over that one row.
// reduce(a, b) combines values; finish(acc, padded, inside) turns a window's result into the
// output (padded = window size clipped to the padded image, inside = real input values).
template <class Reduce, class Finish>
void pool_channel(const Pool2dShape& s, int OH, int OW, float init, const float* x, float* y,
                  float* cols, Reduce reduce, Finish finish) {
  for (int oh = 0; oh < OH; ++oh) {
    const int hs = oh * s.SH - s.PT, he = std::min(hs + s.KH, s.H + s.PB);
    const int h0 = std::max(hs, 0), h1 = std::min(he, s.H);
    std::fill(cols, cols + s.W, init);
    for (int h = h0; h < h1; ++h) {
      const float* row = x + static_cast<long>(h) * s.W;
      for (int w = 0; w < s.W; ++w) cols[w] = reduce(cols[w], row[w]);
    }
    for (int ow = 0; ow < OW; ++ow) {
      const int ws = ow * s.SW - s.PL, we = std::min(ws + s.KW, s.W + s.PR);
      const int w0 = std::max(ws, 0), w1 = std::min(we, s.W);
      float acc = init;
      for (int w = w0; w < w1; ++w) acc = reduce(acc, cols[w]);
      const int inside = std::max(0, h1 - h0) * std::max(0, w1 - w0);
      y[static_cast<long>(oh) * OW + ow] = finish(acc, (he - hs) * (we - ws), inside);
    }
  }
}

// Dilated windows: tap by tap. `padded` counts the taps inside the padded image, `inside` the
// taps on real input values (the same counts pool_channel passes for an undilated window).
template <class Reduce, class Finish>
void pool_channel_dilated(const Pool2dShape& s, int OH, int OW, float init, const float* x, float* y,
                          Reduce reduce, Finish finish) {
  for (int oh = 0; oh < OH; ++oh) {
    const int hs = oh * s.SH - s.PT;
    for (int ow = 0; ow < OW; ++ow) {
      const int ws = ow * s.SW - s.PL;
      float acc = init;
      int padded = 0, inside = 0;
      for (int i = 0; i < s.KH; ++i) {
        const int h = hs + i * s.DH;
        if (h >= s.H + s.PB) break;
        const bool h_in = h >= 0 && h < s.H;
        for (int j = 0; j < s.KW; ++j) {
          const int w = ws + j * s.DW;
          if (w >= s.W + s.PR) break;
          ++padded;
          if (h_in && w >= 0 && w < s.W) {
            acc = reduce(acc, x[static_cast<long>(h) * s.W + w]);
            ++inside;
          }
        }
      }
      y[static_cast<long>(oh) * OW + ow] = finish(acc, padded, inside);
    }
  }
}

// Channels are independent: split them over threads when the image is big enough to pay.
template <class Reduce, class Finish>
void pool_image(const Pool2dShape& s, const float* x, float* y, float init, Reduce reduce,
                Finish finish) {
  const int OH = s.OH(), OW = s.OW();
  const bool dilated = s.DH != 1 || s.DW != 1;
  auto channels = [&](const tbb::blocked_range<int>& r) {
    std::vector<float> cols(s.W);
    for (int c = r.begin(); c < r.end(); ++c) {
      const float* xc = x + static_cast<long>(c) * s.H * s.W;
      float* yc = y + static_cast<long>(c) * OH * OW;
      if (dilated)
        pool_channel_dilated(s, OH, OW, init, xc, yc, reduce, finish);
      else
        pool_channel(s, OH, OW, init, xc, yc, cols.data(), reduce, finish);
    }
  };
  const double work = dilated ? double(s.C) * OH * OW * s.KH * s.KW : double(s.C) * s.H * s.W * (s.KH + 1);
  if (work < kParallelWork)
    channels(tbb::blocked_range<int>(0, s.C));
  else
    tbb::parallel_for(tbb::blocked_range<int>(0, s.C), channels);
}

}  // namespace

int Pool2dShape::OH() const { return pooled_size(H, KH, SH, DH, PT, PB, ceil_mode); }
int Pool2dShape::OW() const { return pooled_size(W, KW, SW, DW, PL, PR, ceil_mode); }

void maxpool2d_f32(const Pool2dShape& s, const float* x, float* y) {
  // Padding is -inf: it never wins, so windows simply skip it.
  pool_image(
      s, x, y, -std::numeric_limits<float>::infinity(),
      [](float a, float b) { return std::max(a, b); }, [](float acc, int, int) { return acc; });
}

void avgpool2d_f32(const Pool2dShape& s, const float* x, float* y) {
  const bool include_pad = s.count_include_pad;
  pool_image(
      s, x, y, 0.f, [](float a, float b) { return a + b; },
      [include_pad](float sum, int padded, int inside) {
        const int count = include_pad ? padded : inside;
        return count > 0 ? sum / count : 0.f;
      });
}

void global_avgpool_f32(int C, int HW, const float* x, float* y) {
  if (C <= 0 || HW <= 0) fail("global_avgpool", "empty input");
  for (int c = 0; c < C; ++c) {
    const float* xc = x + static_cast<long>(c) * HW;
    double sum = 0;  // HW can be large (e.g. 7x7 is small, but not every model is ResNet)
    for (int i = 0; i < HW; ++i) sum += xc[i];
    y[c] = static_cast<float>(sum / HW);
  }
}

}  // namespace fgq::ops
