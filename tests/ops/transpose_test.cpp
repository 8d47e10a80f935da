// ops/transpose (Transpose, Slice, block copies) and ops/softmax (softmax along a middle axis)
// against plain index references on random shapes with odd sizes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "ops/softmax.h"
#include "ops/transpose.h"
#include "graph/ir.h"
#include "support/test_util.h"

using fgq::test::random_floats;
using Dims = std::vector<int64_t>;

namespace {

Dims unflat(int64_t i, const Dims& s) {
  Dims idx(s.size());
  for (size_t k = s.size(); k-- > 0;) {
    idx[k] = i % s[k];
    i /= s[k];
  }
  return idx;
}

int64_t flat(const Dims& idx, const Dims& s) {
  int64_t off = 0;
  for (size_t k = 0; k < s.size(); ++k) off = off * s[k] + idx[k];
  return off;
}

}  // namespace

TEST_CASE("transpose: random permutations match the index reference") {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> rank(1, 6), dim(1, 6);
  for (int iter = 0; iter < 300; ++iter) {
    const int r = rank(rng);
    Dims xs;
    for (int k = 0; k < r; ++k) xs.push_back(dim(rng) + (iter % 3 == 0 && k == r - 1 ? 10 : 0));
    Dims perm(static_cast<size_t>(r), 0);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    Dims ys;
    for (int64_t p : perm) ys.push_back(xs[size_t(p)]);
    const auto x = random_floats(size_t(fgq::numel(xs)), uint32_t(iter));
    std::vector<float> want(x.size()), got(x.size(), -1.f);
    for (int64_t o = 0; o < fgq::numel(ys); ++o) {
      const Dims yi = unflat(o, ys);
      Dims xi(static_cast<size_t>(r), 0);
      for (int k = 0; k < r; ++k) xi[size_t(perm[size_t(k)])] = yi[size_t(k)];
      want[size_t(o)] = x[size_t(flat(xi, xs))];
    }
    fgq::ops::transpose_f32(x.data(), xs, perm, got.data());
    INFO("iteration " << iter);
    REQUIRE(got == want);
  }
}

TEST_CASE("slice: random starts, steps (negative too) and counts match the index reference") {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> rank(1, 5), dim(1, 9);
  for (int iter = 0; iter < 300; ++iter) {
    const int r = rank(rng);
    Dims xs, starts, steps, counts;
    for (int k = 0; k < r; ++k) {
      const int64_t d = dim(rng);
      xs.push_back(d);
      int64_t step = std::uniform_int_distribution<int64_t>(1, 3)(rng);
      if (rng() % 2) step = -step;
      const int64_t start = std::uniform_int_distribution<int64_t>(0, d - 1)(rng);
      // As many as fit from start in the step's direction, at least one.
      const int64_t room = step > 0 ? (d - start + step - 1) / step : (start + 1 + (-step) - 1) / (-step);
      starts.push_back(start);
      steps.push_back(step);
      counts.push_back(std::uniform_int_distribution<int64_t>(1, room)(rng));
    }
    const auto x = random_floats(size_t(fgq::numel(xs)), uint32_t(iter));
    std::vector<float> want(size_t(fgq::numel(counts))), got(want.size(), -1.f);
    for (int64_t o = 0; o < fgq::numel(counts); ++o) {
      Dims idx = unflat(o, counts);
      for (int k = 0; k < r; ++k) idx[size_t(k)] = starts[size_t(k)] + idx[size_t(k)] * steps[size_t(k)];
      want[size_t(o)] = x[size_t(flat(idx, xs))];
    }
    fgq::ops::slice_f32(x.data(), xs, starts, steps, counts, got.data());
    INFO("iteration " << iter);
    REQUIRE(got == want);
  }
}

TEST_CASE("copy_blocks: concatenation of two slabs along a middle axis") {
  // x1 [3, 2, 5], x2 [3, 4, 5] -> y [3, 6, 5] along axis 1.
  const auto x1 = random_floats(30, 1), x2 = random_floats(60, 2);
  std::vector<float> y(90, -1.f);
  fgq::ops::copy_blocks_f32(x1.data(), 10, 10, 3, y.data(), 30);
  fgq::ops::copy_blocks_f32(x2.data(), 20, 20, 3, y.data() + 10, 30);
  for (int o = 0; o < 3; ++o)
    for (int c = 0; c < 6; ++c)
      for (int w = 0; w < 5; ++w) {
        const float want = c < 2 ? x1[size_t(o * 10 + c * 5 + w)] : x2[size_t(o * 20 + (c - 2) * 5 + w)];
        REQUIRE(y[size_t(o * 30 + c * 5 + w)] == want);
      }
}

TEST_CASE("softmax_axis: matches a double reference along a middle axis, in place too") {
  std::mt19937 rng(3);
  for (int iter = 0; iter < 50; ++iter) {
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 9)(rng);
    const int64_t inner = std::uniform_int_distribution<int64_t>(1, 33)(rng);
    auto x = random_floats(size_t(n * inner), uint32_t(iter), -20.f, 20.f);
    std::vector<float> y(x.size());
    fgq::ops::softmax_axis_f32(x.data(), y.data(), n, inner);
    for (int64_t i = 0; i < inner; ++i) {
      double mx = -1e30, sum = 0;
      for (int64_t j = 0; j < n; ++j) mx = std::max(mx, double(x[size_t(j * inner + i)]));
      for (int64_t j = 0; j < n; ++j) sum += std::exp(double(x[size_t(j * inner + i)]) - mx);
      for (int64_t j = 0; j < n; ++j) {
        const double want = std::exp(double(x[size_t(j * inner + i)]) - mx) / sum;
        REQUIRE(y[size_t(j * inner + i)] == Approx(want).epsilon(1e-5).margin(1e-7));
      }
    }
    std::vector<float> z = x;
    fgq::ops::softmax_axis_f32(z.data(), z.data(), n, inner);
    REQUIRE(z == y);
  }
}
