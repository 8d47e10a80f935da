// ops/qconv driver: validation, weight packing, indirection, tiling and threading around the
// per-ISA micro-kernels (qconv_ukernel.h: layouts and what a micro-kernel computes).
//
// make_qconv (once per layer and ISA):
//   - packs the weights in the micro-kernel's layout (avx512vnni / scalar: int8 blocks of 64
//     output channels, one 64-byte vector = 16 oc x 4 ic, [block][tap][group][vector]; avx2:
//     int16 pairs, blocks of 16 output channels), zero-padded to whole vectors of input and
//     output channels;
//   - compensation comp[k] = -in_zero * sum(w[k]) (u8 paths; 0 for avx2, whose input is widened
//     to x - in_zero), multipliers and biases padded with zeros;
//   - how a task finds its input rows, one of:
//       direct: 1x1, stride 1, no padding: a plain GEMM, rows computed from the pixel index;
//       fused:  dilation 1 along W and <= 64 bytes per input row (C <= 64): the KW taps of a
//               kernel row read KW consecutive input pixels = KW * row_bytes contiguous bytes,
//               and their packed weights are contiguous too, so the micro-kernel runs KH taps
//               of KW * groups groups with one pointer per kernel row (the first conv, C = 3:
//               49 taps of 4 bytes become 7 of 28). Kernel rows sticking out of the image on
//               the left or right are assembled in a small per-task buffer, rows above or
//               below point at a zero-point row;
//       indirect: an offset table built here, per output pixel of one image and tap the input
//               pixel or -1 for padding (read from a row of zero-point bytes);
//   - the clamp intersected with the integer output's range: clamping to [lo, hi] and then
//     saturating equals clamping to the intersection (the range bounds are integers and
//     rounding is monotonic), so the SIMD round + narrowing never saturates.
// qconv_run: converts the input into the scratch if the path needs it (u4 -> u8 unpacking;
//   avx2: widening to int16 x - in_zero), then runs tasks of (pixel range x output-channel
//   range) with tbb::parallel_for. A task builds its row pointers once; the micro-kernel loops
//   over the task's channel blocks (outer: the block's weights stay in L1/L2) and its 6-pixel
//   tiles (inner; tiles run across image boundaries).
#include "ops/qconv/qconv.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "graph/error.h"
#include "ops/qconv/qconv_ukernel.h"

