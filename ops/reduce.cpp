#include "ops/reduce.h"

#include <cmath>
#include <limits>
#include <map>

#include "fgq/error.h"

namespace fgq::ops {
namespace {

// x viewed as collapsed dims (neighbours with the same reduce flag merged); f(acc, v) folds every
// x value into its output's accumulator, in x's order.
template <class Acc, class F>
void fold(const float* x, const std::vector<int64_t>& dims, const std::vector<int64_t>& ostride, std::vector<Acc>& acc,
          F f) {
  const size_t r = dims.size();
  const int64_t n = dims.back(), os = ostride.back();
  int64_t rows = 1;
  for (size_t k = 0; k + 1 < r; ++k) rows *= dims[k];
  std::vector<int64_t> idx(r - 1, 0);
  int64_t o = 0;
  for (int64_t row = 0; row < rows; ++row) {
    const float* xr = x + row * n;
    if (os) {
      for (int64_t i = 0; i < n; ++i) acc[size_t(o + i)] = f(acc[size_t(o + i)], xr[i]);
    } else {
      Acc a = acc[size_t(o)];
      for (int64_t i = 0; i < n; ++i) a = f(a, xr[i]);
      acc[size_t(o)] = a;
    }
    for (size_t k = r - 1; k-- > 0;) {
      o += ostride[k];
      if (++idx[k] < dims[k]) break;
      o -= ostride[k] * dims[k];
      idx[k] = 0;
    }
  }
}

}  // namespace

std::optional<ReduceOp> reduce_op_from_name(const std::string& op_type) {
  static const std::map<std::string, ReduceOp> names = {
      {"ReduceSum", ReduceOp::Sum},   {"ReduceMean", ReduceOp::Mean},
      {"ReduceMax", ReduceOp::Max},   {"ReduceMin", ReduceOp::Min},
      {"ReduceProd", ReduceOp::Prod}, {"ReduceL1", ReduceOp::L1},
      {"ReduceL2", ReduceOp::L2},     {"ReduceSumSquare", ReduceOp::SumSquare},
      {"ReduceLogSum", ReduceOp::LogSum}, {"ReduceLogSumExp", ReduceOp::LogSumExp},
  };
  auto it = names.find(op_type);
  if (it == names.end()) return std::nullopt;
  return it->second;
}

void reduce_f32(ReduceOp op, const float* x, const std::vector<int64_t>& shape, const std::vector<bool>& reduce,
                float* y) {
  if (shape.size() != reduce.size()) fail("reduce", "axes do not match the rank");
  // Collapse; dims of size 1 drop out (they change nothing).
  std::vector<int64_t> dims;
  std::vector<bool> red;
  int64_t out_size = 1, count = 1;
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] <= 0) fail("reduce", "empty input");
    (reduce[k] ? count : out_size) *= shape[k];
    if (shape[k] == 1) continue;
    if (!dims.empty() && red.back() == reduce[k]) {
      dims.back() *= shape[k];
    } else {
      dims.push_back(shape[k]);
      red.push_back(reduce[k]);
    }
  }
  if (dims.empty()) dims.push_back(1), red.push_back(true);
  std::vector<int64_t> ostride(dims.size(), 0);
  for (size_t k = dims.size(), s = 1; k-- > 0;)
    if (!red[k]) ostride[k] = int64_t(s), s *= size_t(dims[k]);

  const size_t m = size_t(out_size);
  if (op == ReduceOp::Max || op == ReduceOp::Min || op == ReduceOp::LogSumExp) {
    const bool max = op != ReduceOp::Min;
    std::vector<float> ext(m, max ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity());
    // NaN wins, as numpy's max/min.
    if (max)
      fold(x, dims, ostride, ext, [](float a, float v) { return v > a || std::isnan(v) ? v : a; });
    else
      fold(x, dims, ostride, ext, [](float a, float v) { return v < a || std::isnan(v) ? v : a; });
    if (op != ReduceOp::LogSumExp) {
      for (size_t i = 0; i < m; ++i) y[i] = ext[i];
      return;
    }
    // log(sum(exp(x - max))) + max: a second pass with each output's max known (an infinite
    // max shifts by 0: the sum is then 0 or infinite, as it should be).
    std::vector<std::pair<double, float>> acc(m);
    for (size_t i = 0; i < m; ++i) acc[i] = {0.0, std::isinf(ext[i]) ? 0.f : ext[i]};
    fold(x, dims, ostride, acc, [](std::pair<double, float> a, float v) {
      a.first += std::exp(double(v) - a.second);
      return a;
    });
    for (size_t i = 0; i < m; ++i) y[i] = float(std::log(acc[i].first) + acc[i].second);
    return;
  }
  std::vector<double> acc(m, op == ReduceOp::Prod ? 1.0 : 0.0);
  switch (op) {
    case ReduceOp::Prod: fold(x, dims, ostride, acc, [](double a, float v) { return a * v; }); break;
    case ReduceOp::L1: fold(x, dims, ostride, acc, [](double a, float v) { return a + std::fabs(double(v)); }); break;
    case ReduceOp::L2:
    case ReduceOp::SumSquare: fold(x, dims, ostride, acc, [](double a, float v) { return a + double(v) * v; }); break;
    default: fold(x, dims, ostride, acc, [](double a, float v) { return a + v; }); break;
  }
  for (size_t i = 0; i < m; ++i) {
    double v = acc[i];
    if (op == ReduceOp::Mean) v /= double(count);
    else if (op == ReduceOp::L2) v = std::sqrt(v);
    else if (op == ReduceOp::LogSum) v = std::log(v);
    y[i] = float(v);
  }
}

}  // namespace fgq::ops
