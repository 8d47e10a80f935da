// ops/qconv driver: validation, weight packing, indirection, tiling and threading around the
// per-ISA micro-kernels (qconv_ukernel.h: layouts and what a micro-kernel computes).
//
// make_qconv (once per layer and ISA):
//   - packs the weights in the micro-kernel's layout (avx512vnni / scalar: int8 blocks of 64
//     output channels, one 64-byte vector = 16 oc x 4 ic, [block][tap][group][vector]; avx2:
//     int16 pairs, blocks of 16 output channels), zero-padded to whole vectors of input and
//     output channels; make_qconv_ternary may keep them as ternary masks + levels instead
//     (avx512vnni, "resident": 32 bytes per vector, expanded by the micro-kernel);
//   - compensation comp[k] = -in_zero * sum(w[k]) (u8 paths; 0 for avx2, whose input is widened
//     to x - in_zero), multipliers and biases padded with zeros;
//   - how a task finds its input rows, one of:
//       direct: 1x1, stride 1, no padding: a plain GEMM, rows computed from the pixel index;
//       dense:  avx512vnni, a u8 input of C < 4 channels (the first conv): the input is copied
//               into the scratch as a padded image of C bytes per pixel, a kernel row is then
//               KW * C contiguous bytes (packed as that rounded up to 4) and a pixel needs one
//               pointer, kernel row r at + r * DH * Wp * C;
//       fused:  dilation 1 along W and <= 64 bytes per input row (C <= 64): the KW taps of a
//               kernel row read KW consecutive input pixels = KW * row_bytes contiguous bytes,
//               and their packed weights are contiguous too, so the micro-kernel runs KH taps
//               of KW * groups groups with one pointer per kernel row. Kernel rows sticking
//               out of the image on the left or right are assembled in a small per-thread
//               buffer, rows above or below point at a zero-point row;
//       indirect: an offset table built here, per output pixel of one image and tap the input
//               pixel or -1 for padding (read from a row of zero-point bytes);
//   - the clamp intersected with the integer output's range: clamping to [lo, hi] and then
//     saturating equals clamping to the intersection (the range bounds are integers and
//     rounding is monotonic), so the SIMD round + narrowing never saturates; and when that
//     clamp is the u8 / s8 range and the value provably stays inside int32, the avx512vnni
//     epilogue drops the float clamp altogether (qk::Layer::fast_epi).
// qconv_run: converts the input into the scratch if the path needs it (u4 -> u8 unpacking;
//   avx2: widening to int16 x - in_zero; dense: the padded C-byte image), then runs tasks of
//   (pixel range x output-channel range) with ops::parallel_tasks (one thread for a layer under
//   1 M multiply-adds: waking a worker costs more). A task builds its row pointers a chunk of
//   pixels at a time (in buffers the thread keeps: no allocation per call) and calls the
//   micro-kernel per chunk, which loops over the task's channel blocks (outer: the block's
//   weights stay in L1/L2, the next block's are prefetched meanwhile) and its 6-pixel tiles
//   (inner; tiles run across image boundaries).
#include "ops/qconv/qconv.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "graph/error.h"
#include "ops/parallel_tasks.h"
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
  bool dense = false;        // a padded, dense copy of the input (see make_qconv)
  bool resident = false;     // weights kept as ternary masks + levels (make_qconv_ternary)
  int Hp = 0, Wp = 0;        // dense: the padded image's size (C bytes per pixel)
  int64_t dense_depth = 0;   // dense: bytes per kernel row as packed, KW * C rounded up to 4
  int64_t chunk = 0;         // pixels per micro-kernel call when rows are built (fused, dense,
                             // indirect): a multiple of the tile height
  int edge_cols = 0;         // fused: output columns whose kernel rows stick out left or right
  bool convert = false;      // the input is converted into the scratch first
  Buffer wpack, comp, mult, bias, zero_row;
  size_t wpack_bytes = 0, epi_bytes = 0;
  std::vector<int32_t> offs;  // [OH*OW][taps]: input pixel (ih*W + iw) or -1 (padding)
  qk::Layer layer{};      // as packed: taps = KH * KW, groups per input pixel
  qk::Layer run_layer{};  // as the micro-kernel runs it: fused KH taps of KW * groups groups,
                          // dense KH taps of dense_depth / 4 groups, else = layer
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

