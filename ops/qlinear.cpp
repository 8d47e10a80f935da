// Conversions at the edges of the integer pipeline (float NCHW <-> quantized NHWC) and u4
// (un)packing. Storage as in ops/qtypes.h. Built with -ffp-contract=off (CMakeLists.txt), so the
// float expressions below round exactly as written, like ops::fake_quant_f32.
#include "ops/qlinear.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "graph/error.h"
#include "ops/parallel_tasks.h"

namespace fgq::ops {
namespace {

// Below this many elements one thread is faster than splitting; also the grain of a task.
constexpr int64_t kParallelElems = 1 << 16;
// Adding and subtracting 1.5 * 2^23 rounds |v| <= 2^22 to an integer, half to even (default
// rounding mode), like nearbyint; the same trick as fake_quant_f32.
constexpr float kRound = 12582912.f;

struct Range {
  int lo, hi;
};

// The integer range of a quantized storage type; fails on F32 and on non-enumerators.
Range int_range(QType t, const char* where) {
  switch (t) {
    case QType::U8: return {0, 255};
    case QType::S8: return {-128, 127};
    case QType::U4: return {0, 15};
    case QType::F32: break;
  }
  fail(where, std::string("unsupported type ") + qtype_name(t));
}

void check_shape(const char* where, int N, int C, int H, int W) {
  if (N < 0 || C < 1 || H < 1 || W < 1)
    fail(where, "invalid shape N=" + std::to_string(N) + " C=" + std::to_string(C) +
                    " H=" + std::to_string(H) + " W=" + std::to_string(W) +
                    " (N >= 0, C, H, W >= 1)");
}

void check_scale(const char* where, float scale) {
  if (!(scale > 0.f) || !std::isfinite(scale)) fail(where, "scale must be positive and finite");
}

void check_zero(const char* where, QType t, int zero) {
  const Range r = int_range(t, where);
  if (zero < r.lo || zero > r.hi)
    fail(where, "zero point " + std::to_string(zero) + " outside the " + qtype_name(t) +
                    " range");
}

// Runs body(begin, end) over [0, rows), split over threads when rows * row_elems is large.
template <class Body>
void for_rows(int64_t rows, int64_t row_elems, Body body) {
  if (rows <= 0) return;
  if (rows * row_elems < 2 * kParallelElems || rows == 1) {
    body(int64_t(0), rows);
    return;
  }
  // A quarter of the parallel threshold per task: a few tasks per thread, so that two threads
  // share an image's rows evenly.
  const int64_t grain = std::max<int64_t>(1, kParallelElems / 4 / std::max<int64_t>(1, row_elems));
  parallel_chunks(rows, grain, body);
}

}  // namespace

void quantize_nchw(const float* x, int N, int C, int H, int W, float scale, int zero, int qmin,
                   int qmax, QType out, void* y) {
  constexpr const char* where = "quantize";
  check_shape(where, N, C, H, W);
  check_scale(where, scale);
  const Range r = int_range(out, where);
  if (qmin > qmax) fail(where, "qmin > qmax");
  if (qmin < r.lo || qmax > r.hi)
    fail(where, "qmin/qmax [" + std::to_string(qmin) + ", " + std::to_string(qmax) +
                    "] outside the " + qtype_name(out) + " range");
  check_zero(where, out, zero);

  // q - zero = clamp(round(x / scale), qmin - zero, qmax - zero): the bounds are integers, so
  // clamping before rounding changes nothing, and the clamp keeps the rounding trick in range.
  // max(v, lo) is v > lo ? v : lo, so a NaN becomes lo (qmin), like the integer kernels' clamp.
  const float lo = static_cast<float>(qmin - zero), hi = static_cast<float>(qmax - zero);
  const int64_t stride = qchannel_stride(out, C), pixel_bytes = qpixel_bytes(out, C);
  const int64_t HW = int64_t(H) * W;
  const uint8_t zbyte = static_cast<uint8_t>(zero);  // s8: two's complement byte
  uint8_t* yb = static_cast<uint8_t*>(y);
  uint32_t pad_word = 0;  // channels C..3 of a 4-byte pixel hold the zero point
  for (int c = C; c < 4; ++c) pad_word |= uint32_t(zbyte) << (8 * c);

  for_rows(int64_t(N) * H, int64_t(C) * W, [&](int64_t row0, int64_t row1) {
    // U8/S8 write straight into the output row; U4 goes through one byte per channel first.
    std::vector<uint8_t> tmp(out == QType::U4 ? size_t(W * stride) : 0);
    constexpr int kLanes = 16;
    for (int64_t row = row0; row < row1; ++row) {
      const int64_t n = row / H, h = row % H;
      uint8_t* yrow = yb + row * W * pixel_bytes;
      uint8_t* dst = out == QType::U4 ? tmp.data() : yrow;
      auto quant = [=](float v) {
        v = v / scale;
        v = v > lo ? v : lo;
        v = v < hi ? v : hi;
        return static_cast<int>((v + kRound) - kRound) + zero;
      };
      if (stride == 4 && out != QType::U4) {
        // The image (C <= 4): one 32-bit word per pixel, its bytes put together in registers
        // and stored whole (scattering them byte by byte took most of the time).
        const float* xr = x + n * C * HW + h * W;
        for (int w = 0; w < W; w += kLanes) {
          const int lanes = std::min(kLanes, W - w);
          uint32_t word[kLanes];
          for (int j = 0; j < kLanes; ++j) word[j] = pad_word;
          // A fixed trip count where possible: GCC's -O2 vectorizes only such loops.
          for (int c = 0; c < C; ++c) {
            const float* xc = xr + c * HW + w;
            if (lanes == kLanes)
              for (int j = 0; j < kLanes; ++j) word[j] |= uint32_t(static_cast<uint8_t>(quant(xc[j]))) << (8 * c);
            else
              for (int j = 0; j < lanes; ++j) word[j] |= uint32_t(static_cast<uint8_t>(quant(xc[j]))) << (8 * c);
          }
          // A constant size for a whole block: a variable one became `rep movs`, which took
          // most of this loop's time (2/3 of its samples in a ResNet-50 run).
          if (lanes == kLanes)
            std::memcpy(dst + int64_t(w) * 4, word, sizeof word);
          else
            std::memcpy(dst + int64_t(w) * 4, word, size_t(lanes) * 4);
        }
        continue;
      }
      for (int c = 0; c < C; ++c) {
        const float* xr = x + (n * C + c) * HW + h * W;
        int w = 0;
        for (; w + kLanes <= W; w += kLanes) {
          int q[kLanes];
          for (int j = 0; j < kLanes; ++j) q[j] = quant(xr[w + j]);
          for (int j = 0; j < kLanes; ++j) dst[(w + j) * stride + c] = static_cast<uint8_t>(q[j]);
        }
        for (; w < W; ++w) dst[w * stride + c] = static_cast<uint8_t>(quant(xr[w]));
      }
      for (int w = 0; w < W; ++w)
        for (int64_t c = C; c < stride; ++c) dst[w * stride + c] = zbyte;
      if (out == QType::U4)
        for (int64_t i = 0; i < W * pixel_bytes; ++i)
          yrow[i] = static_cast<uint8_t>(tmp[2 * i] | (tmp[2 * i + 1] << 4));
    }
  });
}

void dequantize_nhwc(const void* x, QType in, int N, int C, int H, int W, float scale, int zero,
                     float* y) {
  constexpr const char* where = "dequantize";
  check_shape(where, N, C, H, W);
  check_scale(where, scale);
  check_zero(where, in, zero);  // also rejects F32 and non-enumerators
  const int64_t stride = qchannel_stride(in, C), pixel_bytes = qpixel_bytes(in, C);
  const int64_t HW = int64_t(H) * W;
  const uint8_t* xb = static_cast<const uint8_t*>(x);

  for_rows(int64_t(N) * H, int64_t(C) * W, [&](int64_t row0, int64_t row1) {
    for (int64_t row = row0; row < row1; ++row) {
      const int64_t n = row / H, h = row % H;
      const uint8_t* xrow = xb + row * W * pixel_bytes;
      for (int c = 0; c < C; ++c) {
        float* yr = y + (n * C + c) * HW + h * W;
        if (in == QType::U8) {
          for (int w = 0; w < W; ++w) yr[w] = static_cast<float>(xrow[w * stride + c] - zero) * scale;
        } else if (in == QType::S8) {
          for (int w = 0; w < W; ++w)
            yr[w] = static_cast<float>(static_cast<int8_t>(xrow[w * stride + c]) - zero) * scale;
        } else {
          const int64_t byte = c >> 1, shift = (c & 1) * 4;
          for (int w = 0; w < W; ++w)
            yr[w] = static_cast<float>(((xrow[w * pixel_bytes + byte] >> shift) & 15) - zero) * scale;
        }
      }
    }
  });
}

void unpack_u4(const uint8_t* x, int64_t pixels, int C, uint8_t* y) {
  if (pixels < 0 || C < 1) fail("unpack_u4", "invalid size (pixels >= 0, C >= 1)");
  // The u8 pixel (C rounded up to 4) is a prefix of the u4 pixel (C rounded up to 8): its
  // padding channels are the u4 padding nibbles, i.e. the zero point.
  const int64_t in_bytes = qpixel_bytes(QType::U4, C), out_bytes = qpixel_bytes(QType::U8, C);
  const int64_t pairs = out_bytes / 2;  // out_bytes is a multiple of 4
  for_rows(pixels, out_bytes, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const uint8_t* xp = x + p * in_bytes;
      uint8_t* yp = y + p * out_bytes;
      for (int64_t j = 0; j < pairs; ++j) {
        yp[2 * j] = xp[j] & 15;
        yp[2 * j + 1] = xp[j] >> 4;
      }
    }
  });
}

