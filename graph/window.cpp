#include "graph/window.h"

#include <algorithm>

#include "graph/error.h"
#include "graph/limits.h"

namespace fgq {

namespace {

std::vector<int64_t> window_attr(const Node& n, const char* name, size_t count, int64_t def,
                                 int64_t lo, const std::string& where) {
  auto v = n.attrs.ints(name, std::vector<int64_t>(count, def));
  if (v.size() != count)
    fail(where, "node '" + n.name + "' (" + n.op + "): attribute '" + name + "' needs " +
                    std::to_string(count) + " values");
  for (int64_t x : v)
    if (x < lo || x > kMaxWindowParam)
      fail(where, "node '" + n.name + "' (" + n.op + "): attribute '" + name + "' value " +
                      std::to_string(x) + " is out of range");
  return v;
}

}  // namespace

Window2d window_of(const Node& n, int64_t kh, int64_t kw, int64_t H, int64_t W,
                   const std::string& where) {
  Window2d w;
  w.kh = kh;
  w.kw = kw;
  const auto s = window_attr(n, "strides", 2, 1, 1, where);
  const auto d = window_attr(n, "dilations", 2, 1, 1, where);
  const auto p = window_attr(n, "pads", 4, 0, 0, where);
  w.sh = s[0], w.sw = s[1], w.dh = d[0], w.dw = d[1];
  const std::string ap = n.attrs.s("auto_pad", "NOTSET");
  if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
    // Output = ceil(in / stride); an odd total goes at the end (UPPER) or the start (LOWER).
    const int64_t in[2] = {H, W}, k[2] = {kh, kw}, st[2] = {w.sh, w.sw}, dl[2] = {w.dh, w.dw};
    int64_t* begin[2] = {&w.pt, &w.pl};
    int64_t* end[2] = {&w.pb, &w.pr};
    for (int a = 0; a < 2; ++a) {
      const int64_t out = (in[a] + st[a] - 1) / st[a];
      const int64_t total = std::max<int64_t>(0, (out - 1) * st[a] + (k[a] - 1) * dl[a] + 1 - in[a]);
      const int64_t small = total / 2, big = total - small;
      *begin[a] = ap == "SAME_UPPER" ? small : big;
      *end[a] = ap == "SAME_UPPER" ? big : small;
    }
  } else if (ap != "VALID") {
    w.pt = p[0], w.pl = p[1], w.pb = p[2], w.pr = p[3];
  }
  return w;
}

int64_t conv_out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pad_begin,
                      int64_t pad_end) {
  const int64_t span = in + pad_begin + pad_end - d * (k - 1) - 1;
  if (span < 0) return 0;
  return span / s + 1;
}

int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t pad_begin, int64_t pad_end,
                      bool ceil_mode) {
  const int64_t span = in + pad_begin + pad_end - k;
  if (span < 0) return 0;
  int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= in + pad_begin) --out;
  return out;
}

}  // namespace fgq