// Packs the weights for the scalar / avx512vnni micro-kernels (qconv_ukernel.h): blocks of 64
// output channels, [block][tap][group][nb16][16 oc][4 ic]. The reduction as the micro-kernel
// reads it: taps x depth bytes (depth a multiple of 4), weight (k, t, j) = w[k][c][r][s] with
//   normal: t = r * KW + s, j = c (c < C; zero for the padding channels C..cs-1)
//   dense:  t = r, j = s * C + c (zero past KW * C)
void pack_vnni(QConvKernel& q, const int8_t* w, int64_t kpad) {
  const QConvGeometry& g = q.p.g;
  const int64_t taps = q.dense ? g.KH : q.taps, depth = q.dense ? q.dense_depth : q.cs;
  const int64_t groups = depth / 4;
  q.wpack_bytes = size_t(kpad * taps * depth);
  q.wpack = aligned_zeroed(q.wpack_bytes);
  int8_t* out = reinterpret_cast<int8_t*>(q.wpack.get());
  const int64_t ktaps = q.taps;
  for (int64_t n0 = 0; n0 < kpad; n0 += qk::kBlockVnni) {
    const int64_t nb16 = std::min<int64_t>(qk::kBlockVnni, kpad - n0) / 16;
    int8_t* blk = out + (n0 / qk::kBlockVnni) * taps * groups * 256;
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t gi = 0; gi < groups; ++gi)
        for (int64_t j = 0; j < nb16; ++j)
          for (int64_t o = 0; o < 16; ++o)
            for (int64_t i = 0; i < 4; ++i) {
              const int64_t k = n0 + 16 * j + o, jj = 4 * gi + i;
              if (k >= g.K) continue;
              int64_t c, tap;
              if (q.dense) {
                if (jj >= g.KW * g.C) continue;
                c = jj % g.C, tap = t * g.KW + jj / g.C;
              } else {
                if (jj >= g.C) continue;
                c = jj, tap = t;
              }
              blk[((t * groups + gi) * nb16 + j) * 64 + o * 4 + i] = w[(k * g.C + c) * ktaps + tap];
            }
  }
}

