#pragma once
// Quantized 2-D convolution, also serving fully-connected layers (a [N, C] input is a 1x1 image):
// u8 (or packed u4) NHWC activations x int8 weights, int32 accumulation, and a per-output-channel
// float epilogue (multiplier, bias, optional residual, clamp) applied before a saturating store.
// One family, three paths: the scalar reference (qconv_reference.cpp) is the specification; the
// AVX2 and AVX-512 VNNI paths are bit-exact with it on every shape.
//
// What one output element is (k = output channel, acc in int32):
//   acc = sum over kernel taps (r, s) and channels c < C of (x[c] - in_zero) * w[k][c][r][s]
//         where a tap in the padding reads x = in_zero (it contributes 0)
//   y   = fma(float(acc), mult[k], bias[k])                      (float, one rounding)
//   y   = fma(float(res[k]), res_scale, y)                         if has_residual; res is the
//         stored integer (u8 0..255, s8 -128..127, u4 0..15), its zero point is 0
//   y   = max(y, clamp_lo); y = min(y, clamp_hi)                   (max(a, b) = a > b ? a : b)
//   out = y                                                        F32 output
//         nearbyint(y) (ties to even) as the output integer       U8 / S8 / U4 output
// float(acc) rounds to nearest like the C++ conversion; ReLU is clamp_lo = 0. The caller keeps
// |acc| < 2^31 (255 * 127 * 4608 fits) and mult, bias, res_scale finite.
// An integer output's padding channels (K .. qchannel_stride - 1 of every pixel) are written as
// 0, the zero point of every tensor a qconv produces (an output offset is folded into bias).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "ops/cpu_features.h"
#include "ops/qtypes.h"