namespace fgq::ops {
namespace {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<uint8_t[], FreeDeleter>;

// Zeroed, 64-byte aligned, at least one cache line.
Buffer aligned_zeroed(size_t bytes) {
  const size_t n = std::max<size_t>(64, (bytes + 63) / 64 * 64);
  void* p = std::aligned_alloc(64, n);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, n);
  return Buffer(static_cast<uint8_t*>(p));
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

using UKernel = void (*)(const qk::Layer*, const qk::Task*);

static_assert(qk::kU8 == int32_t(QType::U8) && qk::kS8 == int32_t(QType::S8) &&
                  qk::kU4 == int32_t(QType::U4) && qk::kF32 == int32_t(QType::F32),
              "qconv_ukernel.h type codes follow QType");

}  // namespace

class QConvKernel {
 public:
  QConvParams p;
  Isa isa = Isa::Scalar;
  int OH = 0, OW = 0, taps = 0;
  int block = 0;             // output channels per packed block
  int64_t cs = 0;            // input channels as the micro-kernel reads them (multiple of 4)
  int64_t row_bytes = 0;     // bytes of one input row as the micro-kernel reads it
  bool direct = false;       // 1x1, stride 1, no padding: rows are computed (a plain GEMM)
  bool fused = false;        // the KW taps of a kernel row read as one (see make_qconv)
  int edge_cols = 0;         // fused: output columns whose kernel rows stick out left or right
  bool convert = false;      // the input is converted into the scratch first
  Buffer wpack, comp, mult, bias, zero_row;
  size_t wpack_bytes = 0, epi_bytes = 0;
  std::vector<int32_t> offs;  // [OH*OW][taps]: input pixel (ih*W + iw) or -1 (padding)
  qk::Layer layer{};
  UKernel ukernel = nullptr;
};

namespace {

void check_geometry(const QConvGeometry& g) {
  const auto need = [](int v, const char* name, int min) {
    if (v < min)
      fail("qconv", std::string(name) + " = " + std::to_string(v) + ", must be >= " +
                        std::to_string(min));
  };
  need(g.C, "C", 1), need(g.H, "H", 1), need(g.W, "W", 1), need(g.K, "K", 1);
  need(g.KH, "KH", 1), need(g.KW, "KW", 1), need(g.SH, "SH", 1), need(g.SW, "SW", 1);
  need(g.DH, "DH", 1), need(g.DW, "DW", 1);
  need(g.PT, "PT", 0), need(g.PL, "PL", 0), need(g.PB, "PB", 0), need(g.PR, "PR", 0);
  const int64_t eh = int64_t(g.DH) * (g.KH - 1) + 1, ew = int64_t(g.DW) * (g.KW - 1) + 1;
  if (int64_t(g.H) + g.PT + g.PB < eh || int64_t(g.W) + g.PL + g.PR < ew)
    fail("qconv", "kernel extent " + std::to_string(eh) + "x" + std::to_string(ew) +
                      " larger than the padded input " + std::to_string(g.H + g.PT + g.PB) + "x" +
                      std::to_string(g.W + g.PL + g.PR));
  constexpr int64_t kMax = int64_t(1) << 31;
  if (int64_t(g.H) * g.W >= kMax || int64_t(g.OH()) * g.OW() >= kMax ||
      int64_t(g.K) * g.C * g.KH * g.KW >= kMax || int64_t(g.C) * g.KH * g.KW * 8 >= kMax)
    fail("qconv", "tensor sizes out of range (" + std::to_string(g.C) + "x" +
                      std::to_string(g.H) + "x" + std::to_string(g.W) + " -> " +
                      std::to_string(g.K) + ", kernel " + std::to_string(g.KH) + "x" +
                      std::to_string(g.KW) + ")");
}

void check_params(Isa isa, const QConvParams& p, const int8_t* w, const float* mult,
                  const float* bias) {
  check_geometry(p.g);
  if (p.in_type != QType::U8 && p.in_type != QType::U4)
    fail("qconv", std::string("input type ") + qtype_name(p.in_type) + " unsupported (u8, u4)");
  const int zmax = p.in_type == QType::U4 ? 15 : 255;
  if (p.in_zero < 0 || p.in_zero > zmax)
    fail("qconv", "input zero point " + std::to_string(p.in_zero) + " outside 0.." +
                      std::to_string(zmax) + " for " + qtype_name(p.in_type));
  if (p.has_residual) {
    if (p.res_type != QType::U8 && p.res_type != QType::S8 && p.res_type != QType::U4)
      fail("qconv", std::string("residual type ") + qtype_name(p.res_type) +
                        " unsupported (u8, s8, u4)");
    if (!std::isfinite(p.res_scale))
      fail("qconv", "residual scale " + std::to_string(p.res_scale) + " is not finite");
  }
  if (p.out_type != QType::U8 && p.out_type != QType::S8 && p.out_type != QType::U4 &&
      p.out_type != QType::F32)
    fail("qconv", "output type unsupported");
  if (std::isnan(p.clamp_lo) || std::isnan(p.clamp_hi) || !(p.clamp_lo <= p.clamp_hi))
    fail("qconv", "clamp [" + std::to_string(p.clamp_lo) + ", " + std::to_string(p.clamp_hi) +
                      "] is empty or NaN");
  if (!w || !mult || !bias) fail("qconv", "null weights, multipliers or biases");
  for (int k = 0; k < p.g.K; ++k)
    if (!std::isfinite(mult[k]) || !std::isfinite(bias[k]))
      fail("qconv", "output channel " + std::to_string(k) + ": multiplier " +
                        std::to_string(mult[k]) + " or bias " + std::to_string(bias[k]) +
                        " is not finite");
  if (!cpu_supports(isa))
    fail("qconv", std::string("this CPU cannot run the ") + isa_name(isa) + " path");
}

// Packs w[K][C][KH][KW] for the scalar / avx512vnni micro-kernels (qconv_ukernel.h).
void pack_vnni(QConvKernel& q, const int8_t* w, int64_t kpad) {
  const QConvGeometry& g = q.p.g;
  const int64_t groups = q.cs / 4, taps = q.taps;
  q.wpack_bytes = size_t(kpad * taps * q.cs);
  q.wpack = aligned_zeroed(q.wpack_bytes);
  int8_t* out = reinterpret_cast<int8_t*>(q.wpack.get());
  for (int64_t n0 = 0; n0 < kpad; n0 += qk::kBlockVnni) {
    const int64_t nb16 = std::min<int64_t>(qk::kBlockVnni, kpad - n0) / 16;
    int8_t* blk = out + (n0 / qk::kBlockVnni) * taps * groups * 256;
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t gi = 0; gi < groups; ++gi)
        for (int64_t j = 0; j < nb16; ++j)
          for (int64_t o = 0; o < 16; ++o)
            for (int64_t i = 0; i < 4; ++i) {
              const int64_t k = n0 + 16 * j + o, c = 4 * gi + i;
              if (k >= g.K || c >= g.C) continue;
              blk[((t * groups + gi) * nb16 + j) * 64 + o * 4 + i] = w[(k * g.C + c) * taps + t];
            }
  }
}

// Packs w as int16 pairs for the avx2 micro-kernel (qconv_ukernel.h).
void pack_avx2(QConvKernel& q, const int8_t* w, int64_t kpad) {
  const QConvGeometry& g = q.p.g;
  const int64_t groups = q.cs / 2, taps = q.taps;
  q.wpack_bytes = size_t(kpad * taps * q.cs * 2);
  q.wpack = aligned_zeroed(q.wpack_bytes);
  int16_t* out = reinterpret_cast<int16_t*>(q.wpack.get());
  for (int64_t n0 = 0; n0 < kpad; n0 += qk::kBlockAvx2) {
    const int64_t nb8 = std::min<int64_t>(qk::kBlockAvx2, kpad - n0) / 8;
    int16_t* blk = out + (n0 / qk::kBlockAvx2) * taps * groups * 32;
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t gi = 0; gi < groups; ++gi)
        for (int64_t j = 0; j < nb8; ++j)
          for (int64_t o = 0; o < 8; ++o)
            for (int64_t i = 0; i < 2; ++i) {
              const int64_t k = n0 + 8 * j + o, c = 2 * gi + i;
              if (k >= g.K || c >= g.C) continue;
              blk[((t * groups + gi) * nb8 + j) * 16 + o * 2 + i] = w[(k * g.C + c) * taps + t];
            }
  }
}

}  // namespace

