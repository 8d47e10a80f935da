#pragma once
// How many bytes one image of an activation takes in the arena: float tensors are NCHW, integer
// ones NHWC with padded channels (ops/qtypes.h).
#include <cstdint>

#include "graph/ir.h"

namespace fgq::rt {

// shape1: the value's shape at batch 1 ([1, C, H, W] or [1, C]; other ranks only for F32).
// Throws fgq::Error (naming `what`) for an integer tensor of another rank.
int64_t bytes_per_image(DType t, const Shape& shape1, const std::string& what);

}  // namespace fgq::rt