void pack_u4(const uint8_t* x, int64_t pixels, int C, uint8_t* y, int zero) {
  if (pixels < 0 || C < 1) fail("pack_u4", "invalid size (pixels >= 0, C >= 1)");
  if (zero < 0 || zero > 15) fail("pack_u4", "zero point " + std::to_string(zero) + " outside 0..15");
  // Reads channels 0..C-1 of each u8 pixel (never its padding); writes the u4 padding nibbles
  // as `zero`. Values are masked to 4 bits, so a value > 15 (outside the contract) cannot spill
  // into the neighbouring channel.
  const int64_t in_bytes = qpixel_bytes(QType::U8, C), out_bytes = qpixel_bytes(QType::U4, C);
  const int64_t full = C / 2;
  const uint8_t zz = static_cast<uint8_t>(zero | (zero << 4));
  for_rows(pixels, in_bytes, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const uint8_t* xp = x + p * in_bytes;
      uint8_t* yp = y + p * out_bytes;
      for (int64_t j = 0; j < full; ++j)
        yp[j] = static_cast<uint8_t>((xp[2 * j] & 15) | ((xp[2 * j + 1] & 15) << 4));
      int64_t j = full;
      if (C & 1) {
        yp[j] = static_cast<uint8_t>((xp[C - 1] & 15) | (zero << 4));
        ++j;
      }
      for (; j < out_bytes; ++j) yp[j] = zz;
    }
  });
}

void pack_u4(const uint8_t* x, int64_t pixels, int C, uint8_t* y) { pack_u4(x, pixels, C, y, 0); }

}  // namespace fgq::ops