std::shared_ptr<const QConvKernel> make_qconv(Isa isa, const QConvParams& p, const int8_t* w,
                                             const float* mult, const float* bias) {
  check_params(isa, p, w, mult, bias);
  auto q = std::make_shared<QConvKernel>();
  q->p = p;
  q->isa = isa;
  const QConvGeometry& g = p.g;
  q->OH = g.OH(), q->OW = g.OW(), q->taps = g.KH * g.KW;
  q->cs = qchannel_stride(QType::U8, g.C);
  const bool avx2 = isa == Isa::Avx2;
  q->block = avx2 ? qk::kBlockAvx2 : qk::kBlockVnni;
  q->row_bytes = avx2 ? 2 * q->cs : q->cs;
  q->convert = avx2 || p.in_type == QType::U4;
  q->direct = g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PT == 0 && g.PL == 0 &&
              g.PB == 0 && g.PR == 0;
  // Fused kernel rows: with dilation 1 along W the KW taps of one kernel row read KW
  // consecutive input pixels, i.e. KW * row_bytes contiguous bytes, and the packed weights of
  // taps (r, 0..KW-1) are contiguous too ([tap][group] order). The micro-kernel then runs KH
  // taps of KW * groups groups, one pointer per kernel row: far less per-tap overhead for few
  // channels (the first conv, C = 3: 49 taps of 4 bytes become 7 of 28). Kernel rows that stick
  // out of the image left or right are assembled by the task in a small buffer.
  q->fused = !q->direct && g.KW > 1 && g.DW == 1 && q->row_bytes <= 64;
  for (int ow = 0; ow < q->OW; ++ow) {
    const int iw0 = ow * g.SW - g.PL;
    q->edge_cols += iw0 < 0 || iw0 + g.KW > g.W;
  }
  const int64_t kpad = round_up(g.K, avx2 ? 8 : 16);
  if (avx2)
    pack_avx2(*q, w, kpad);
  else
    pack_vnni(*q, w, kpad);

  // Epilogue constants, zero past K (the micro-kernels read whole vectors up to kpad).
  const int64_t kvec = round_up(kpad, 64);
  q->epi_bytes = size_t(kvec) * 4 * 3;
  q->comp = aligned_zeroed(kvec * 4);
  q->mult = aligned_zeroed(kvec * 4);
  q->bias = aligned_zeroed(kvec * 4);
  auto* comp = reinterpret_cast<int32_t*>(q->comp.get());
  auto* mu = reinterpret_cast<float*>(q->mult.get());
  auto* bi = reinterpret_cast<float*>(q->bias.get());
  const int64_t depth = int64_t(g.C) * q->taps;
  for (int64_t k = 0; k < g.K; ++k) {
    int64_t sum = 0;
    for (int64_t i = 0; i < depth; ++i) sum += w[k * depth + i];
    comp[k] = avx2 ? 0 : int32_t(uint32_t(-int64_t(p.in_zero) * sum));
    mu[k] = mult[k];
    bi[k] = bias[k];
  }

  // The row read for a padding tap: the zero point (avx2: x - in_zero = 0).
  const size_t zero_bytes = size_t(q->row_bytes) * (q->fused ? g.KW : 1);
  q->zero_row = aligned_zeroed(zero_bytes);
  if (!avx2) std::memset(q->zero_row.get(), p.in_zero, zero_bytes);

  if (!q->direct && !q->fused) {
    q->offs.resize(size_t(q->OH) * q->OW * q->taps);
    int32_t* o = q->offs.data();
    for (int oh = 0; oh < q->OH; ++oh)
      for (int ow = 0; ow < q->OW; ++ow)
        for (int r = 0; r < g.KH; ++r)
          for (int s = 0; s < g.KW; ++s) {
            const int ih = oh * g.SH - g.PT + r * g.DH, iw = ow * g.SW - g.PL + s * g.DW;
            *o++ = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? ih * g.W + iw : -1;
          }
  }

  float lo = p.clamp_lo, hi = p.clamp_hi;
  if (p.out_type != QType::F32) {
    const float tmin = p.out_type == QType::S8 ? -128.f : 0.f;
    const float tmax = p.out_type == QType::S8 ? 127.f : p.out_type == QType::U4 ? 15.f : 255.f;
    lo = std::min(std::max(lo, tmin), tmax);
    hi = std::min(std::max(hi, tmin), tmax);
  }

  qk::Layer& L = q->layer;
  L.w = q->wpack.get();
  L.comp = comp;
  L.mult = mu;
  L.bias = bi;
  L.taps = q->taps;
  L.groups = int32_t(q->row_bytes / 4);
  L.K = g.K;
  L.kpad = int32_t(kpad);
  L.out_type = int32_t(p.out_type);
  L.out_cstride = int32_t(qchannel_stride(p.out_type, g.K));
  L.has_res = p.has_residual;
  L.has_comp = !avx2 && p.in_zero != 0;
  L.res_type = p.has_residual ? int32_t(p.res_type) : qk::kU8;
  L.res_cstride = p.has_residual ? int32_t(qchannel_stride(p.res_type, g.K)) : 0;
  L.out_pixel_bytes = p.out_type == QType::F32 ? 0 : qpixel_bytes(p.out_type, g.K);
  L.res_pixel_bytes = p.has_residual ? qpixel_bytes(p.res_type, g.K) : 0;
  L.ohw = int64_t(q->OH) * q->OW;
  L.res_scale = p.has_residual ? p.res_scale : 0.f;
  L.lo = lo;
  L.hi = hi;
  q->ukernel = isa == Isa::Avx512Vnni ? qk::fgq_qconv_ukernel_avx512vnni
               : avx2                 ? qk::fgq_qconv_ukernel_avx2
                                      : qk::fgq_qconv_ukernel_scalar;
  return q;
}

