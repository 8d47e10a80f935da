#include <catch2/catch.hpp>

#include <cmath>

#include "fgq/error.h"
#include "quant/fold_scales.h"
#include "quant/ternarize.h"
#include "support/test_util.h"

using namespace fgq;

namespace {

// A ternary layer with hand-picked alphas: K=2, C=6 (N=4: groups of 4 and 2), 1x1.
TernaryWeights hand_layer() {
  TernaryWeights tw;
  tw.shape = {2, 6, 1, 1};
  tw.group = 4;
  tw.t = {1, -1, 0, 1, /*|*/ -1, 0,    // k=0
          0, 0, 0, 0, /*|*/ 1, 1};     // k=1: first group all zero
  tw.alpha = {0.8f, 0.2f,   // k=0: s_o = 0.8 / A
              0.f, 0.05f};  // k=1: only the second group is kept
  return tw;
}

}  // namespace

TEST_CASE("fold: levels are round(alpha / s_o) with s_o = max alpha / A") {
  FoldStats st;
  const Int8Weights f = fold_group_scales(hand_layer(), 127, &st);
  REQUIRE(f.scale.size() == 2);
  CHECK(f.scale[0] == 0.8f / 127);
  CHECK(f.scale[1] == 0.05f / 127);
  // k=0: level 127 on the first group, round(0.2 / (0.8/127)) = round(31.75) = 32 on the second.
  const std::vector<int8_t> want = {127, -127, 0, 127, -32, 0, 0, 0, 0, 0, 127, 127};
  CHECK(f.q == want);
  CHECK(st.groups == 3);
  CHECK(st.zero_levels == 0);
  CHECK(st.rel_error > 0);
  CHECK(st.rel_error < 0.01);
}

TEST_CASE("fold: small A zeroes small groups and counts them") {
  FoldStats st;
  // A = 3: s_o = 0.8/3; 0.2 / s_o = 0.75 -> level 1; A = 1: 0.2/0.8 = 0.25 -> level 0.
  const Int8Weights f3 = fold_group_scales(hand_layer(), 3, &st);
  CHECK(f3.q[4] == -1);
  CHECK(st.zero_levels == 0);
  const Int8Weights f1 = fold_group_scales(hand_layer(), 1, &st);
  CHECK(f1.q[0] == 1);
  CHECK(f1.q[4] == 0);
  CHECK(st.zero_levels == 1);
  CHECK(st.groups == 3);
  CHECK_THROWS_AS(fold_group_scales(hand_layer(), 0), Error);
  CHECK_THROWS_AS(fold_group_scales(hand_layer(), 128), Error);
}

TEST_CASE("fold: relative error shrinks with the levels on random layers") {
  const Shape shape{16, 37, 3, 3};  // N=4 does not divide 37
  const auto w = test::random_floats(size_t(numel(shape)), 7);
  const TernaryWeights tw = ternarize(w.data(), shape, 4, Threshold::Exact);
  double last = 1e9;
  for (int A : {7, 15, 31, 63, 127}) {
    FoldStats st;
    const Int8Weights f = fold_group_scales(tw, A, &st);
    INFO("A = " << A);
    CHECK(st.rel_error < last);
    last = st.rel_error;
    // Every weight is s_o[k] * q with |q| <= A and q = 0 exactly where t = 0.
    for (size_t i = 0; i < f.q.size(); ++i) {
      CHECK(std::abs(int(f.q[i])) <= A);
      if (tw.t[i] == 0) CHECK(f.q[i] == 0);
      if (f.q[i] != 0) CHECK((f.q[i] > 0) == (tw.t[i] > 0));
    }
  }
  CHECK(last < 0.01);  // A = 127: folding costs well under 1 % of the ternary weights' norm
}
