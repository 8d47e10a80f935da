#include <catch2/catch.hpp>

#include <cmath>

#include "quant/weight_int8.h"
#include "support/test_util.h"

using namespace fgq;

TEST_CASE("int8 weights: per-output-channel symmetric scales") {
  std::vector<float> w = test::random_floats(3 * 2 * 3 * 3, 21);
  for (int j = 0; j < 18; ++j) w[18 + j] *= 10;  // channel 1 has a 10x larger range
  for (int j = 0; j < 18; ++j) w[36 + j] = 0;    // channel 2 is all zero
  const Int8Weights q = quantize_int8_per_channel(w.data(), {3, 2, 3, 3});
  REQUIRE(q.scale.size() == 3);
  CHECK(q.scale[2] == 1.f);
  const auto w_hat = q.dequantize();
  for (int k = 0; k < 3; ++k) {
    float m = 0;
    for (int j = 0; j < 18; ++j) m = std::max(m, std::fabs(w[k * 18 + j]));
    if (k < 2) CHECK(q.scale[k] == Approx(m / 127));
    for (int j = 0; j < 18; ++j) {
      CHECK(std::abs(int(q.q[k * 18 + j])) <= 127);
      CHECK(std::fabs(w_hat[k * 18 + j] - w[k * 18 + j]) <= q.scale[k] / 2 * 1.0001f);
    }
  }
}
