// Pooling on quantized NHWC activations (ops/qpool.h). Max pooling works on the stored bytes
// (u4: nibble by nibble, without unpacking); global average pooling sums in int32 and
// requantizes once. Built with -ffp-contract=off (CMakeLists.txt).
#include "ops/qpool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "graph/error.h"
#include "ops/parallel_tasks.h"

namespace fgq::ops {
namespace {

constexpr int64_t kParallelWork = 1 << 17;  // bytes touched below which one thread is faster
constexpr float kRound = 12582912.f;        // (v + 1.5 * 2^23) - 1.5 * 2^23: nearbyint, |v| <= 2^22

// Window [start, start + k) clipped to the input [0, in).
struct Span {
  int begin, end;
};
Span window(int o, int k, int stride, int pad_begin, int in) {
  const int start = o * stride - pad_begin;
  return {std::max(start, 0), std::min(start + k, in)};
}

// Max on bytes holding one u8 or two u4 values each (U4: nibble by nibble, the halves never
// interact), 64 bytes at a time in a GCC vector type (one zmm with AVX-512, four xmm on
// baseline x86-64; no function takes or returns one: their ABI differs between the two), and
// byte by byte for the rest.
using Bytes64 = uint8_t __attribute__((vector_size(64)));

template <bool U4>
uint8_t max_byte(uint8_t a, uint8_t b) {
  if (!U4) return a > b ? a : b;
  const uint8_t lo = (a & 0x0F) > (b & 0x0F) ? (a & 0x0F) : (b & 0x0F);
  const uint8_t hi = (a & 0xF0) > (b & 0xF0) ? (a & 0xF0) : (b & 0xF0);
  return static_cast<uint8_t>(lo | hi);
}

// d[i] = max over the `count` spans s, s + step, ... of s[i], i < n (count >= 1). Inlined: a
// call per output pixel of 64 channels cost as much as its loads.
template <bool U4>
inline __attribute__((always_inline)) void max_of(uint8_t* d, const uint8_t* s, int64_t step,
                                                  int count, int64_t n) {
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    Bytes64 v, w;
    std::memcpy(&v, s + i, 64);
    for (int j = 1; j < count; ++j) {
      std::memcpy(&w, s + j * step + i, 64);
      if (U4) {
        const Bytes64 vl = v & 0x0F, wl = w & 0x0F, vh = v & 0xF0, wh = w & 0xF0;
        v = (vl > wl ? vl : wl) | (vh > wh ? vh : wh);
      } else {
        v = v > w ? v : w;
      }
    }
    std::memcpy(d + i, &v, 64);
  }
  for (; i < n; ++i) {
    uint8_t v = s[i];
    for (int j = 1; j < count; ++j) v = max_byte<U4>(v, s[j * step + i]);
    d[i] = v;
  }
}

template <bool U4>
void maxpool_rows(const Pool2dShape& s, int OH, int OW, int64_t pb, const uint8_t* x,
                  uint8_t* y, int64_t row0, int64_t row1) {
  const int64_t row_bytes = int64_t(s.W) * pb;
  thread_local std::vector<uint8_t> cols;  // kept: no allocation or zeroing per task
  if (cols.size() < size_t(row_bytes)) cols.resize(size_t(row_bytes));
  for (int64_t row = row0; row < row1; ++row) {
    const int64_t n = row / OH;
    const int oh = static_cast<int>(row % OH);
    const uint8_t* img = x + n * s.H * row_bytes;
    uint8_t* yrow = y + row * OW * pb;
    // Column-wise max of the window's rows (never empty: checked by the caller), then the max
    // over each window's columns.
    const Span hs = window(oh, s.KH, s.SH, s.PT, s.H);
    const uint8_t* src = img + int64_t(hs.begin) * row_bytes;
    if (hs.end - hs.begin > 1) {
      max_of<U4>(cols.data(), src, row_bytes, hs.end - hs.begin, row_bytes);
      src = cols.data();
    }
    for (int ow = 0; ow < OW; ++ow) {
      const Span ws = window(ow, s.KW, s.SW, s.PL, s.W);
      max_of<U4>(yrow + int64_t(ow) * pb, src + int64_t(ws.begin) * pb, pb, ws.end - ws.begin, pb);
    }
  }
}

std::string type_error(const char* what, QType t) {
  return std::string("unsupported ") + what + "type " + qtype_name(t);
}

}  // namespace

