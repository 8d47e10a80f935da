#pragma once
// Pooling on quantized NHWC activations (storage: ops/qtypes.h). Both keep the integer domain:
// max pooling is exact on the stored integers (same scale in and out), global average pooling
// sums in int32 and requantizes once.
#include <cstdint>

#include "ops/pool.h"
#include "ops/qtypes.h"

namespace fgq::ops {

// Max pooling of `batch` NHWC images of type U8 or U4 (same type out). Window semantics as
// maxpool2d_f32 (ceil_mode; padding never wins: it is ignored, not read as a value). Channel
// padding is pooled like the real channels, so it keeps the input's zero point. A window lying
// entirely in the spatial padding (FP32 would give -inf there) is rejected with fgq::Error.
void maxpool2d_q(const Pool2dShape& s, int batch, QType type, const void* x, void* y);

// Global average pooling of `batch` NHWC images [H*W pixels, C channels], U8 or U4 in, U8 or U4
// out (zero points 0):  y = min(max(float(sum over pixels) * mult, qmin), qmax), rounded to
// nearest even, with mult = in_scale / (H*W * out_scale).
void global_avgpool_q(int batch, int C, int HW, QType in, const void* x, float mult, int qmin,
                      int qmax, QType out, void* y);

}  // namespace fgq::ops
