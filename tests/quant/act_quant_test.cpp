#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <random>

#include "fgq/error.h"
#include "quant/act_quant.h"
#include "support/test_util.h"

using namespace fgq;

namespace {

double quant_mse(const std::vector<float>& x, float clip, int bits, bool is_signed) {
  const ActQuantParams p = make_act_params(clip, bits, is_signed, false);
  double e = 0;
  for (float v : x) {
    const double d = double(v) - fake_quant(v, p);
    e += d * d;
  }
  return e / x.size();
}

// The clip minimising the real quantization MSE, by brute force over a fine grid.
float brute_force_best_clip(const std::vector<float>& x, int bits, bool is_signed, float hi) {
  float best = hi;
  double best_e = quant_mse(x, hi, bits, is_signed);
  for (float c = hi / 400; c < hi; c += hi / 400) {
    const double e = quant_mse(x, c, bits, is_signed);
    if (e < best_e) best_e = e, best = c;
  }
  return best;
}

void check_mse_calibration(const std::vector<float>& x, int bits) {
  ActCalibrator cal;
  for (size_t i = 0; i < x.size(); i += 10000) cal.observe(x.data() + i, std::min<size_t>(10000, x.size() - i));
  REQUIRE(cal.seen_negative());
  const ActQuantParams p = cal.params(bits, CalibMethod::Mse, 0, false);
  const float clip = p.scale * p.qmax;
  const float best = brute_force_best_clip(x, bits, true, cal.abs_max());
  INFO("bits " << bits << ": calibrated clip " << clip << ", brute-force optimum " << best);
  CHECK(clip == Approx(best).epsilon(0.1));
  CHECK(quant_mse(x, clip, bits, true) <= 1.03 * quant_mse(x, best, bits, true));
  // Never worse than not clipping; clearly better at 4 bits, where the grid is coarse.
  CHECK(quant_mse(x, clip, bits, true) < (bits == 4 ? 0.8 : 1.0) * quant_mse(x, cal.abs_max(), bits, true));
}

}  // namespace

TEST_CASE("act quant: integer ranges") {
  int lo, hi;
  act_range(8, false, lo, hi);
  CHECK((lo == 0 && hi == 255));
  act_range(8, true, lo, hi);
  CHECK((lo == -127 && hi == 127));
  act_range(4, false, lo, hi);
  CHECK((lo == 0 && hi == 15));
  act_range(4, true, lo, hi);
  CHECK((lo == -7 && hi == 7));
  CHECK_THROWS_AS(act_range(1, true, lo, hi), Error);
  CHECK_THROWS_AS(parse_calib_method("kl"), Error);
}

TEST_CASE("act quant: round trip within half a step inside the range, clipping outside") {
  for (int bits : {8, 4}) {
    for (bool is_signed : {false, true}) {
      const ActQuantParams p = make_act_params(6.f, bits, is_signed, false);
      CHECK(p.scale * p.qmax == Approx(6.f));
      const auto x = test::random_floats(5000, 1, is_signed ? -6.f : 0.f, 6.f);
      for (float v : x) {
        const float y = fake_quant(v, p);
        REQUIRE(std::fabs(y - v) <= p.scale / 2 * 1.0001f);
        const float q = y / p.scale;
        REQUIRE(std::fabs(q - std::round(q)) < 1e-3f);  // on the grid
      }
      CHECK(fake_quant(100.f, p) == Approx(6.f));
      CHECK(fake_quant(-100.f, p) == Approx(is_signed ? -6.f : 0.f));
    }
  }
}

TEST_CASE("act quant: power-of-two scales round up") {
  ActQuantParams p = make_act_params(1.f, 8, false, true);  // 1/255 -> 1/128
  CHECK(p.scale == 1.f / 128);
  CHECK(p.scale * p.qmax >= 1.f);
  p = make_act_params(0.25f * 127, 8, true, true);  // already a power of two
  CHECK(p.scale == 0.25f);
  p = make_act_params(40.f, 4, true, true);  // 40/7 = 5.71 -> 8
  CHECK(p.scale == 8.f);
}

