#pragma once
// Plain-loop reference ops on one image (C,H,W), written from the ONNX definitions and sharing
// no code with the runtime, so executor tests compare against an independent evaluation.
#include <cstddef>
#include <vector>

namespace fgq::test::ref {

struct Image {
  int C = 0, H = 0, W = 0;
  std::vector<float> v;  // C*H*W
  float at(int c, int h, int w) const { return v[(std::size_t(c) * H + h) * W + w]; }
};

// w: [K, C/group, kh, kw]; pads top, left, bottom, right; bias may be empty.
Image conv(const Image& x, const std::vector<float>& w, int K, int kh, int kw, int stride,
           const int pads[4], const std::vector<float>& bias, int dilation = 1, int group = 1);
Image batchnorm(const Image& x, const std::vector<float>& gamma, const std::vector<float>& beta,
                const std::vector<float>& mean, const std::vector<float>& var, float eps);
Image relu(Image x);
Image add(Image a, const Image& b);
Image pad(const Image& x, const int pads[4], float value);
Image pool(const Image& x, bool is_max, int k, int stride, const int pads[4], bool ceil_mode,
           bool count_include_pad);
// y[N] = alpha * x[K] * B + beta * c; B is [N,K] when trans_b, else [K,N]; c may be empty.
std::vector<float> gemm(const std::vector<float>& x, const std::vector<float>& B, int N,
                        bool trans_b, const std::vector<float>& c, float alpha, float beta);
std::vector<float> softmax(const std::vector<float>& x);

}  // namespace fgq::test::ref