size_t qconv_scratch_bytes(const QConvKernel& k, int batch) {
  if (!k.convert || batch < 1) return 0;
  return size_t(round_up(int64_t(batch) * k.p.g.H * k.p.g.W * k.row_bytes, 64));
}

const QConvParams& qconv_params(const QConvKernel& k) { return k.p; }
Isa qconv_isa(const QConvKernel& k) { return k.isa; }
int64_t qconv_macs(const QConvKernel& k, int batch) {
  const QConvGeometry& g = k.p.g;
  return int64_t(batch) * k.OH * k.OW * g.K * g.C * g.KH * g.KW;
}
size_t qconv_packed_bytes(const QConvKernel& k) {
  return k.wpack_bytes + k.epi_bytes + k.offs.size() * sizeof(int32_t) + size_t(k.row_bytes);
}

namespace {

// x - z widened to int16, n values; fixed-size inner loops so that -O2 vectorizes them.
void widen(const uint8_t* __restrict s, int16_t* __restrict d, int64_t n, int16_t z) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 32; ++j) d[i + j] = int16_t(s[i + j] - z);
  for (; i < n; ++i) d[i] = int16_t(s[i] - z);
}

// n u4 values (n even, low nibble first) from s as int16 (nibble - z) or, when d8, as bytes.
void unpack_u4(const uint8_t* __restrict s, uint8_t* __restrict d8, int16_t* __restrict d16, int64_t n,
               int16_t z) {
  int64_t i = 0;
  if (d8) {
    for (; i + 32 <= n; i += 32)
      for (int j = 0; j < 16; ++j) {
        d8[i + 2 * j] = s[i / 2 + j] & 15;
        d8[i + 2 * j + 1] = s[i / 2 + j] >> 4;
      }
    for (; i < n; i += 2) d8[i] = s[i / 2] & 15, d8[i + 1] = s[i / 2] >> 4;
  } else {
    for (; i + 32 <= n; i += 32)
      for (int j = 0; j < 16; ++j) {
        d16[i + 2 * j] = int16_t((s[i / 2 + j] & 15) - z);
        d16[i + 2 * j + 1] = int16_t((s[i / 2 + j] >> 4) - z);
      }
    for (; i < n; i += 2)
      d16[i] = int16_t((s[i / 2] & 15) - z), d16[i + 1] = int16_t((s[i / 2] >> 4) - z);
  }
}

