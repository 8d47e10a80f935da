#include "quant/zero_blocks.h"

#include "graph/error.h"

namespace fgq {

ZeroBlocks count_zero_blocks(const int8_t* q, const Shape& shape) {
  if (shape.size() != 2 && shape.size() != 4) fail("count_zero_blocks", "weights of rank 2 or 4");
  constexpr int64_t kOut = 16, kIn = 4;  // one VNNI weight vector
  const int64_t K = shape[0], C = shape[1], taps = shape.size() == 4 ? shape[2] * shape[3] : 1;
  ZeroBlocks z;
  for (int64_t k0 = 0; k0 < K; k0 += kOut)
    for (int64_t c0 = 0; c0 < C; c0 += kIn)
      for (int64_t t = 0; t < taps; ++t) {
        bool zero = true;
        for (int64_t k = k0; k < K && k < k0 + kOut && zero; ++k)
          for (int64_t c = c0; c < C && c < c0 + kIn; ++c)
            if (q[(k * C + c) * taps + t] != 0) {
              zero = false;
              break;
            }
        ++z.blocks;
        z.zero += zero;
      }
  return z;
}

}  // namespace fgq
