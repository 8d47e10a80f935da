#include <catch2/catch.hpp>

#include "fgq/error.h"
#include "graph/ternary_codes.h"

using namespace fgq;

TEST_CASE("ternary codes: 2 bits per weight, first weight in the low bits") {
  const std::vector<int8_t> t = {1, -1, 0, 1, -1};
  const std::vector<uint8_t> c = pack_ternary_codes(t.data(), 5);
  REQUIRE(c.size() == 2);
  CHECK(c[0] == (1 | 2 << 2 | 0 << 4 | 1 << 6));
  CHECK(c[1] == 2);
  CHECK(unpack_ternary_codes(c.data(), 5, "t") == t);
  const uint8_t bad[1] = {3 << 2};
  CHECK_THROWS_WITH(unpack_ternary_codes(bad, 4, "model.onnx"), Catch::Contains("model.onnx") && Catch::Contains("code 3"));
}

TEST_CASE("ternary codes: expanded with per-group levels into int8 weights") {
  // K=1, C=5, N=2 (groups {0,1}, {2,3}, {4}), 1x2 kernel.
  const std::vector<int8_t> t = {1, -1,  0, 1,  -1, 0,  1, 1,  1, -1};  // [c][tap]
  const Tensor codes = Tensor::bytes(DType::T2, {1, 5, 1, 2}, pack_ternary_codes(t.data(), 10));
  const Tensor levels = Tensor::bytes(DType::U8, {1, 3, 1, 2}, {10, 20, 30, 40, 127, 5});
  const std::vector<int8_t> w = expand_ternary(codes, levels, 2, "m");
  // level index = (group * KH + r) * KW + tap
  const std::vector<int8_t> want = {10, -20, 0, 20, -30, 0, 30, 40, 127, -5};
  CHECK(w == want);
  const Tensor too_big = Tensor::bytes(DType::U8, {1, 3, 1, 2}, {10, 20, 30, 128, 1, 1});
  CHECK_THROWS_WITH(expand_ternary(codes, too_big, 2, "m"), Catch::Contains("exceeds 127"));
  const Tensor wrong_shape = Tensor::bytes(DType::U8, {1, 2, 1, 2}, {1, 1, 1, 1});
  CHECK_THROWS_AS(expand_ternary(codes, wrong_shape, 2, "m"), Error);
  CHECK_THROWS_AS(expand_ternary(codes, levels, 0, "m"), Error);
  CHECK_THROWS_AS(Tensor::bytes(DType::T2, {1, 5, 1, 2}, {0, 0}), Error);  // needs 3 bytes
}