// The input as the micro-kernel reads it: u4 unpacked to u8 (scalar, avx512vnni) or any input
// widened to int16 x - in_zero (avx2), written to dst, pixels [p0, p1). Rows are cs values
// (channels past C are padding, whatever they hold: their weights are 0).
void convert_input(const QConvKernel& k, const uint8_t* x, uint8_t* dst, int64_t p0, int64_t p1) {
  const QConvParams& p = k.p;
  const int64_t xpb = qpixel_bytes(p.in_type, p.g.C), cs = k.cs;
  const int16_t z = int16_t(p.in_zero);
  const bool avx2 = k.isa == Isa::Avx2;
  if (p.in_type == QType::U8) {  // avx2 only; rows are contiguous on both sides
    widen(x + p0 * cs, reinterpret_cast<int16_t*>(dst) + p0 * cs, (p1 - p0) * cs, z);
    return;
  }
  if (xpb * 2 == cs) {  // C a multiple of 8: contiguous too
    unpack_u4(x + p0 * xpb, avx2 ? nullptr : dst + p0 * cs,
              avx2 ? reinterpret_cast<int16_t*>(dst) + p0 * cs : nullptr, (p1 - p0) * cs, z);
    return;
  }
  for (int64_t px = p0; px < p1; ++px)
    unpack_u4(x + px * xpb, avx2 ? nullptr : dst + px * cs,
              avx2 ? reinterpret_cast<int16_t*>(dst) + px * cs : nullptr, cs, z);
}

