#pragma once
// 8-bit symmetric per-output-channel weights for the layers kept out of ternarization (first
// conv, classifier): w ~= scale[k] * q, q in [-127, 127], scale[k] = max|w_k| / 127.
#include <cstdint>
#include <vector>

#include "graph/ir.h"

namespace fgq {

struct Int8Weights {
  Shape shape;               // as given; dim 0 is the output channel
  std::vector<int8_t> q;     // same layout as the weights
  std::vector<float> scale;  // one per output channel (1 for an all-zero channel)
  std::vector<float> dequantize() const;
  void scale_output_channels(const std::vector<float>& s);  // s >= 0
};

Int8Weights quantize_int8_per_channel(const float* w, const Shape& shape);

}  // namespace fgq
