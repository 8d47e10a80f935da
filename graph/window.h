#pragma once
// The 2-D sliding-window geometry shared by Conv and the pools: attribute parsing (with
// auto_pad resolved to explicit pads) and output sizes. Shape inference and the passes that
// rewrite pads use the same arithmetic.
#include <cstdint>

#include "graph/ir.h"

namespace fgq {

struct Window2d {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;  // ONNX pads order: [top, left, bottom, right]
};

// Reads strides/dilations/pads/auto_pad of `n` for an H x W input and a kh x kw kernel.
// Throws (prefixed by `where`) on attributes of the wrong length or range.
Window2d window_of(const Node& n, int64_t kh, int64_t kw, int64_t H, int64_t W,
                   const std::string& where);

// Convolution output size: floor((in + pads - dilated kernel) / stride) + 1; <= 0 if the
// kernel does not fit.
int64_t conv_out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pad_begin,
                      int64_t pad_end);
// Pool output size with ONNX/PyTorch ceil_mode: a last window that would start inside the end
// padding is dropped (same rule as ops::Pool2dShape).
int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t pad_begin, int64_t pad_end,
                      bool ceil_mode);

}  // namespace fgq