namespace fgq::ops {

struct QConvGeometry {
  int C = 0, H = 1, W = 1;             // input channels (logical, unpadded) and size
  int K = 0, KH = 1, KW = 1;           // output channels, kernel
  int SH = 1, SW = 1;                  // stride
  int PT = 0, PL = 0, PB = 0, PR = 0;  // padding top/left/bottom/right
  int DH = 1, DW = 1;                  // dilation
  int OH() const { return (H + PT + PB - DH * (KH - 1) - 1) / SH + 1; }
  int OW() const { return (W + PL + PR - DW * (KW - 1) - 1) / SW + 1; }
};

struct QConvParams {
  QConvGeometry g;
  QType in_type = QType::U8;    // U8 or U4
  int in_zero = 0;              // 0..255 (u4: 0..15); 128 for the signed image stored as u8 + 128
  bool has_residual = false;
  QType res_type = QType::U8;   // U8, S8 or U4, stored like the output (same C, NHWC)
  float res_scale = 0;
  QType out_type = QType::U8;   // U8, S8, U4, or F32 (F32 is stored NCHW like every float tensor)
  float clamp_lo = 0, clamp_hi = 255;
};

// Packed weights and epilogue constants for one layer on one ISA, ready to run. Immutable once
// made: one object serves any number of threads and sessions.
class QConvKernel;

// Checks the parameters (fgq::Error on anything out of contract: sizes < 1, in_zero out of
// range, unsupported type combinations, non-finite constants) and packs.
// w: int8 [K][C][KH][KW] (ONNX order); mult, bias: K floats each.
std::shared_ptr<const QConvKernel> make_qconv(Isa isa, const QConvParams& p, const int8_t* w,
                                             const float* mult, const float* bias);

// FGQ ternary weights as the integer pipeline stores them (graph/ternary_codes.h): weight
// w[k][c][r][s] = levels[k][c / group][r][s] * t[k][c][r][s] with t in {-1, 0, +1}.
struct QConvTernaryWeights {
  const uint8_t* codes = nullptr;   // T2 codes of t, [K][C][KH][KW] order, 4 per byte (the first
                                    // in the low bits): 0 -> 0, 1 -> +1, 2 -> -1 (3 is invalid)
  const uint8_t* levels = nullptr;  // [K][ceil(C / group)][KH][KW], each 0..127
  int group = 0;                    // input channels per level, >= 1
};

// make_qconv for w = levels * t (the same results, bit for bit). With resident_codes the kernel
// keeps the weights as ternary masks and levels, 2 bits per weight + a byte per 4 weights =
// half the bytes of packed int8, and expands them into int8 VNNI vectors at run time (two
// AVX-512BW instructions per 64 weights, a block of 64 output channels at a time into a
// per-thread buffer that the thread's next task on that block reuses, in the tiles themselves
// for 1 or 2 tiles); that applies on the avx512vnni path
// when group is a multiple of 4 (a VNNI lane's 4 input channels then share one level), except
// for the first-conv "dense" layout; elsewhere the weights are packed as int8 like make_qconv
// (qconv_resident_codes tells which). Throws fgq::Error like make_qconv, and on a code 3, a
// level > 127 or a group < 1.
std::shared_ptr<const QConvKernel> make_qconv_ternary(Isa isa, const QConvParams& p,
                                                     const QConvTernaryWeights& w,
                                                     const float* mult, const float* bias,
                                                     bool resident_codes);
bool qconv_resident_codes(const QConvKernel& k);  // weights kept as ternary masks + levels

// Scratch bytes qconv_run needs for `batch` images: 0 on the scalar and avx512vnni paths with a
// u8 input (except the avx512vnni "dense" first-conv layout, C < 4: a padded copy of the input
// with C bytes per pixel); a u4 input is unpacked to u8 there first; the avx2 path always
// widens the input to int16 there (batch * H * W * 2 * qchannel_stride(U8, C) bytes). Scratch
// sized for a batch serves every smaller batch.
size_t qconv_scratch_bytes(const QConvKernel& k, int batch);

// Runs `batch` images: x, residual and y point at image 0, images follow each other densely
// (H*W*qpixel_bytes(type, C) bytes for x, OH*OW*qpixel_bytes(type, K) for residual and an
// integer y; a F32 y is [batch][K][OH][OW] floats).
// Parallel over tiles with ops::parallel_tasks (the caller's spinning team, else its TBB arena). scratch: qconv_scratch_bytes(batch)
// bytes, 64-byte aligned (may be null when that is 0). residual must be null iff !has_residual.
// y may be the residual itself (in place) when res_type == out_type; never the input.
// Throws fgq::Error on a null pointer, batch < 1, or a residual given to a layer without one
// (or none to a layer with one).
// next (optional): the qconv the caller runs after this one; each thread then prefetches the
// first weights it will likely need there while it finishes its share of this layer (a hint:
// results do not depend on it).
void qconv_run(const QConvKernel& k, int batch, const uint8_t* x, const void* residual, void* y,
               void* scratch, const QConvKernel* next = nullptr);

// Measurement hook (fgq-bench --timeline): while one is set, qconv_run marks kLayerBegin and
// kLayerEnd on the calling thread when a layer starts and ends, and kTaskBegin and kTaskEnd
// around each of its tasks on the thread that runs it. Null (the default): off. Results do not
// depend on it. Set it only while no qconv_run is running.
class QConvTimeline {
 public:
  enum Event : int { kLayerBegin, kLayerEnd, kTaskBegin, kTaskEnd };  // an end is its begin + 1
  virtual ~QConvTimeline() = default;
  virtual void mark(Event e) = 0;
};
void qconv_set_timeline(QConvTimeline* timeline);

// The packed weights a thread starts layer k with when it ran part `part` of the previous
// layer's `parts` (parallel_tasks hands thread j about the j-th of `parts` equal parts of a
// layer's tasks, and of the next layer's): what qconv_run(..., next = &k) prefetches. Null, 0 when unknown
// (not the avx512vnni path, part outside the threads k runs on).
std::pair<const void*, size_t> qconv_first_weights(const QConvKernel& k, int batch, int part,
                                                   int parts);

const QConvParams& qconv_params(const QConvKernel& k);
Isa qconv_isa(const QConvKernel& k);
int64_t qconv_macs(const QConvKernel& k, int batch);   // batch * OH * OW * K * C * KH * KW
size_t qconv_packed_bytes(const QConvKernel& k);       // resident bytes of packed weights

// The specification: plain loops, single thread, no packing. Same contract as qconv_run; w,
// mult and bias as for make_qconv.
void qconv_reference(const QConvParams& p, int batch, const uint8_t* x, const int8_t* w,
                     const float* mult, const float* bias, const void* residual, void* y);

}  // namespace fgq::ops
