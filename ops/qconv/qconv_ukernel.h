#pragma once
// Private to ops/qconv: the plain-data interface between the driver (qconv.cpp: validation,
// packing, indirection, tiling, threads) and the per-ISA micro-kernels (qconv_scalar.cpp,
// qconv_avx2.cpp, qconv_avx512vnni.cpp). Those files are compiled with different -march flags,
// so this header holds only plain structs and function declarations: nothing inline, no
// templates, no standard-library types (the linker would keep one copy of such code, possibly
// the AVX-512 one).
//
// What a micro-kernel computes (the arithmetic of ops/qconv/qconv.h, one task):
//   for output channel blocks n in [n0, n1) (blocks of kBlockVnni / kBlockAvx2 channels) and
//   output pixels m in [m0, m1) (over the whole batch, tiles may span images):
//     acc = comp[k] + sum over taps t and 4-byte groups g < groups of
//             dot(4 bytes at row(m, t) + 4 g, packed weights)
//     then the float epilogue, stored with masks (channels past out_cstride untouched, channels
//     in [K, out_cstride) written as 0; F32 output NCHW, only k < K).
//
// Input rows. A "row" is one input pixel's channels, groups * 4 bytes:
//   scalar, avx512vnni: u8, Cs = qchannel_stride(U8, C) channels (a u4 input is unpacked to u8
//                       first); the input zero point is folded into comp = -in_zero * sum(w).
//   avx2:               int16 (x - in_zero), Cs channels as Cs/2 pairs of int16; comp is 0.
// A tap in the padding points at a zero row (in_zero bytes, resp. int16 zeros). The driver may
// also pass "fused" rows: the KW taps of one kernel row as one row of KW * groups groups (taps
// = KH), which the [tap][group] weight order makes the same computation.
//
// Packed weights (int8 for scalar/avx512vnni, int16 for avx2), output channels padded with zero
// weights to kpad, input channels to Cs:
//   scalar, avx512vnni: blocks of 64 output channels (the last one 16, 32 or 48 wide), each
//     [tap][group][nb16][16 oc][4 ic] int8: one 64-byte vector = 16 oc x 4 ic (OIhw4i16o4i-like).
//     Block b starts at byte b * taps * groups * 256.
//   avx512vnni, Layer::resident (ternary weights kept as such, see make_qconv_ternary): the same
//     blocks and order, each 64-byte vector stored as 32 bytes; per (tap, group) with nb16
//     vectors: nb16 x 8 bytes "nonzero" masks, nb16 x 8 bytes "negative" masks (bit b = byte
//     b of the vector = oc b / 4, ic b % 4), nb16 x 16 level bytes (byte o = the level of oc o,
//     shared by its 4 input channels). Weight byte b = nonzero ? (negative ? -1 : 1) * level :
//     0. Block b starts at byte b * taps * groups * 128.
//   avx2: blocks of 16 output channels (the last one 8 or 16 wide), each
//     [tap][group][nb8][8 oc][2 ic] int16: one 32-byte vector = 8 oc x 2 ic.
//     Block b starts at int16 element b * taps * groups * 32.
#include <cstddef>
#include <cstdint>

