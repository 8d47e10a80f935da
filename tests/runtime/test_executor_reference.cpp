#include "test_executor_reference.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fgq::test::ref {

Image conv(const Image& x, const std::vector<float>& w, int K, int kh, int kw, int stride,
           const int pads[4], const std::vector<float>& bias, int dilation, int group) {
  const int Cg = x.C / group, Kg = K / group;
  Image y;
  y.C = K;
  y.H = (x.H + pads[0] + pads[2] - dilation * (kh - 1) - 1) / stride + 1;
  y.W = (x.W + pads[1] + pads[3] - dilation * (kw - 1) - 1) / stride + 1;
  y.v.assign(size_t(y.C) * y.H * y.W, 0.f);
  for (int k = 0; k < K; ++k)
    for (int oh = 0; oh < y.H; ++oh)
      for (int ow = 0; ow < y.W; ++ow) {
        double s = bias.empty() ? 0.0 : bias[k];
        const int g = k / Kg;
        for (int c = 0; c < Cg; ++c)
          for (int i = 0; i < kh; ++i)
            for (int j = 0; j < kw; ++j) {
              const int h = oh * stride - pads[0] + i * dilation;
              const int wc = ow * stride - pads[1] + j * dilation;
              if (h < 0 || h >= x.H || wc < 0 || wc >= x.W) continue;
              s += double(w[((size_t(k) * Cg + c) * kh + i) * kw + j]) * x.at(g * Cg + c, h, wc);
            }
        y.v[(size_t(k) * y.H + oh) * y.W + ow] = float(s);
      }
  return y;
}

Image batchnorm(const Image& x, const std::vector<float>& gamma, const std::vector<float>& beta,
                const std::vector<float>& mean, const std::vector<float>& var, float eps) {
  Image y = x;
  const size_t plane = size_t(x.H) * x.W;
  for (int c = 0; c < x.C; ++c)
    for (size_t i = 0; i < plane; ++i) {
      float& v = y.v[c * plane + i];
      v = float((v - mean[c]) / std::sqrt(double(var[c]) + eps) * gamma[c] + beta[c]);
    }
  return y;
}

Image relu(Image x) {
  for (float& v : x.v) v = std::max(v, 0.f);
  return x;
}

Image add(Image a, const Image& b) {
  for (size_t i = 0; i < a.v.size(); ++i) a.v[i] += b.v[i];
  return a;
}

Image pad(const Image& x, const int pads[4], float value) {
  Image y;
  y.C = x.C, y.H = x.H + pads[0] + pads[2], y.W = x.W + pads[1] + pads[3];
  y.v.assign(size_t(y.C) * y.H * y.W, value);
  for (int c = 0; c < x.C; ++c)
    for (int h = 0; h < x.H; ++h)
      for (int w = 0; w < x.W; ++w)
        y.v[(size_t(c) * y.H + h + pads[0]) * y.W + w + pads[1]] = x.at(c, h, w);
  return y;
}

static int pooled(int in, int k, int s, int pb, int pe, bool ceil_mode) {
  const int span = in + pb + pe - k;
  int out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  // ONNX: with ceil_mode the last window must start inside the input or the begin padding.
  if (ceil_mode && (out - 1) * s >= in + pb) --out;
  return out;
}

Image pool(const Image& x, bool is_max, int k, int stride, const int pads[4], bool ceil_mode,
           bool count_include_pad) {
  Image y;
  y.C = x.C;
  y.H = pooled(x.H, k, stride, pads[0], pads[2], ceil_mode);
  y.W = pooled(x.W, k, stride, pads[1], pads[3], ceil_mode);
  y.v.resize(size_t(y.C) * y.H * y.W);
  for (int c = 0; c < x.C; ++c)
    for (int oh = 0; oh < y.H; ++oh)
      for (int ow = 0; ow < y.W; ++ow) {
        float m = -std::numeric_limits<float>::infinity();
        double sum = 0;
        int valid = 0, padded = 0;
        for (int i = 0; i < k; ++i)
          for (int j = 0; j < k; ++j) {
            const int h = oh * stride - pads[0] + i, w = ow * stride - pads[1] + j;
            // Explicit padding counts for count_include_pad; the ceil_mode overhang never does.
            if (h < x.H + pads[2] && w < x.W + pads[3]) ++padded;
            if (h < 0 || h >= x.H || w < 0 || w >= x.W) continue;
            m = std::max(m, x.at(c, h, w));
            sum += x.at(c, h, w);
            ++valid;
          }
        y.v[(size_t(c) * y.H + oh) * y.W + ow] =
            is_max ? m : float(sum / (count_include_pad ? padded : valid));
      }
  return y;
}

std::vector<float> gemm(const std::vector<float>& x, const std::vector<float>& B, int N,
                        bool trans_b, const std::vector<float>& c, float alpha, float beta) {
  const int K = int(x.size());
  std::vector<float> y(N);
  for (int n = 0; n < N; ++n) {
    double s = 0;
    for (int k = 0; k < K; ++k)
      s += double(x[k]) * (trans_b ? B[size_t(n) * K + k] : B[size_t(k) * N + n]);
    y[n] = float(alpha * s + (c.empty() ? 0.0 : double(beta) * c[c.size() == 1 ? 0 : n]));
  }
  return y;
}

std::vector<float> softmax(const std::vector<float>& x) {
  const float m = *std::max_element(x.begin(), x.end());
  double sum = 0;
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) sum += (y[i] = float(std::exp(double(x[i]) - m)));
  for (float& v : y) v = float(v / sum);
  return y;
}

}  // namespace fgq::test::ref
