#include "ops/unary.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace fgq::ops {
namespace {

// Through a fixed-length local block, as ops/elementwise.cpp does: y may alias x.
template <class F>
void map(const float* x, float* y, int64_t n, F f) {
  constexpr int kLanes = 16;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    float v[kLanes];
    for (int j = 0; j < kLanes; ++j) v[j] = x[i + j];
    for (int j = 0; j < kLanes; ++j) y[i + j] = f(v[j]);
  }
  for (; i < n; ++i) y[i] = f(x[i]);
}

}  // namespace

std::optional<UnaryOp> unary_op_from_name(const std::string& op_type) {
  static const std::map<std::string, UnaryOp> names = {
      {"Sigmoid", UnaryOp::Sigmoid},     {"Tanh", UnaryOp::Tanh},
      {"LeakyRelu", UnaryOp::LeakyRelu}, {"Clip", UnaryOp::Clip},
      {"HardSigmoid", UnaryOp::HardSigmoid}, {"HardSwish", UnaryOp::HardSwish},
      {"Elu", UnaryOp::Elu},             {"Celu", UnaryOp::Celu},
      {"Selu", UnaryOp::Selu},           {"ThresholdedRelu", UnaryOp::ThresholdedRelu},
      {"Softplus", UnaryOp::Softplus},   {"Softsign", UnaryOp::Softsign},
      {"Neg", UnaryOp::Neg},             {"Abs", UnaryOp::Abs},
      {"Exp", UnaryOp::Exp},             {"Log", UnaryOp::Log},
      {"Sqrt", UnaryOp::Sqrt},           {"Reciprocal", UnaryOp::Reciprocal},
      {"Floor", UnaryOp::Floor},         {"Ceil", UnaryOp::Ceil},
      {"Round", UnaryOp::Round},         {"Erf", UnaryOp::Erf},
  };
  auto it = names.find(op_type);
  if (it == names.end()) return std::nullopt;
  return it->second;
}

UnaryParams default_unary_params(UnaryOp op) {
  UnaryParams p;
  switch (op) {
    case UnaryOp::LeakyRelu: p.alpha = 0.01f; break;
    case UnaryOp::HardSigmoid: p.alpha = 0.2f, p.beta = 0.5f; break;
    case UnaryOp::Elu:
    case UnaryOp::Celu:
    case UnaryOp::ThresholdedRelu: p.alpha = 1.f; break;
    case UnaryOp::Selu: p.alpha = 1.67326319217681884765625f, p.gamma = 1.05070102214813232421875f; break;
    case UnaryOp::Clip:
      p.lo = -std::numeric_limits<float>::infinity(), p.hi = std::numeric_limits<float>::infinity();
      break;
    default: break;
  }
  return p;
}

void unary_f32(UnaryOp op, const UnaryParams& p, const float* x, float* y, int64_t n) {
  const float a = p.alpha, b = p.beta, g = p.gamma, lo = p.lo, hi = p.hi;
  switch (op) {
    case UnaryOp::Sigmoid: return map(x, y, n, [](float v) { return 1.f / (1.f + std::exp(-v)); });
    case UnaryOp::Tanh: return map(x, y, n, [](float v) { return std::tanh(v); });
    case UnaryOp::LeakyRelu: return map(x, y, n, [a](float v) { return v < 0.f ? a * v : v; });
    case UnaryOp::Clip: return map(x, y, n, [lo, hi](float v) { return std::min(std::max(v, lo), hi); });
    case UnaryOp::HardSigmoid:
      return map(x, y, n, [a, b](float v) { return std::min(1.f, std::max(0.f, a * v + b)); });
    case UnaryOp::HardSwish:
      return map(x, y, n, [](float v) { return v * std::min(1.f, std::max(0.f, v / 6.f + 0.5f)); });
    case UnaryOp::Elu: return map(x, y, n, [a](float v) { return v < 0.f ? a * (std::exp(v) - 1.f) : v; });
    case UnaryOp::Celu:
      return map(x, y, n, [a](float v) { return std::max(0.f, v) + std::min(0.f, a * (std::exp(v / a) - 1.f)); });
    case UnaryOp::Selu:
      return map(x, y, n, [a, g](float v) { return v <= 0.f ? g * (a * std::exp(v) - a) : g * v; });
    case UnaryOp::ThresholdedRelu: return map(x, y, n, [a](float v) { return v > a ? v : 0.f; });
    case UnaryOp::Softplus:
      // log(1 + e^v); above 20 that is v to float precision (and e^v would overflow sooner).
      return map(x, y, n, [](float v) { return v > 20.f ? v : std::log1p(std::exp(v)); });
    case UnaryOp::Softsign: return map(x, y, n, [](float v) { return v / (1.f + std::fabs(v)); });
    case UnaryOp::Neg: return map(x, y, n, [](float v) { return -v; });
    case UnaryOp::Abs: return map(x, y, n, [](float v) { return std::fabs(v); });
    case UnaryOp::Exp: return map(x, y, n, [](float v) { return std::exp(v); });
    case UnaryOp::Log: return map(x, y, n, [](float v) { return std::log(v); });
    case UnaryOp::Sqrt: return map(x, y, n, [](float v) { return std::sqrt(v); });
    case UnaryOp::Reciprocal: return map(x, y, n, [](float v) { return 1.f / v; });
    case UnaryOp::Floor: return map(x, y, n, [](float v) { return std::floor(v); });
    case UnaryOp::Ceil: return map(x, y, n, [](float v) { return std::ceil(v); });
    case UnaryOp::Round: return map(x, y, n, [](float v) { return std::nearbyint(v); });  // half to even
    case UnaryOp::Erf: return map(x, y, n, [](float v) { return std::erf(v); });
  }
}

}  // namespace fgq::ops