TEST_CASE("act quant: max and percentile calibration on known data") {
  std::vector<float> x(10000);
  for (int i = 0; i < 10000; ++i) x[i] = float(i + 1);  // |x| uniform over 1..10000
  ActCalibrator cal;
  cal.observe(x.data(), 5000);
  cal.observe(x.data() + 5000, 5000);  // grows the range from 5000 to 10000
  CHECK(cal.count() == 10000);
  CHECK(!cal.seen_negative());
  CHECK(cal.abs_max() == 10000.f);
  CHECK(cal.range() == 10000.f);
  double total = 0;
  for (double h : cal.histogram()) total += h;
  CHECK(total == 10000);
  CHECK(cal.clip(CalibMethod::Max, 255) == 10000.f);
  const float width = cal.range() / cal.histogram().size();
  CHECK(cal.clip(CalibMethod::Percentile, 255, 99.f) == Approx(9900).margin(width));
  CHECK(cal.clip(CalibMethod::Percentile, 255, 50.f) == Approx(5000).margin(width));
  const ActQuantParams p = cal.params(8, CalibMethod::Max, 0, false);
  CHECK((p.qmin == 0 && p.qmax == 255 && !p.is_signed));
  CHECK(p.scale == Approx(10000.f / 255));
}

TEST_CASE("act quant: histogram counts every value in its bin, zeros apart") {
  // Several parallel blocks and a ragged tail; signed values, exact zeros, the maximum itself.
  const size_t n = 3 * 65536 + 1001;
  std::vector<float> x = test::random_floats(n, 11, -3.f, 2.f);
  for (size_t i = 0; i < n; i += 3) x[i] = 0.f;
  ActCalibrator cal(512);
  cal.observe(x.data(), int64_t(n));
  REQUIRE(cal.seen_negative());
  float mx = 0;
  for (float v : x) mx = std::max(mx, std::fabs(v));
  REQUIRE(cal.abs_max() == mx);
  REQUIRE(cal.range() == mx);
  std::vector<double> want(512, 0);
  for (float v : x)
    if (v != 0) want[std::min<size_t>(size_t(double(std::fabs(v)) * (512.0 / mx)), 511)] += 1;
  CHECK(cal.histogram() == want);
  CHECK(cal.count() == int64_t(n));
  // Non-finite values are an error, wherever they sit.
  for (const float bad : {NAN, INFINITY, -INFINITY}) {
    std::vector<float> y(1000, 1.f);
    y[777] = bad;
    ActCalibrator c;
    CHECK_THROWS_AS(c.observe(y.data(), int64_t(y.size())), Error);
  }
}

TEST_CASE("act quant: zeros count for percentiles but cost nothing") {
  std::vector<float> x(1000, 0.f);
  for (int i = 0; i < 100; ++i) x[i] = 1.f + i;  // 90 % zeros
  ActCalibrator cal;
  cal.observe(x.data(), x.size());
  CHECK(cal.clip(CalibMethod::Percentile, 255, 50.f) == 0.f);
  CHECK(cal.clip(CalibMethod::Percentile, 255, 95.f) == Approx(50).margin(0.2));
  ActCalibrator none;
  const std::vector<float> z(10, 0.f);
  none.observe(z.data(), z.size());
  CHECK(none.params(8, CalibMethod::Mse, 0, false).scale == 1.f);
}

TEST_CASE("act quant: mse clip of a Gaussian is near the brute-force optimum") {
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.f, 2.f);
  std::vector<float> x(100000);
  for (auto& v : x) v = d(rng);
  check_mse_calibration(x, 4);
  check_mse_calibration(x, 8);
}

TEST_CASE("act quant: mse clip of a Laplace is near the brute-force optimum") {
  std::mt19937 rng(4);
  std::exponential_distribution<float> e(1.f);
  std::bernoulli_distribution sign(0.5);
  std::vector<float> x(100000);
  for (auto& v : x) v = sign(rng) ? e(rng) : -e(rng);
  check_mse_calibration(x, 4);
  check_mse_calibration(x, 8);
}

TEST_CASE("act quant: calibration table save and load") {
  ActCalibTable t;
  t["conv1_in"] = make_act_params(3.3f, 8, true, false);
  t["res2a/relu"] = make_act_params(11.f / 3, 4, false, true);
  const std::string path = test::temp_path(".calib");
  save_act_calibration(path, t);
  const ActCalibTable back = load_act_calibration(path);
  REQUIRE(back.size() == 2);
  for (const auto& [name, p] : t) {
    const ActQuantParams& q = back.at(name);
    CHECK(q.scale == p.scale);
    CHECK((q.qmin == p.qmin && q.qmax == p.qmax && q.bits == p.bits && q.is_signed == p.is_signed));
  }
  std::ofstream(path, std::ios::app) << "broken 1.0\n";
  CHECK_THROWS_AS(load_act_calibration(path), Error);
  CHECK_THROWS_AS(load_act_calibration(path + ".missing"), Error);
  ActCalibTable bad;
  bad["has space"] = t["conv1_in"];
  CHECK_THROWS_AS(save_act_calibration(path, bad), Error);
  std::remove(path.c_str());
}
