// ops/broadcast: numpy-broadcast Add/Sub/Mul/Div against a per-element index reference, on
// random shapes (odd sizes, size-1 dims on either side, different ranks), in chunks and in place.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "fgq/error.h"
#include "ops/broadcast.h"
#include "graph/ir.h"
#include "support/test_util.h"

using fgq::ops::BinaryOp;
using fgq::test::random_floats;
using Dims = std::vector<int64_t>;

namespace {

float apply(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Pow: return std::pow(a, b);
    case BinaryOp::PRelu: return a < 0 ? a * b : a;
    case BinaryOp::Max: return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b);
    case BinaryOp::Min: return std::isnan(a) || std::isnan(b) ? NAN : std::min(a, b);
  }
  return 0;
}

// y[i] from the multi-index of i, each operand read at its own (right-aligned, 1 -> 0) index.
std::vector<float> reference(BinaryOp op, const std::vector<float>& a, const Dims& as, const std::vector<float>& b,
                             const Dims& bs, const Dims& ys) {
  std::vector<float> y(size_t(fgq::numel(ys)));
  const size_t r = ys.size();
  for (int64_t i = 0; i < fgq::numel(ys); ++i) {
    Dims idx(r);
    for (size_t k = r, rem = size_t(i); k-- > 0;) {
      idx[k] = int64_t(rem % size_t(ys[k]));
      rem /= size_t(ys[k]);
    }
    auto at = [&](const Dims& s) {
      int64_t off = 0;
      for (size_t k = 0; k < s.size(); ++k) off = off * s[k] + (s[k] == 1 ? 0 : idx[k + r - s.size()]);
      return off;
    };
    y[size_t(i)] = apply(op, a[size_t(at(as))], b[size_t(at(bs))]);
  }
  return y;
}

// Equal element by element, NaN matching NaN (Pow of a negative base).
bool same(const std::vector<float>& x, const std::vector<float>& y) {
  if (x.size() != y.size()) return false;
  for (size_t k = 0; k < x.size(); ++k)
    if (!(x[k] == y[k] || (std::isnan(x[k]) && std::isnan(y[k])))) return false;
  return true;
}

// A random output shape and two operand shapes that broadcast to it.
struct Case {
  Dims a, b, y;
};
Case random_case(std::mt19937& rng) {
  std::uniform_int_distribution<int> rank(1, 5), dim(1, 7), coin(0, 3);
  Case c;
  const int r = rank(rng);
  for (int k = 0; k < r; ++k) c.y.push_back(dim(rng) == 1 ? 1 : dim(rng) + (k == r - 1 ? 10 : 0));
  c.a = c.y;
  c.b = c.y;
  for (int k = 0; k < r; ++k) {
    const int t = coin(rng);
    if (t == 0) c.a[size_t(k)] = 1;
    if (t == 1) c.b[size_t(k)] = 1;
  }
  // Sometimes a lower rank on one side (numpy aligns to the right).
  if (coin(rng) == 0) c.b.erase(c.b.begin(), c.b.begin() + std::uniform_int_distribution<int>(0, r - 1)(rng));
  if (coin(rng) == 0) c.a.erase(c.a.begin(), c.a.begin() + std::uniform_int_distribution<int>(0, r - 1)(rng));
  fgq::ops::broadcast_shape(c.a, c.b, c.y);  // the leading dims may have shrunk to 1s
  return c;
}

}  // namespace

TEST_CASE("broadcast: shapes") {
  Dims y;
  REQUIRE(fgq::ops::broadcast_shape({2, 1, 5}, {3, 1}, y));
  REQUIRE(y == Dims{2, 3, 5});
  REQUIRE(fgq::ops::broadcast_shape({}, {4}, y));
  REQUIRE(y == Dims{4});
  REQUIRE_FALSE(fgq::ops::broadcast_shape({2, 3}, {4, 3}, y));
  REQUIRE_THROWS_AS(fgq::ops::plan_broadcast({2, 3}, {3}, {2, 4}), fgq::Error);
}