struct Plan {
  int64_t m_chunk = 0;  // pixels per task (a multiple of the tile height)
  int64_t n_chunk = 0;  // output channels per task (a multiple of the block)
  int64_t m_tasks = 0, n_tasks = 0;
};

// Tasks of (pixel range x output-channel range): at least 4 per thread when there is enough
// work, a task's input in about 256 KB. Splitting pixels makes every task read all the
// weights of its channels, splitting channels makes every task read all its input: when the
// weights are the bigger of the two (deep layers, small maps) channels are split first.
Plan plan_tasks(const QConvKernel& k, int64_t M) {
  const QConvGeometry& g = k.p.g;
  const int threads = std::max(1, tbb::this_task_arena::max_concurrency());
  const int64_t m_tiles = ceil_div(M, qk::kTileRows);
  const int64_t n_blocks = ceil_div(k.layer.kpad, k.block);
  const int64_t want = threads > 1 ? 4 * int64_t(threads) : 1;
  const int64_t in_bytes = M * k.row_bytes * g.SH * g.SW;
  const int64_t w_bytes = int64_t(k.wpack_bytes);
  // A task's row pointers: 8 bytes per pixel and tap (fused: per kernel row), also <= 256 KB.
  const int64_t ptr_bytes = k.direct ? 0 : M * 8 * (k.fused ? g.KH : k.taps);
  int64_t mt = std::clamp<int64_t>(ceil_div(std::max(in_bytes, ptr_bytes), 256 << 10), 1, m_tiles);
  int64_t nt = 1;
  if (mt * nt < want) {
    if (w_bytes > in_bytes) {
      nt = std::min(n_blocks, ceil_div(want, mt));
      if (mt * nt < want) mt = std::min(m_tiles, ceil_div(want, nt));
    } else {
      mt = std::min(m_tiles, ceil_div(want, nt));
      if (mt * nt < want) nt = std::min(n_blocks, ceil_div(want, mt));
    }
  }
  Plan pl;
  pl.m_chunk = ceil_div(m_tiles, mt) * qk::kTileRows;
  pl.n_chunk = ceil_div(n_blocks, nt) * k.block;
  pl.m_tasks = ceil_div(M, pl.m_chunk);
  pl.n_tasks = ceil_div(k.layer.kpad, pl.n_chunk);
  return pl;
}

}  // namespace

