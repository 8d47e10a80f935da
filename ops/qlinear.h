#pragma once
// Conversions at the edges of the integer pipeline, and u4 packing (storage: ops/qtypes.h).
#include <cstdint>

#include "ops/qtypes.h"

namespace fgq::ops {

// Float NCHW [N, C, H, W] -> quantized NHWC (U8, S8 or U4):
//   q = min(max(nearbyint(x / scale) + zero, qmin), qmax)    (x / scale: IEEE division)
// with the same float operations as FakeQuant (ops::fake_quant_f32), so both agree to the bit.
// A NaN input stores qmin (max(NaN, lo) = lo as in qconv.h).
// Padding channels get `zero`. Parallel over images and pixels.
void quantize_nchw(const float* x, int N, int C, int H, int W, float scale, int zero, int qmin,
                   int qmax, QType out, void* y);

// Quantized NHWC -> float NCHW: y = scale * (q - zero).
void dequantize_nhwc(const void* x, QType in, int N, int C, int H, int W, float scale, int zero,
                     float* y);

// u4 <-> u8 for `pixels` pixels of C channels (strides per qchannel_stride of each type; the
// u8 side's padding channels are written as the u4 side's, i.e. the zero point).
void unpack_u4(const uint8_t* x, int64_t pixels, int C, uint8_t* y);
void pack_u4(const uint8_t* x, int64_t pixels, int C, uint8_t* y);  // x values must be <= 15
// pack_u4 reads only the C real channels of each u8 pixel and writes the u4 padding nibbles as
// `zero` (0..15); the 4-argument form uses zero = 0, the zero point of every u4 tensor the
// integer kernels produce. Values are masked to their low 4 bits.
void pack_u4(const uint8_t* x, int64_t pixels, int C, uint8_t* y, int zero);

}  // namespace fgq::ops