void maxpool2d_q(const Pool2dShape& s, int batch, QType type, const void* x, void* y) {
  constexpr const char* where = "maxpool_q";
  if (type != QType::U8 && type != QType::U4) fail(where, type_error("", type));
  if (batch < 0 || s.C < 1) fail(where, "invalid size (batch >= 0, C >= 1)");
  const int OH = s.OH(), OW = s.OW();  // validates H, W, kernel, stride, pads
  // A window lying entirely in the padding has no value to take (FP32 gives -inf there).
  // Windows start at o * stride - pad; the first contains input index 0 iff pad_begin < k, and
  // every later one starts at or after it, so it is non-empty iff it starts before the end.
  auto empty_window = [](int out, int k, int stride, int pad_begin, int in) {
    return pad_begin >= k || int64_t(out - 1) * stride - pad_begin >= in;
  };
  if (empty_window(OH, s.KH, s.SH, s.PT, s.H) || empty_window(OW, s.KW, s.SW, s.PL, s.W))
    fail(where, "a pooling window lies entirely in the padding");
  if (batch == 0) return;

  const int64_t pb = qpixel_bytes(type, s.C);
  const uint8_t* xb = static_cast<const uint8_t*>(x);
  uint8_t* yb = static_cast<uint8_t*>(y);
  const int64_t rows = int64_t(batch) * OH;
  const int64_t row_work = (int64_t(std::min(s.KH, s.H)) * s.W + int64_t(OW) * s.KW) * pb;
  auto run = [&](int64_t r0, int64_t r1) {
    if (type == QType::U8)
      maxpool_rows<false>(s, OH, OW, pb, xb, yb, r0, r1);
    else
      maxpool_rows<true>(s, OH, OW, pb, xb, yb, r0, r1);
  };
  if (rows * row_work < kParallelWork || rows == 1) {
    run(0, rows);
  } else {
    const int64_t grain = std::max<int64_t>(1, kParallelWork / 4 / std::max<int64_t>(1, row_work));
    parallel_chunks(rows, grain, run);
  }
}

void global_avgpool_q(int batch, int C, int HW, QType in, const void* x, float mult, int qmin,
                      int qmax, QType out, void* y) {
  constexpr const char* where = "global_avgpool_q";
  if (in != QType::U8 && in != QType::U4) fail(where, type_error("input ", in));
  if (out != QType::U8 && out != QType::U4) fail(where, type_error("output ", out));
  if (batch < 0 || C < 1 || HW < 1) fail(where, "invalid size (batch >= 0, C, HW >= 1)");
  const int in_max = in == QType::U8 ? 255 : 15, out_max = out == QType::U8 ? 255 : 15;
  if (HW > std::numeric_limits<int32_t>::max() / in_max)
    fail(where, "HW = " + std::to_string(HW) + " overflows the int32 sums");
  if (qmin > qmax) fail(where, "qmin > qmax");
  if (qmin < 0 || qmax > out_max)
    fail(where, "qmin/qmax [" + std::to_string(qmin) + ", " + std::to_string(qmax) +
                    "] outside the " + qtype_name(out) + " range");
  if (!std::isfinite(mult)) fail(where, "multiplier must be finite");
  if (batch == 0) return;

  // Channels go in blocks of kBlock (a multiple of 8, so no byte of a u4 pixel straddles two
  // blocks); the last block also writes the output's padding channels (zero point 0).
  constexpr int kBlock = 64;
  const int64_t in_pb = qpixel_bytes(in, C), out_pb = qpixel_bytes(out, C);
  const int64_t out_stride = qchannel_stride(out, C);
  const int blocks = (C + kBlock - 1) / kBlock;
  const float lo = static_cast<float>(qmin), hi = static_cast<float>(qmax);
  const uint8_t* xb = static_cast<const uint8_t*>(x);
  uint8_t* yb = static_cast<uint8_t*>(y);

  auto task = [&](int64_t t) {
    const int64_t n = t / blocks;
    const int c0 = static_cast<int>(t % blocks) * kBlock, c1 = std::min(c0 + kBlock, C);
    const int64_t cend = c1 == C ? out_stride : c1;  // <= c0 + kBlock + 7
    int32_t acc[kBlock + 8] = {};
    const uint8_t* img = xb + n * HW * in_pb;
    if (in == QType::U8) {
      const int nc = c1 - c0;
      for (int64_t p = 0; p < HW; ++p) {
        const uint8_t* px = img + p * in_pb + c0;
        if (nc == kBlock)  // a fixed trip count: GCC's -O2 vectorizes only such loops
          for (int c = 0; c < kBlock; ++c) acc[c] += px[c];
        else
          for (int c = 0; c < nc; ++c) acc[c] += px[c];
      }
    } else {
      const int b0 = c0 / 2, nb = (c1 + 1) / 2 - b0;  // odd C: the last high nibble is padding
      for (int64_t p = 0; p < HW; ++p) {
        const uint8_t* px = img + p * in_pb + b0;
        for (int b = 0; b < nb; ++b) {
          acc[2 * b] += px[b] & 15;
          acc[2 * b + 1] += px[b] >> 4;
        }
      }
    }
    uint8_t q[kBlock + 8] = {};  // channels c1..cend stay 0: output padding
    for (int c = 0; c < c1 - c0; ++c) {
      float v = static_cast<float>(acc[c]) * mult;
      v = v > lo ? v : lo;
      v = v < hi ? v : hi;
      q[c] = static_cast<uint8_t>(static_cast<int>((v + kRound) - kRound));
    }
    uint8_t* yimg = yb + n * out_pb;
    if (out == QType::U8) {
      std::memcpy(yimg + c0, q, size_t(cend - c0));
    } else {
      for (int64_t i = 0; i < (cend - c0) / 2; ++i)
        yimg[c0 / 2 + i] = static_cast<uint8_t>(q[2 * i] | (q[2 * i + 1] << 4));
    }
  };
  const int64_t tasks = int64_t(batch) * blocks;
  const int64_t work = int64_t(batch) * HW * in_pb;
  if (work < kParallelWork || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t) task(t);
  } else {
    parallel_tasks(tasks, task);
  }
}

}  // namespace fgq::ops