void qconv_run(const QConvKernel& k, int batch, const uint8_t* x, const void* residual, void* y,
               void* scratch) {
  const QConvParams& p = k.p;
  if (batch < 1) fail("qconv_run", "batch " + std::to_string(batch) + " must be >= 1");
  if (!x || !y) fail("qconv_run", "null input or output");
  if (p.has_residual != (residual != nullptr))
    fail("qconv_run", p.has_residual ? "the layer has a residual input but none was given"
                                     : "a residual was given to a layer without one");
  if (k.convert && !scratch) fail("qconv_run", "this layer needs scratch (qconv_scratch_bytes)");

  const int64_t hw = int64_t(p.g.H) * p.g.W;
  const int64_t M = int64_t(batch) * k.OH * k.OW;
  const uint8_t* xin = x;
  if (k.convert) {
    auto* dst = static_cast<uint8_t*>(scratch);
    const int64_t pixels = batch * hw;
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, pixels, 256),
                      [&](const tbb::blocked_range<int64_t>& r) {
                        convert_input(k, x, dst, r.begin(), r.end());
                      });
    xin = dst;
  }

  const Plan pl = plan_tasks(k, M);
  const int64_t img_bytes = hw * k.row_bytes;
  const int64_t ohw = int64_t(k.OH) * k.OW;
  auto run_task = [&](int64_t task) {
    const int64_t mi = task / pl.n_tasks, ni = task % pl.n_tasks;
    qk::Task t{};
    t.m0 = mi * pl.m_chunk;
    t.m1 = std::min(M, t.m0 + pl.m_chunk);
    t.n0 = int32_t(ni * pl.n_chunk);
    t.n1 = int32_t(std::min<int64_t>(k.layer.kpad, t.n0 + pl.n_chunk));
    t.x = xin;
    t.x_row_bytes = k.row_bytes;
    t.res = residual;
    t.y = y;
    thread_local std::vector<const uint8_t*> rows;
    const uint8_t* zero = k.zero_row.get();
    const int64_t rb = k.row_bytes;
    // Output pixel m0 as (image, row, column); advanced pixel by pixel (no divisions).
    int64_t img = t.m0 / ohw;
    int oh = int((t.m0 - img * ohw) / k.OW), ow = int(t.m0 - img * ohw - int64_t(oh) * k.OW);
    const auto next = [&] {
      if (++ow == k.OW) {
        ow = 0;
        if (++oh == k.OH) oh = 0, ++img;
      }
    };
    if (k.fused) {
      const QConvGeometry& g = p.g;
      const int KH = g.KH, KW = g.KW;
      const int64_t len = KW * rb;
      // Kernel rows sticking out left or right are assembled here: at most KH per border
      // pixel, k.edge_cols border pixels per output row.
      thread_local std::vector<uint8_t> edge;
      const int64_t out_rows = (t.m1 - t.m0) / k.OW + 2;
      const size_t edge_bytes = size_t(out_rows * k.edge_cols * KH * len);
      if (edge.size() < edge_bytes) edge.resize(edge_bytes);
      rows.resize(size_t((t.m1 - t.m0) * KH));
      const uint8_t** r = rows.data();
      uint8_t* e = edge.data();
      const int SH = g.SH, SW = g.SW, PT = g.PT, PL = g.PL, DH = g.DH, H = g.H, W = g.W;
      const int64_t row_step = int64_t(DH) * W * rb;  // from kernel row i to i + 1
      for (int64_t m = t.m0; m < t.m1; ++m, next()) {
        const uint8_t* base = xin + img * img_bytes;
        const int iw0 = ow * SW - PL, ih0 = oh * SH - PT;
        const bool inside_w = iw0 >= 0 && iw0 + KW <= W;
        if (inside_w && ih0 >= 0 && ih0 + (KH - 1) * DH < H) {  // the common case
          const uint8_t* src = base + (int64_t(ih0) * W + iw0) * rb;
          for (int i = 0; i < KH; ++i, src += row_step) *r++ = src;
          continue;
        }
        for (int i = 0; i < KH; ++i) {
          const int ih = ih0 + i * DH;
          if (ih < 0 || ih >= H) {
            *r++ = zero;
          } else if (inside_w) {
            *r++ = base + (int64_t(ih) * W + iw0) * rb;
          } else {
            for (int s = 0; s < KW; ++s) {
              const int iw = iw0 + s;
              const uint8_t* src = iw >= 0 && iw < W ? base + (int64_t(ih) * W + iw) * rb : zero;
              if (rb == 4)  // the first conv (C = 3): a fixed-size move, not a call
                std::memcpy(e + s * 4, src, 4);
              else
                std::memcpy(e + s * rb, src, size_t(rb));
            }
            *r++ = e;
            e += len;
          }
        }
      }
      t.rows = rows.data();
      qk::Layer L = k.layer;  // the same packed weights read as KH taps of KW * groups
      L.taps = KH;
      L.groups = KW * L.groups;
      k.ukernel(&L, &t);
      return;
    }
    if (!k.direct) {
      const int taps = k.taps;
      rows.resize(size_t((t.m1 - t.m0) * taps));
      const uint8_t** r = rows.data();
      for (int64_t m = t.m0; m < t.m1; ++m, next()) {
        const uint8_t* base = xin + img * img_bytes;
        const int32_t* o = k.offs.data() + (int64_t(oh) * k.OW + ow) * taps;
        for (int i = 0; i < taps; ++i) *r++ = o[i] < 0 ? zero : base + o[i] * rb;
      }
      t.rows = rows.data();
    }
    k.ukernel(&k.layer, &t);
  };
  const int64_t tasks = pl.m_tasks * pl.n_tasks;
  if (tasks == 1) {
    run_task(0);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, tasks, 1),
      [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t i = r.begin(); i < r.end(); ++i) run_task(i);
      },
      tbb::simple_partitioner());
}

}  // namespace fgq::ops