// Packs ternary weights (t in {-1, 0, 1}, level of (k, c, tap) = lv[(k * G + c / group) * taps
// + tap], group a multiple of 4) as masks + levels for the avx512vnni micro-kernel
// (qconv_ukernel.h, Layer::resident): the pack_vnni order, 32 bytes per 64-weight vector.
void pack_resident(QConvKernel& q, const int8_t* t, const uint8_t* lv, int64_t group,
                   int64_t kpad) {
  const QConvGeometry& g = q.p.g;
  const int64_t taps = q.taps, groups = q.cs / 4, G = ceil_div(g.C, group);
  q.wpack_bytes = size_t(kpad * taps * q.cs / 2);
  q.wpack = aligned_zeroed(q.wpack_bytes);
  uint8_t* out = q.wpack.get();
  for (int64_t n0 = 0; n0 < kpad; n0 += qk::kBlockVnni) {
    const int64_t nb16 = std::min<int64_t>(qk::kBlockVnni, kpad - n0) / 16;
    uint8_t* blk = out + (n0 / qk::kBlockVnni) * taps * groups * 128;
    for (int64_t tp = 0; tp < taps; ++tp)
      for (int64_t gi = 0; gi < groups; ++gi) {
        uint8_t* base = blk + (tp * groups + gi) * nb16 * 32;
        for (int64_t j = 0; j < nb16; ++j) {
          uint64_t nz = 0, neg = 0;
          for (int64_t o = 0; o < 16; ++o) {
            const int64_t k = n0 + 16 * j + o;
            if (k >= g.K || 4 * gi >= g.C) continue;
            base[16 * nb16 + 16 * j + o] = lv[(k * G + 4 * gi / group) * taps + tp];
            for (int64_t i = 0; i < 4; ++i) {
              const int64_t c = 4 * gi + i;
              if (c >= g.C) continue;
              const int8_t v = t[(k * g.C + c) * taps + tp];
              nz |= uint64_t(v != 0) << (4 * o + i);
              neg |= uint64_t(v < 0) << (4 * o + i);
            }
          }
          std::memcpy(base + 8 * j, &nz, 8);
          std::memcpy(base + 8 * nb16 + 8 * j, &neg, 8);
        }
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

namespace {

// make_qconv and make_qconv_ternary: w is the int8 weights either way; tern (t, levels, group)
// is set when the weights may stay resident as ternary masks + levels.
struct TernaryInput {
  const int8_t* t;
  const uint8_t* levels;
  int64_t group;
};

std::shared_ptr<const QConvKernel> make_impl(Isa isa, const QConvParams& p, const int8_t* w,
                                            const float* mult, const float* bias,
                                            const TernaryInput* tern) {
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
  // Dense (avx512vnni, a u8 input of 1 to 3 channels in 4-byte pixels: the first conv):
  // qconv_run first copies the input into the scratch as a padded image (Hp x Wp pixels, the
  // padding in_zero) of C bytes per pixel, so that a kernel row is KW * C contiguous bytes;
  // packed as KW * C rounded up to 4 (the bytes past it, the next pixels', meet zero weights)
  // that is 6 groups instead of 7 for 7x7, C = 3 (88 % of the vpdpbusd lanes useful instead of
  // 75 %), and with no padding left nothing is assembled: one pointer per output pixel, kernel
  // row r at + r * DH * Wp * C (Task::tap_stride).
  q->dense = isa == Isa::Avx512Vnni && !q->direct && p.in_type == QType::U8 && g.C < 4 &&
             g.DW == 1 && round_up(int64_t(g.KW) * g.C, 4) < int64_t(g.KW) * q->cs;
  if (q->dense) {
    q->fused = false;
    q->convert = true;
    q->Hp = g.H + g.PT + g.PB, q->Wp = g.W + g.PL + g.PR;
    q->dense_depth = round_up(int64_t(g.KW) * g.C, 4);
  }
  for (int ow = 0; ow < q->OW; ++ow) {
    const int iw0 = ow * g.SW - g.PL;
    q->edge_cols += iw0 < 0 || iw0 + g.KW > g.W;
  }
  const int64_t kpad = round_up(g.K, avx2 ? 8 : 16);
  q->resident = tern && isa == Isa::Avx512Vnni && !q->dense && tern->group % 4 == 0;
  if (avx2)
    pack_avx2(*q, w, kpad);
  else if (q->resident)
    pack_resident(*q, tern->t, tern->levels, tern->group, kpad);
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

  if (!q->direct && !q->fused && !q->dense) {
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
  bool narrower = false;  // an integer output clamped to less than its type's range
  if (p.out_type != QType::F32) {
    const float tmin = p.out_type == QType::S8 ? -128.f : 0.f;
    const float tmax = p.out_type == QType::S8 ? 127.f : p.out_type == QType::U4 ? 15.f : 255.f;
    lo = std::min(std::max(lo, tmin), tmax);
    hi = std::min(std::max(hi, tmin), tmax);
    narrower = lo != tmin || hi != tmax;
  }

  // The fast epilogue (qk::Layer::fast_epi) for a u8 / s8 output when the clamp bounds (inside
  // the type's range already) are integers and the float value provably stays well inside
  // int32: |acc| <= sum |w| * max|x - in_zero|, |y| <= |acc| * |mult| + |bias| + max|res| *
  // |res_scale| (plus rounding: a 2^-20 margin).
  int32_t fast_epi = qk::kFastEpiNone;
  if ((p.out_type == QType::U8 || p.out_type == QType::S8) && std::floor(lo) == lo &&
      std::floor(hi) == hi) {
    const double xmax = std::max(p.in_zero, (p.in_type == QType::U4 ? 15 : 255) - p.in_zero);
    const double rmax = !p.has_residual ? 0 : p.res_type == QType::S8 ? 128 : 255;
    double worst = 0;
    for (int64_t k = 0; k < g.K; ++k) {
      double wsum = 0;
      for (int64_t i = 0; i < depth; ++i) wsum += std::abs(int(w[k * depth + i]));
      worst = std::max(worst, wsum * xmax * std::abs(double(mult[k])) + std::abs(double(bias[k])) +
                                  rmax * std::abs(double(p.res_scale)));
    }
    if (worst * (1 + 1.0 / (1 << 20)) + 1 < double(1 << 30))
      fast_epi = !p.has_residual               ? qk::kFastEpiNoRes
                 : p.res_type == QType::U8     ? qk::kFastEpiResU8
                 : p.res_type == QType::S8     ? qk::kFastEpiResS8
                                               : qk::kFastEpiNone;
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
  L.fast_epi = fast_epi;
  L.fast_clamp = narrower;
  L.prefetch = 1;
  L.resident = q->resident;
  static std::atomic<uint64_t> next_uid{1};
  L.uid = next_uid.fetch_add(1, std::memory_order_relaxed);
  q->run_layer = L;
  if (q->dense) {
    q->run_layer.taps = g.KH;
    q->run_layer.groups = int32_t(q->dense_depth / 4);
  } else if (q->fused) {
    q->run_layer.taps = g.KH;
    q->run_layer.groups = g.KW * L.groups;
  }
  // Pixels per micro-kernel call when the task builds rows: its row pointers (8 bytes per
  // pixel and tap, fused: per kernel row, dense: per pixel) about 16 KB.
  const int64_t per_px = 8 * (q->dense ? 1 : q->fused ? g.KH : q->taps);
  q->chunk = std::max<int64_t>(1, (16 << 10) / per_px / qk::kTileRows) * qk::kTileRows;
  q->ukernel = isa == Isa::Avx512Vnni ? qk::fgq_qconv_ukernel_avx512vnni
               : avx2                 ? qk::fgq_qconv_ukernel_avx2
                                      : qk::fgq_qconv_ukernel_scalar;
  return q;
}

}  // namespace

std::shared_ptr<const QConvKernel> make_qconv(Isa isa, const QConvParams& p, const int8_t* w,
                                             const float* mult, const float* bias) {
  return make_impl(isa, p, w, mult, bias, nullptr);
}

std::shared_ptr<const QConvKernel> make_qconv_ternary(Isa isa, const QConvParams& p,
                                                     const QConvTernaryWeights& tw,
                                                     const float* mult, const float* bias,
                                                     bool resident_codes) {
  check_geometry(p.g);
  if (!tw.codes || !tw.levels) fail("qconv", "null ternary codes or levels");
  if (tw.group < 1) fail("qconv", "ternary group " + std::to_string(tw.group) + " must be >= 1");
  const QConvGeometry& g = p.g;
  const int64_t taps = int64_t(g.KH) * g.KW, n = int64_t(g.K) * g.C * taps;
  const int64_t G = ceil_div(g.C, tw.group);
  std::vector<int8_t> t(static_cast<size_t>(n)), w(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int code = (tw.codes[i / 4] >> (2 * (i % 4))) & 3;
    if (code == 3) fail("qconv", "ternary code 3 (invalid) at weight " + std::to_string(i));
    t[size_t(i)] = int8_t(code == 1 ? 1 : code == 2 ? -1 : 0);
  }
  for (int64_t i = 0; i < int64_t(g.K) * G * taps; ++i)
    if (tw.levels[i] > 127)
      fail("qconv", "ternary level " + std::to_string(tw.levels[i]) + " exceeds 127");
  for (int64_t k = 0; k < g.K; ++k)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t q = 0; q < taps; ++q) {
        const int64_t i = (k * g.C + c) * taps + q;
        w[size_t(i)] = int8_t(t[size_t(i)] * int(tw.levels[(k * G + c / tw.group) * taps + q]));
      }
  const TernaryInput tern{t.data(), tw.levels, tw.group};
  return make_impl(isa, p, w.data(), mult, bias, resident_codes ? &tern : nullptr);
}

bool qconv_resident_codes(const QConvKernel& k) { return k.resident; }

size_t qconv_scratch_bytes(const QConvKernel& k, int batch) {
  if (!k.convert || batch < 1) return 0;
  if (k.dense)  // + 64: a kernel row reads up to 3 bytes past the last pixel
    return size_t(round_up(int64_t(batch) * k.Hp * k.Wp * k.p.g.C + 64, 64));
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

// Tasks of (pixel range x output-channel range): per thread as many as keep 32 M multiply-adds
// in a task, between 2 and 4 (a task has a cost of its own: its first block's weights, its first
// tiles' input; ResNet-50 at batch 1, whose layers have 13-116 M, ran 2 % faster with 2 per
// thread than with 4 and 4 % slower with 8), and a task's input in about 256 KB. Splitting
// pixels makes every task read all the weights of its channels, splitting channels makes every
// task read all its input: when the weights are the bigger of the two (deep layers, small maps)
// channels are split first.
Plan plan_tasks(const QConvKernel& k, int batch, int threads) {
  const QConvGeometry& g = k.p.g;
  const int64_t M = int64_t(batch) * k.OH * k.OW;
  const int64_t m_tiles = ceil_div(M, qk::kTileRows);
  const int64_t n_blocks = ceil_div(k.layer.kpad, k.block);
  const int64_t macs = qconv_macs(k, batch);
  const int64_t want =
      threads > 1 ? threads * std::clamp<int64_t>(macs / (int64_t(threads) << 25), 2, 4) : 1;
  const int64_t in_bytes = M * k.row_bytes * g.SH * g.SW;
  const int64_t w_bytes = int64_t(k.wpack_bytes) * (k.resident ? 2 : 1);  // as int8
  int64_t mt = std::clamp<int64_t>(ceil_div(in_bytes, 256 << 10), 1, m_tiles);
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

// Threads a layer runs on: the arena's, but one for a layer too small to pay for waking a
// worker (about 2 us: < 1 M multiply-adds, a few us of work, and < 256 KB of packed weights to
// stream).
int run_threads(const QConvKernel& k, int batch) {
  if (qconv_macs(k, batch) < (1 << 20) && k.wpack_bytes < (256 << 10)) return 1;
  return parallel_threads();
}

// parallel_tasks (a team, or TBB's simple partitioner halving the range) gives thread j of T
// about tasks [j * tasks / T, (j + 1) * tasks / T): part j. -1 unless `task` is the last of a
// part.
int part_ending_at(int64_t task, int64_t tasks, int threads) {
  for (int j = 0; j < threads; ++j)
    if (task + 1 == (j + 1) * tasks / threads) return j;
  return -1;
}

}  // namespace

std::pair<const void*, size_t> qconv_first_weights(const QConvKernel& k, int batch, int part,
                                                   int parts) {
  if (k.isa != Isa::Avx512Vnni || batch < 1 || part < 0 || part >= parts) return {nullptr, 0};
  const int threads = run_threads(k, batch);
  if (part >= threads) return {nullptr, 0};
  const Plan pl = plan_tasks(k, batch, threads);
  const int64_t first = int64_t(part) * pl.m_tasks * pl.n_tasks / threads;
  const int64_t block = first / pl.m_tasks * pl.n_chunk / k.block;
  const int64_t block_bytes =
      int64_t(k.run_layer.taps) * k.run_layer.groups * (k.resident ? 128 : 256);
  const int64_t offset = block * block_bytes;
  const int64_t bytes = std::min<int64_t>(block_bytes, int64_t(k.wpack_bytes) - offset);
  if (bytes <= 0) return {nullptr, 0};
  return {k.wpack.get() + offset, size_t(bytes)};
}

namespace {
std::atomic<QConvTimeline*> g_timeline{nullptr};

// Marks `begin` on the timeline (if any) now and its end when the scope exits, however it exits.
class TimelineSpan {
 public:
  TimelineSpan(QConvTimeline* t, QConvTimeline::Event begin) : t_(t), begin_(begin) {
    if (t_) t_->mark(begin_);
  }
  ~TimelineSpan() {
    if (t_) t_->mark(QConvTimeline::Event(begin_ + 1));
  }
  TimelineSpan(const TimelineSpan&) = delete;
  TimelineSpan& operator=(const TimelineSpan&) = delete;

 private:
  QConvTimeline* t_;
  QConvTimeline::Event begin_;
};
}  // namespace

void qconv_set_timeline(QConvTimeline* timeline) { g_timeline.store(timeline); }

void qconv_run(const QConvKernel& k, int batch, const uint8_t* x, const void* residual, void* y,
               void* scratch, const QConvKernel* next) {
  QConvTimeline* const timeline = g_timeline.load(std::memory_order_relaxed);
  const TimelineSpan layer_span(timeline, QConvTimeline::kLayerBegin);
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
  if (k.dense) {
    // The padded dense image: rows of Wp pixels of C bytes, padding rows and columns in_zero.
    auto* dst = static_cast<uint8_t*>(scratch);
    const QConvGeometry& g = p.g;
    const int64_t C = g.C, prow = int64_t(k.Wp) * C, cs = k.cs;
    const int64_t rows = int64_t(batch) * k.Hp;
    const uint8_t z = uint8_t(p.in_zero);
    parallel_chunks(rows, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        const int64_t b = i / k.Hp, ih = i % k.Hp - g.PT;
        uint8_t* d = dst + i * prow;
        if (ih < 0 || ih >= g.H) {
          std::memset(d, z, size_t(prow));
          continue;
        }
        std::memset(d, z, size_t(g.PL * C));
        qk::fgq_qconv_dense_row_avx512vnni(x + (b * hw + ih * g.W) * cs, g.W,
                                           int32_t(C), d + g.PL * C);
        std::memset(d + (g.PL + g.W) * C, z, size_t(g.PR * C));
      }
    });
    std::memset(dst + rows * prow, z, 64);
    xin = dst;
  } else if (k.convert) {
    auto* dst = static_cast<uint8_t*>(scratch);
    const int64_t pixels = batch * hw;
    parallel_chunks(pixels, 256, [&](int64_t p0, int64_t p1) { convert_input(k, x, dst, p0, p1); });
    xin = dst;
  }

  const int threads = run_threads(k, batch);
  const Plan pl = plan_tasks(k, batch, threads);
  const int64_t tasks = pl.m_tasks * pl.n_tasks;
  const int64_t img_bytes = hw * k.row_bytes;
  const int64_t ohw = int64_t(k.OH) * k.OW;
  // Tasks in channel-block-major order: a thread's consecutive tasks (parallel_tasks hands them
  // out in ranges) mostly share their weights, which stay expanded (resident) and cached.
  auto run_task = [&](int64_t task) {
    const TimelineSpan task_span(timeline, QConvTimeline::kTaskBegin);
    const int64_t ni = task / pl.m_tasks, mi = task % pl.m_tasks;
    qk::Task t{};
    t.m0 = mi * pl.m_chunk;
    t.m1 = std::min(M, t.m0 + pl.m_chunk);
    t.n0 = int32_t(ni * pl.n_chunk);
    t.n1 = int32_t(std::min<int64_t>(k.layer.kpad, t.n0 + pl.n_chunk));
    t.x = xin;
    t.x_row_bytes = k.row_bytes;
    t.res = residual;
    t.y = y;
    t.prefetch_past = mi == pl.m_tasks - 1;
    if (next) {  // the thread's last task of this layer: it may prefetch its start of the next
      const int part = part_ending_at(task, tasks, threads);
      if (part >= 0) {
        const auto [w, bytes] = qconv_first_weights(*next, batch, part, threads);
        t.next_w = w, t.next_w_bytes = int64_t(bytes);
        if (w) t.prefetch_past = 0;
      }
    }
    if (k.resident) {  // a block of expanded weights, kept by the thread
      thread_local Buffer wbuf;
      thread_local size_t wbuf_bytes = 0;
      thread_local uint64_t wbuf_tag = 0;
      const size_t need = size_t(k.run_layer.taps) * k.run_layer.groups * 256;
      if (wbuf_bytes < need) wbuf = aligned_zeroed(need), wbuf_bytes = need, wbuf_tag = 0;
      t.wbuf = wbuf.get();
      t.wbuf_tag = &wbuf_tag;
    }
    if (k.direct) {
      k.ukernel(&k.run_layer, &t);
      return;
    }
    // Rows (and dense patches) are built a chunk of pixels at a time, in buffers kept by the
    // thread: no allocation once they have grown to a chunk.
    thread_local std::vector<const uint8_t*> rows;
    thread_local std::vector<uint8_t> edge;
    const QConvGeometry& g = p.g;
    const int KH = g.KH, KW = g.KW, taps = k.taps;
    const int64_t rb = k.row_bytes, len = KW * rb;
    const int64_t chunk = std::min(k.chunk, t.m1 - t.m0);
    const size_t row_ptrs = size_t(chunk * (k.dense ? 1 : k.fused ? KH : taps));
    if (rows.size() < row_ptrs) rows.resize(row_ptrs);
    if (k.fused) {
      // Kernel rows sticking out left or right: at most KH per border pixel, k.edge_cols
      // border pixels per output row.
      const size_t edge_bytes =
          size_t((chunk / k.OW + 2) * std::min<int64_t>(k.edge_cols, chunk) * KH * len);
      if (edge.size() < edge_bytes) edge.resize(edge_bytes);
    }
    const uint8_t* zero = k.zero_row.get();
    // Output pixel m0 as (image, row, column); advanced pixel by pixel (no divisions).
    int64_t img = t.m0 / ohw;
    int oh = int((t.m0 - img * ohw) / k.OW), ow = int(t.m0 - img * ohw - int64_t(oh) * k.OW);
    const auto next = [&] {
      if (++ow == k.OW) {
        ow = 0;
        if (++oh == k.OH) oh = 0, ++img;
      }
    };
    for (int64_t c0 = t.m0; c0 < t.m1; c0 += chunk) {
      const int64_t c1 = std::min(t.m1, c0 + chunk);
      const uint8_t** r = rows.data();
      if (k.dense) {  // a pointer per pixel, SW * C bytes apart along an output row
        const int64_t C = g.C, dimg = int64_t(k.Hp) * k.Wp * C, step = int64_t(g.SW) * C;
        for (int64_t m = c0; m < c1;) {
          const uint8_t* q =
              xin + img * dimg + (int64_t(oh) * g.SH * k.Wp + int64_t(ow) * g.SW) * C;
          const int64_t n = std::min<int64_t>(c1 - m, k.OW - ow);
          for (int64_t i = 0; i < n; ++i, q += step) *r++ = q;
          m += n, ow += int(n) - 1;
          next();
        }
      } else if (k.fused) {
        uint8_t* e = edge.data();
        const int SH = g.SH, SW = g.SW, PT = g.PT, PL = g.PL, DH = g.DH, H = g.H, W = g.W;
        const int64_t row_step = int64_t(DH) * W * rb;  // from kernel row i to i + 1
        for (int64_t m = c0; m < c1; ++m, next()) {
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
      } else {
        for (int64_t m = c0; m < c1; ++m, next()) {
          const uint8_t* base = xin + img * img_bytes;
          const int32_t* o = k.offs.data() + (int64_t(oh) * k.OW + ow) * taps;
          for (int i = 0; i < taps; ++i) *r++ = o[i] < 0 ? zero : base + o[i] * rb;
        }
      }
      qk::Task tc = t;
      tc.m0 = c0, tc.m1 = c1;
      tc.rows = rows.data();
      if (k.dense) tc.tap_stride = int64_t(g.DH) * k.Wp * g.C;
      k.ukernel(&k.run_layer, &tc);
    }
  };
  if (tasks == 1 || threads == 1) {
    for (int64_t i = 0; i < tasks; ++i) run_task(i);
    return;
  }
  parallel_tasks(tasks, run_task);
}

}  // namespace fgq::ops
