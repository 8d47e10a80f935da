#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "fgq/error.h"
#include "quant/zero_blocks.h"

using fgq::count_zero_blocks;
using fgq::Shape;

TEST_CASE("zero blocks: 16 x 4 blocks per kernel position, partial ones at the edges") {
  // K = 20, C = 6, 3x3: 2 output blocks (16 + 4) x 2 input blocks (4 + 2) x 9 positions.
  const Shape s{20, 6, 3, 3};
  std::vector<int8_t> q(20 * 6 * 9, 0);
  auto at = [&](int k, int c, int tap) -> int8_t& { return q[size_t((k * 6 + c) * 9 + tap)]; };
  fgq::ZeroBlocks z = count_zero_blocks(q.data(), s);
  CHECK(z.blocks == 36);
  CHECK(z.zero == 36);
  at(17, 5, 4) = 1;  // the partial corner block (k 16-19, c 4-5) at position 4
  CHECK(count_zero_blocks(q.data(), s).zero == 35);
  at(16, 4, 4) = -1;  // same block
  CHECK(count_zero_blocks(q.data(), s).zero == 35);
  at(0, 0, 0) = -1;   // first block, position 0
  at(15, 3, 8) = 1;   // first block, position 8: a block is one kernel position
  z = count_zero_blocks(q.data(), s);
  CHECK(z.blocks == 36);
  CHECK(z.zero == 33);
}

TEST_CASE("zero blocks: fully connected weights, and a bad rank") {
  std::vector<int8_t> q(5 * 9, 0);  // [5, 9]: 1 x 3 blocks
  q[4 * 9 + 8] = 1;
  const fgq::ZeroBlocks z = count_zero_blocks(q.data(), {5, 9});
  CHECK(z.blocks == 3);
  CHECK(z.zero == 2);
  CHECK_THROWS_AS(count_zero_blocks(q.data(), {45}), fgq::Error);
}
