#include "graph/ternary_codes.h"

#include "graph/error.h"

namespace fgq {

std::vector<uint8_t> pack_ternary_codes(const int8_t* t, int64_t n) {
  std::vector<uint8_t> out(size_t(dtype_bytes(DType::T2, n)), 0);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t code = t[i] > 0 ? 1 : t[i] < 0 ? 2 : 0;
    out[size_t(i / 4)] |= uint8_t(code << (2 * (i % 4)));
  }
  return out;
}

std::vector<int8_t> unpack_ternary_codes(const uint8_t* codes, int64_t n, const std::string& where) {
  std::vector<int8_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int code = (codes[i / 4] >> (2 * (i % 4))) & 3;
    if (code == 3) fail(where, "ternary code 3 (invalid) at weight " + std::to_string(i));
    t[size_t(i)] = int8_t(code == 1 ? 1 : code == 2 ? -1 : 0);
  }
  return t;
}

void check_ternary(const Tensor& codes, const Tensor& levels, int64_t group, const std::string& where) {
  if (codes.dtype != DType::T2 || codes.shape.size() != 4)
    fail(where, "ternary codes must be a t2 tensor [K,C,KH,KW], got " + std::string(dtype_name(codes.dtype)) +
                    " " + shape_str(codes.shape));
  const int64_t K = codes.shape[0], C = codes.shape[1], KH = codes.shape[2], KW = codes.shape[3];
  if (group < 1) fail(where, "ternary group size must be >= 1, got " + std::to_string(group));
  const int64_t G = (C + group - 1) / group;
  if (levels.dtype != DType::U8 || levels.shape != Shape{K, G, KH, KW})
    fail(where, "ternary levels must be u8 " + shape_str({K, G, KH, KW}) + ", got " +
                    dtype_name(levels.dtype) + " " + shape_str(levels.shape));
  if (int64_t(codes.raw.size()) != dtype_bytes(DType::T2, codes.numel()) ||
      int64_t(levels.raw.size()) != levels.numel())
    fail(where, "ternary weights are truncated");
  for (int64_t i = 0; i < levels.numel(); ++i)
    if (levels.raw[size_t(i)] > 127)
      fail(where, "ternary level " + std::to_string(levels.raw[size_t(i)]) + " exceeds 127");
  for (int64_t i = 0; i < codes.numel(); ++i)
    if (((codes.raw[size_t(i / 4)] >> (2 * (i % 4))) & 3) == 3)
      fail(where, "ternary code 3 (invalid) at weight " + std::to_string(i));
}

std::vector<int8_t> expand_ternary(const Tensor& codes, const Tensor& levels, int64_t group,
                                   const std::string& where) {
  check_ternary(codes, levels, group, where);
  const int64_t K = codes.shape[0], C = codes.shape[1], KH = codes.shape[2], KW = codes.shape[3];
  const int64_t G = (C + group - 1) / group;
  std::vector<int8_t> w = unpack_ternary_codes(codes.raw.data(), codes.numel(), where);
  const int64_t taps = KH * KW;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t q = 0; q < taps; ++q) {
        int8_t& v = w[size_t((k * C + c) * taps + q)];
        v = int8_t(v * int(levels.raw[size_t((k * G + c / group) * taps + q)]));
      }
  return w;
}

}  // namespace fgq