namespace fgq::ops::qk {

// Output and residual types, same values as fgq::ops::QType.
enum : int32_t { kU8 = 0, kS8 = 1, kU4 = 2, kF32 = 3 };

enum : int32_t { kFastEpiNone = 0, kFastEpiNoRes = 1, kFastEpiResU8 = 2, kFastEpiResS8 = 3 };

constexpr int kBlockVnni = 64;  // output channels per packed block: scalar, avx512vnni
constexpr int kBlockAvx2 = 16;  // avx2
constexpr int kTileRows = 6;    // output pixels per register tile (every path)

struct Layer {
  const void* w;         // packed weights (layout above)
  const int32_t* comp;   // [kpad] int32 added to acc (0 past K); a micro-kernel may start the
                         // accumulators at comp instead of adding it at the end (same int32)
  const float* mult;     // [kpad] (0 past K)
  const float* bias;     // [kpad] (0 past K)
  int32_t taps;          // KH * KW
  int32_t groups;        // 4-byte groups per input row
  int32_t K;             // logical output channels
  int32_t kpad;          // packed output channels (multiple of 16 resp. 8)
  int32_t out_type;      // kU8 | kS8 | kU4 | kF32
  int32_t out_cstride;   // integer output: qchannel_stride(out_type, K); F32: K
  int32_t has_res;       // 0 | 1
  int32_t res_type;      // kU8 | kS8 | kU4
  int32_t res_cstride;   // qchannel_stride(res_type, K)
  int32_t has_comp;      // 0: comp is all zeros (in_zero 0, and always on avx2), may be skipped
  int64_t out_pixel_bytes;  // integer output: qpixel_bytes(out_type, K)
  int64_t res_pixel_bytes;  // qpixel_bytes(res_type, K)
  int64_t ohw;              // OH * OW (F32 output: image i, channel k at y + (i*K + k)*ohw)
  float res_scale;
  float lo, hi;  // clamp; for an integer output already intersected with the type's range
                 // (so that cvt + narrowing never saturates; equal to clamp-then-saturate)
  // kFastEpi*: u8 / s8 output whose clamp bounds are whole numbers and whose epilogue value
  // provably stays inside int32 (make_qconv bounds |acc * mult + bias + res * res_scale|), so a
  // micro-kernel may drop the float clamp, round first and clamp the integers: the saturating
  // narrowing (int32 -> int16 -> 8 bit) clamps to the type's range, and a clamp narrower than
  // it (fast_clamp: [lo, hi], e.g. the symmetric s8 [-127, 127]) is then applied to the bytes.
  // Rounding is monotonic and the bounds are integers: the same bytes.
  int32_t fast_epi;  // kFastEpiNone | kFastEpiNoRes | kFastEpiResU8 | kFastEpiResS8
  int32_t fast_clamp;  // 1: [lo, hi] is narrower than the output type's range
  int32_t prefetch;  // 1: software-prefetch the next block's weights (avx512vnni)
  int32_t resident;  // avx512vnni only: 1 = w holds ternary masks + levels (layout above),
                     // expanded into int8 a block at a time (into Task::wbuf) or by the tiles
  uint64_t uid;      // unique among all layers ever made (> 0): names expanded blocks
};

struct Task {
  int64_t m0, m1;             // output pixels [m0, m1) over the batch
  int32_t n0, n1;             // output channels [n0, n1): n0 a block start, n1 <= kpad
  // Input rows, row(m, t) = rows[(m - m0) * taps + t]; or, when rows is null (1x1, stride 1,
  // no padding: a plain GEMM; or an im2col buffer with taps = 1), row(m, 0) = x + (m - x_m0) *
  // x_row_bytes.
  const uint8_t* const* rows;
  // avx512vnni only, 0 elsewhere: when rows is set and tap_stride != 0, one pointer per pixel
  // and row(m, t) = rows[m - m0] + t * tap_stride (the dense mode's padded image).
  int64_t tap_stride;
  const uint8_t* x;
  int64_t x_row_bytes;
  int64_t x_m0;
  const void* res;            // image 0 of the residual (null without)
  void* wbuf;                 // Layer::resident: 64-byte aligned, taps * groups * 256 bytes
  // Layer::resident: what wbuf holds, kept by the thread across tasks and layers: uid << 24 |
  // block index (0: nothing). A task finding its block there skips expanding it again.
  uint64_t* wbuf_tag;
  int32_t prefetch_past;      // 1: the thread's next task starts past n1 (prefetch the next
                              // block after the task's last one too); 0: it runs the same
                              // blocks on other pixels
  // The weights the thread is expected to start the next layer with (null: none known),
  // prefetched while the task's last block runs when nothing of this layer is left to prefetch.
  const void* next_w;
  int64_t next_w_bytes;
  void* y;                    // image 0 of the output
};

// One entry point per ISA (each defined in its own file, compiled for that ISA only).
extern "C" void fgq_qconv_ukernel_scalar(const Layer* layer, const Task* task);
extern "C" void fgq_qconv_ukernel_avx2(const Layer* layer, const Task* task);
extern "C" void fgq_qconv_ukernel_avx512vnni(const Layer* layer, const Task* task);

// Dense rows (avx512vnni only; the driver's "dense" mode): `pixels` pixels of 4 bytes at src,
// the first c < 4 of each real, become pixels * c consecutive bytes at dst (nothing written
// past them).
extern "C" void fgq_qconv_dense_row_avx512vnni(const uint8_t* src, int64_t pixels, int32_t c,
                                               uint8_t* dst);

}  // namespace fgq::ops::qk
