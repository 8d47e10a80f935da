#include "tests/quant/mini_runner.h"

#include <cmath>
#include <stdexcept>

#include "quant/act_quant.h"

namespace fgq::test {

namespace {

using Act = MiniAct;

Act conv(const Act& x, const Tensor& w, const Tensor* b, const Attrs& a) {
  const int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t K = w.shape[0], KH = w.shape[2], KW = w.shape[3];
  const auto pads = a.ints("pads", {0, 0, 0, 0});
  const int64_t OH = H + pads[0] + pads[2] - KH + 1, OW = W + pads[1] + pads[3] - KW + 1;
  Act y{{B, K, OH, OW}, std::vector<float>(B * K * OH * OW)};
  for (int64_t n = 0; n < B; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double s = b ? b->f[k] : 0;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t r = 0; r < KH; ++r)
              for (int64_t q = 0; q < KW; ++q) {
                const int64_t ih = oh + r - pads[0], iw = ow + q - pads[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += double(w.f[((k * C + c) * KH + r) * KW + q]) * x.data[((n * C + c) * H + ih) * W + iw];
              }
          y.data[((n * K + k) * OH + oh) * OW + ow] = static_cast<float>(s);
        }
  return y;
}

Act gemm(const Act& x, const Tensor& w, const Tensor* c, const Attrs& a) {
  const bool tb = a.i("transB", 0) != 0;
  const int64_t B = x.shape[0], I = x.shape[1], O = tb ? w.shape[0] : w.shape[1];
  Act y{{B, O}, std::vector<float>(B * O)};
  for (int64_t n = 0; n < B; ++n)
    for (int64_t o = 0; o < O; ++o) {
      double s = c ? c->f[o] : 0;
      for (int64_t i = 0; i < I; ++i) s += double(x.data[n * I + i]) * w.f[tb ? o * I + i : i * O + o];
      y.data[n * O + o] = static_cast<float>(s);
    }
  return y;
}

}  // namespace

std::map<int, MiniAct> mini_run(const Graph& graph, const float* input, int batch,
                                const GraphObserver& observer) {
  const Graph& g = graph;
  std::map<int, Act> acts;
  const Shape& in = g.values[g.inputs.at(0)].shape;
  Act x{in, {}};
  x.shape[0] = batch;
  x.data.assign(input, input + numel(x.shape));
  acts[g.inputs[0]] = std::move(x);
  auto constant = [&](const Node& n, size_t i) -> const Tensor* {
    return n.inputs.size() > i && n.inputs[i] >= 0 ? &g.const_of(n.inputs[i]) : nullptr;
  };
  for (const Node& n : g.nodes) {
    const Act& a = acts.at(n.inputs[0]);
    Act y;
    if (n.op == "Conv") {
      y = conv(a, *constant(n, 1), constant(n, 2), n.attrs);
    } else if (n.op == "Gemm" || n.op == "MatMul") {
      y = gemm(a, *constant(n, 1), n.op == "Gemm" ? constant(n, 2) : nullptr, n.attrs);
    } else if (n.op == "Relu") {
      y = a;
      for (auto& v : y.data) v = std::max(v, 0.f);
    } else if (n.op == "Add") {
      y = a;
      const Act& b = acts.at(n.inputs[1]);
      for (size_t i = 0; i < y.data.size(); ++i) y.data[i] += b.data[i];
    } else if (n.op == "GlobalAveragePool") {
      const int64_t B = a.shape[0], C = a.shape[1], HW = a.shape[2] * a.shape[3];
      y = Act{{B, C, 1, 1}, std::vector<float>(B * C)};
      for (int64_t i = 0; i < B * C; ++i) {
        double s = 0;
        for (int64_t j = 0; j < HW; ++j) s += a.data[i * HW + j];
        y.data[i] = static_cast<float>(s / HW);
      }
    } else if (n.op == "Flatten") {
      y = Act{{a.shape[0], numel(a.shape) / a.shape[0]}, a.data};
    } else if (n.op == "FakeQuant" && !n.attrs.has("scale")) {
      y = a;  // not calibrated yet: passes through (like the executor)
    } else if (n.op == "FakeQuant") {
      ActQuantParams p;
      p.scale = n.attrs.f("scale", 1);
      p.qmin = static_cast<int>(n.attrs.i("qmin", 0));
      p.qmax = static_cast<int>(n.attrs.i("qmax", 0));
      y = a;
      for (auto& v : y.data) v = fake_quant(v, p);
    } else {
      throw std::runtime_error("mini_run: unsupported op " + n.op);
    }
    if (observer) observer(g, n, y.data.data(), y.shape);
    acts[n.outputs[0]] = std::move(y);
  }
  return acts;
}

GraphRunner mini_runner() {
  return [](const Graph& g, const float* input, int batch, const GraphObserver& obs) {
    size_t bytes = 0;
    for (auto& [v, a] : mini_run(g, input, batch, obs)) bytes += a.data.size() * sizeof(float);
    return bytes;
  };
}

}  // namespace fgq::test