TEST_CASE("broadcast: a per-channel constant on NCHW collapses to one row per channel") {
  const auto p = fgq::ops::plan_broadcast({2, 3, 5, 7}, {3, 1, 1}, {2, 3, 5, 7});
  REQUIRE(p.dims == Dims{2, 3, 35});
  REQUIRE(p.sa == Dims{105, 35, 1});
  REQUIRE(p.sb == Dims{0, 1, 0});
  const auto flat = fgq::ops::plan_broadcast({4, 9}, {4, 9}, {4, 9});
  REQUIRE(flat.dims == Dims{36});
}

TEST_CASE("broadcast: random shapes match the index reference, whole and in chunks") {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 300; ++iter) {
    const Case c = random_case(rng);
    const auto a = random_floats(size_t(fgq::numel(c.a)), 100 + iter);
    auto b = random_floats(size_t(fgq::numel(c.b)), 200 + iter, 0.5f, 2.f);  // no division by ~0
    const auto plan = fgq::ops::plan_broadcast(c.a, c.b, c.y);
    for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow, BinaryOp::PRelu,
                        BinaryOp::Max, BinaryOp::Min}) {
      INFO("iteration " << iter << " op " << int(op));
      const auto want = reference(op, a, c.a, b, c.b, c.y);
      std::vector<float> got(want.size(), -99.f);
      fgq::ops::broadcast_binary_f32(op, plan, a.data(), b.data(), got.data());
      REQUIRE(same(got, want));
      // Arbitrary element ranges, as the runtime splits the work.
      std::fill(got.begin(), got.end(), -99.f);
      const int64_t n = int64_t(got.size());
      for (int64_t e0 = 0; e0 < n;) {
        const int64_t e1 = std::min(n, e0 + std::uniform_int_distribution<int64_t>(1, 23)(rng));
        fgq::ops::broadcast_binary_f32(op, plan, a.data(), b.data(), got.data(), e0, e1);
        e0 = e1;
      }
      REQUIRE(same(got, want));
    }
  }
}

TEST_CASE("broadcast: Max and Min propagate NaN from either side, as numpy does") {
  const std::vector<float> a{1.f, NAN, 3.f}, b{NAN, 2.f, 1.f};
  const auto plan = fgq::ops::plan_broadcast({3}, {3}, {3});
  for (BinaryOp op : {BinaryOp::Max, BinaryOp::Min}) {
    std::vector<float> y(3);
    fgq::ops::broadcast_binary_f32(op, plan, a.data(), b.data(), y.data());
    REQUIRE(std::isnan(y[0]));
    REQUIRE(std::isnan(y[1]));
    REQUIRE(y[2] == (op == BinaryOp::Max ? 3.f : 1.f));
  }
}

TEST_CASE("broadcast: the output may alias the operand that is not broadcast") {
  const Dims as{3, 4, 37}, bs{4, 1};
  const auto a = random_floats(size_t(fgq::numel(as)), 1), b = random_floats(size_t(fgq::numel(bs)), 2);
  const auto plan = fgq::ops::plan_broadcast(as, bs, as);
  const auto want = reference(BinaryOp::Sub, a, as, b, bs, as);
  std::vector<float> y = a;
  fgq::ops::broadcast_binary_f32(BinaryOp::Sub, plan, y.data(), b.data(), y.data());
  REQUIRE(y == want);
  // The other side: y = s / g with s broadcast, written over g.
  const Dims big{2, 5, 9}, small{5, 1};
  const auto s = random_floats(size_t(fgq::numel(small)), 3), g = random_floats(size_t(fgq::numel(big)), 4, 1.f, 2.f);
  const auto want3 = reference(BinaryOp::Div, s, small, g, big, big);
  std::vector<float> y3 = g;
  fgq::ops::broadcast_binary_f32(BinaryOp::Div, fgq::ops::plan_broadcast(small, big, big), s.data(), y3.data(),
                                 y3.data());
  REQUIRE(y3 == want3);
}
