#pragma once
// Helpers shared by the kernel tests: shapes, and reading quantized NHWC buffers. One copy
// each, so that the suites also build as one translation unit (CMAKE_UNITY_BUILD, CI).
#include <cstdint>
#include <limits>
#include <string>

#include <catch2/catch.hpp>

#include "ops/conv2d.h"
#include "ops/pool.h"
#include "ops/qtypes.h"

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

// Square window, equal strides and pads on every side.
inline ops::Pool2dShape pool_shape(int C, int H, int W, int k, int stride, int pad,
                                   bool ceil_mode = false, bool include_pad = false) {
  ops::Pool2dShape s;
  s.C = C, s.H = H, s.W = W, s.KH = s.KW = k, s.SH = s.SW = stride;
  s.PT = s.PL = s.PB = s.PR = pad;
  s.ceil_mode = ceil_mode, s.count_include_pad = include_pad;
  return s;
}

constexpr float kInf = std::numeric_limits<float>::infinity();

// Fills output buffers past their end: a kernel that writes there changes it.
constexpr uint8_t kCanary = 0xA5;

// Storage element (pixel p, channel c) of a quantized NHWC buffer, channels up to the stride.
inline int qget(const uint8_t* buf, ops::QType t, int C, int64_t p, int64_t c) {
  const uint8_t* px = buf + p * ops::qpixel_bytes(t, C);
  switch (t) {
    case ops::QType::U8: return px[c];
    case ops::QType::S8: return static_cast<int8_t>(px[c]);
    case ops::QType::U4: return (px[c / 2] >> (c % 2 * 4)) & 15;
    default: FAIL("bad type"); return 0;
  }
}

}  // namespace fgq::test
