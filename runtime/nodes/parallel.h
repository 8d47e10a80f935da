#pragma once
// How node kernels split a batch over TBB threads.
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstdint>

namespace fgq::rt {

// Per-image ops split the batch over images; the op kernels parallelize inside as well.
template <class F>
void for_each_image(int batch, const F& f) {
  if (batch == 1) {
    f(0);
    return;
  }
  tbb::parallel_for(0, batch, [&](int i) { f(i); });
}

// Element-wise ops are memory bound: split big ones into chunks over the TBB threads.
template <class F>
void for_chunks(int64_t n, const F& f) {
  constexpr int64_t kChunk = int64_t(1) << 16;
  if (n <= kChunk) {
    f(int64_t(0), n);
    return;
  }
  tbb::parallel_for(int64_t(0), (n + kChunk - 1) / kChunk,
                    [&](int64_t c) { f(c * kChunk, std::min(n, (c + 1) * kChunk)); });
}

}  // namespace fgq::rt
