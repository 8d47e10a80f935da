#include <catch2/catch.hpp>

#include <cmath>

#include "fgq/error.h"
#include "quant/stats_correction.h"
#include "support/test_util.h"

using namespace fgq;

TEST_CASE("stats correction: channel moments and affine") {
  const Shape shape{2, 3, 2, 2};
  std::vector<float> x(24);
  for (int b = 0; b < 2; ++b)
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < 4; ++i) x[(b * 3 + c) * 4 + i] = float(c * 100 + b * 4 + i);  // 0..7 + 100c
  const ChannelMoments m = channel_moments(x.data(), shape);
  for (int c = 0; c < 3; ++c) {
    CHECK(m.mean[c] == Approx(100 * c + 3.5));
    CHECK(m.var[c] == Approx(5.25));  // variance of 0..7
  }
  apply_channel_affine(x.data(), shape, {1.f, 2.f, 0.f}, {0.f, -1.f, 7.f});
  CHECK(x[4] == 200.f * 1 + 2 * 0 - 1);  // b=0, c=1, i=0: 2 * 100 - 1
  CHECK(x[8] == 7.f);
  CHECK_THROWS_AS(apply_channel_affine(x.data(), shape, {1.f}, {0.f}), Error);
}

TEST_CASE("stats correction: BN re-estimation equals BN with the re-measured statistics") {
  // Unfolded conv outputs z_u of a drifted (quantized) conv, per channel c.
  const int B = 4, C = 4, inner = 50;
  const Shape shape{B, C, inner};
  const auto noise = test::random_floats(B * C * inner, 17, -2.f, 3.f);
  FoldedBn bn{{1.5f, -0.7f, 0.f, 2.f}, {0.3f, 1.f, 0.5f, -2.f}, {0.2f, -1.f, 0.f, 4.f},
              {2.f, 0.5f, 1.f, 9.f}, 1e-3f};
  std::vector<float> z_u(noise.size()), z(noise.size());
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < C; ++c)
      for (int i = 0; i < inner; ++i) {
        const size_t k = (b * C + c) * inner + i;
        z_u[k] = (1.0f + 0.3f * c) * noise[k] + 0.5f * c;  // arbitrary per-channel drift
        const float s = bn.gamma[c] / std::sqrt(bn.var[c] + bn.eps);
        z[k] = s * (z_u[k] - bn.mean[c]) + bn.beta[c];  // what the folded conv outputs
      }
  const ChannelMoments mz = channel_moments(z.data(), shape);
  const ChannelMoments mu = channel_moments(z_u.data(), shape);
  const ChannelAffine corr = bn_reestimation(bn, mz);
  for (int c = 0; c < C; ++c)
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < inner; ++i) {
        const size_t k = (b * C + c) * inner + i;
        const double want = bn.gamma[c] * (z_u[k] - mu.mean[c]) / std::sqrt(mu.var[c] + bn.eps) + bn.beta[c];
        INFO("channel " << c);
        REQUIRE(corr.a[c] * z[k] + corr.b[c] == Approx(want).margin(1e-4));
      }
  CHECK(corr.a[2] == 1.f);  // gamma = 0: the channel is the constant beta, left alone
  CHECK(corr.b[2] == 0.f);
}

TEST_CASE("stats correction: moment matching restores the reference moments") {
  const Shape shape{3, 2, 10};
  auto x = test::random_floats(60, 23, -1.f, 2.f);
  ChannelMoments ref{{1.f, -3.f}, {4.f, 0.25f}};
  const ChannelAffine corr = moment_matching(ref, channel_moments(x.data(), shape));
  apply_channel_affine(x.data(), shape, corr.a, corr.b);
  const ChannelMoments after = channel_moments(x.data(), shape);
  for (int c = 0; c < 2; ++c) {
    CHECK(after.mean[c] == Approx(ref.mean[c]).margin(1e-5));
    CHECK(after.var[c] == Approx(ref.var[c]).epsilon(1e-4));
  }
}

TEST_CASE("stats correction: mean-only matching shifts each channel and keeps its variance") {
  const Shape shape{3, 2, 10};
  auto x = test::random_floats(60, 29, -1.f, 2.f);
  const ChannelMoments before = channel_moments(x.data(), shape);
  const ChannelMoments ref{{1.f, -3.f}, {4.f, 0.25f}};
  const ChannelAffine corr = moment_matching(ref, before, /*mean_only=*/true);
  apply_channel_affine(x.data(), shape, corr.a, corr.b);
  const ChannelMoments after = channel_moments(x.data(), shape);
  for (int c = 0; c < 2; ++c) {
    CHECK(corr.a[c] == 1.f);
    CHECK(after.mean[c] == Approx(ref.mean[c]).margin(1e-5));
    CHECK(after.var[c] == Approx(before.var[c]).epsilon(1e-4));
  }
}
