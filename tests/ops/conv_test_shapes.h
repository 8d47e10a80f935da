#pragma once
// Conv2dShape helpers shared by the conv kernel tests.
#include <string>

#include "ops/conv2d.h"

namespace fgq::test {

// Square kernel, equal strides and pads on every side.
inline ops::Conv2dShape conv_shape(int C, int H, int W, int K, int k, int stride, int pad) {
  ops::Conv2dShape s;
  s.C = C, s.H = H, s.W = W, s.K = K, s.KH = s.KW = k, s.SH = s.SW = stride;
  s.PT = s.PL = s.PB = s.PR = pad;
  return s;
}

// One line for failure messages.
inline std::string describe_conv(const ops::Conv2dShape& s) {
  return "C" + std::to_string(s.C) + " H" + std::to_string(s.H) + " W" + std::to_string(s.W) +
         " K" + std::to_string(s.K) + " k" + std::to_string(s.KH) + "x" + std::to_string(s.KW) +
         " s" + std::to_string(s.SH) + "," + std::to_string(s.SW) + " p" + std::to_string(s.PT) +
         "," + std::to_string(s.PL) + "," + std::to_string(s.PB) + "," + std::to_string(s.PR) +
         " d" + std::to_string(s.DH) + "," + std::to_string(s.DW);
}

}  // namespace fgq::test
