#include "quant/act_quant.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>

#include <tbb/combinable.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include "graph/error.h"

namespace fgq {

CalibMethod parse_calib_method(const std::string& name) {
  if (name == "max") return CalibMethod::Max;
  if (name == "percentile") return CalibMethod::Percentile;
  if (name == "mse") return CalibMethod::Mse;
  fail("quant options", "unknown activation calibration '" + name + "' (expected max | percentile | mse)");
}

void act_range(int bits, bool is_signed, int& qmin, int& qmax) {
  if (bits < 2 || bits > 16) fail("act quant", "unsupported bit width " + std::to_string(bits));
  if (is_signed) {
    qmax = (1 << (bits - 1)) - 1;
    qmin = -qmax;
  } else {
    qmin = 0;
    qmax = (1 << bits) - 1;
  }
}

ActQuantParams make_act_params(float clip, int bits, bool is_signed, bool pow2) {
  ActQuantParams p;
  p.bits = bits;
  p.is_signed = is_signed;
  act_range(bits, is_signed, p.qmin, p.qmax);
  p.scale = clip > 0 ? clip / static_cast<float>(p.qmax) : 1.f;
  if (pow2) p.scale = std::exp2(std::ceil(std::log2(p.scale)));
  return p;
}

ActCalibrator::ActCalibrator(int bins) : hist_(static_cast<size_t>(bins), 0.0) {
  if (bins < 2) fail("act calibrator", "needs at least 2 histogram bins");
}

void ActCalibrator::grow_to(float needed) {
  // Double the range until it covers `needed`; each doubling merges adjacent bin pairs.
  const size_t B = hist_.size();
  while (range_ < needed) {
    for (size_t b = 0; b < B / 2; ++b) hist_[b] = hist_[2 * b] + hist_[2 * b + 1];
    if (B % 2) {
      hist_[B / 2] = hist_[B - 1];
      std::fill(hist_.begin() + B / 2 + 1, hist_.end(), 0.0);
    } else {
      std::fill(hist_.begin() + B / 2, hist_.end(), 0.0);
    }
    range_ *= 2;
  }
}

namespace {

// Per-lane accumulators so that the loops vectorise; a block is small enough to stay in cache.
constexpr int kLanes = 16;

struct Range {
  float max = 0;       // of |x|
  float min = 0;       // of x (below 0: the tensor is signed)
  bool finite = true;  // no NaN or infinity seen
};

Range block_range(const float* x, int64_t n) {
  float mx[kLanes] = {}, mn[kLanes] = {}, poison[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const float v = x[i + j], a = std::fabs(v);
      mx[j] = mx[j] > a ? mx[j] : a;
      mn[j] = mn[j] < v ? mn[j] : v;
      poison[j] += v * 0.f;  // NaN once any value is NaN or infinite
    }
  for (; i < n; ++i) {
    mx[0] = std::max(mx[0], std::fabs(x[i]));
    mn[0] = std::min(mn[0], x[i]);
    poison[0] += x[i] * 0.f;
  }
  Range r;
  for (int j = 0; j < kLanes; ++j) {
    r.max = std::max(r.max, mx[j]);
    r.min = std::min(r.min, mn[j]);
    r.finite &= poison[j] == 0.f;
  }
  return r;
}

}  // namespace

void ActCalibrator::observe(const float* x, int64_t n) {
  // Two parallel sweeps: the batch's range first (the histogram may have to grow), then the
  // histogram itself with one partial histogram per thread.
  const int64_t B = static_cast<int64_t>(hist_.size());
  const auto blocks = tbb::blocked_range<int64_t>(0, n, 1 << 16);
  const auto merge = [](Range a, Range b) {
    return Range{std::max(a.max, b.max), std::min(a.min, b.min), a.finite && b.finite};
  };
  const Range r = tbb::parallel_reduce(
      blocks, Range{},
      [&](const tbb::blocked_range<int64_t>& br, Range acc) {
        return merge(acc, block_range(x + br.begin(), br.size()));
      },
      merge);
  if (!r.finite) fail("act calibrator", "non-finite activation value");
  seen_negative_ |= r.min < 0;
  abs_max_ = std::max(abs_max_, r.max);
  count_ += n;
  if (r.max > 0) {
    if (range_ == 0) range_ = r.max;
    else grow_to(r.max);
  }
  const double inv_width = range_ > 0 ? double(B) / range_ : 0;
  // Integer counts in 4 interleaved copies: runs of equal values (zeros, small activations)
  // would otherwise serialise on one counter. Bins are computed a chunk at a time without
  // branches (vectorised; zeros fall in bin 0 and are counted apart), then counted.
  struct Partial {
    std::vector<int64_t> h;
    int64_t zeros = 0;
  };
  tbb::combinable<Partial> partial([B] { return Partial{std::vector<int64_t>(4 * B, 0), 0}; });
  tbb::parallel_for(blocks, [&](const tbb::blocked_range<int64_t>& br) {
    Partial& p = partial.local();
    int64_t* h = p.h.data();
    const auto bin_of = [&](float v) {
      const int32_t b = static_cast<int32_t>(double(std::fabs(v)) * inv_width);
      return b < B - 1 ? b : int32_t(B - 1);
    };
    constexpr int64_t kChunk = 256;  // fixed length: the bin loop vectorises at -O2
    int32_t bin[kChunk];
    int64_t zeros = 0, i = br.begin();
    for (; i + kChunk <= br.end(); i += kChunk) {
      for (int64_t j = 0; j < kChunk; ++j) {
        bin[j] = bin_of(x[i + j]);
        zeros += x[i + j] == 0;
      }
      for (int64_t j = 0; j < kChunk; ++j) ++h[(j & 3) * B + bin[j]];
    }
    for (; i < br.end(); ++i) {
      ++h[bin_of(x[i])];
      zeros += x[i] == 0;
    }
    p.zeros += zeros;
  });
  partial.combine_each([&](const Partial& p) {
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t b = 0; b < B; ++b) hist_[b] += static_cast<double>(p.h[c * B + b]);
    hist_[0] -= static_cast<double>(p.zeros);
    zeros_ += p.zeros;
  });
}

float ActCalibrator::clip(CalibMethod method, int qmax, float pct) const {
  if (abs_max_ == 0 || method == CalibMethod::Max) return abs_max_;
  const size_t B = hist_.size();
  const double width = double(range_) / B;

  if (method == CalibMethod::Percentile) {
    if (!(pct > 0 && pct <= 100)) fail("act calibrator", "percentile must be in (0, 100]");
    const double target = pct / 100.0 * double(count_);
    double cum = double(zeros_);
    if (target <= cum) return 0;
    for (size_t b = 0; b < B; ++b) {
      if (cum + hist_[b] >= target) {
        const double frac = hist_[b] > 0 ? (target - cum) / hist_[b] : 0;
        return static_cast<float>(std::min<double>((b + frac) * width, abs_max_));
      }
      cum += hist_[b];
    }
    return abs_max_;
  }

  // MSE. Values are taken as uniform inside their bin; suffix sums give, for a clip c at a bin
  // edge, the overshoot sum over the bins above c of n * E[(x - c)^2] = n (E[x^2] - 2c E[x] + c^2).
  std::vector<double> n_above(B + 1, 0), x_above(B + 1, 0), x2_above(B + 1, 0);
  for (size_t b = B; b-- > 0;) {
    const double lo = b * width, hi = (b + 1) * width;
    n_above[b] = n_above[b + 1] + hist_[b];
    x_above[b] = x_above[b + 1] + hist_[b] * (lo + hi) / 2;
    x2_above[b] = x2_above[b + 1] + hist_[b] * (lo * lo + lo * hi + hi * hi) / 3;
  }
  double best_err = std::numeric_limits<double>::infinity();
  float best_clip = abs_max_;
  for (size_t j = 1; j <= B; ++j) {
    const double c = std::min<double>(j * width, abs_max_);
    const double step = c / qmax;
    const double inside = (n_above[0] - n_above[j]) * step * step / 12;
    const double outside = x2_above[j] - 2 * c * x_above[j] + c * c * n_above[j];
    const double err = inside + outside;
    if (err < best_err) {
      best_err = err;
      best_clip = static_cast<float>(c);
    }
    if (c >= abs_max_) break;
  }
  return best_clip;
}

ActQuantParams ActCalibrator::params(int bits, CalibMethod method, float pct, bool pow2) const {
  int qmin = 0, qmax = 0;
  act_range(bits, seen_negative_, qmin, qmax);
  return make_act_params(clip(method, qmax, pct), bits, seen_negative_, pow2);
}

static const char* kCalibHeader = "# fgq activation calibration v1: name scale qmin qmax bits signed";

void save_act_calibration(const std::string& path, const ActCalibTable& table) {
  std::ofstream f(path);
  if (!f) fail(path, "cannot write calibration file");
  f << kCalibHeader << "\n";
  f.precision(9);  // round-trips a float exactly
  for (const auto& [name, p] : table) {
    if (name.empty() || name.find_first_of(" \t\r\n") != std::string::npos)
      fail(path, "value name '" + name + "' cannot be stored (empty or contains whitespace)");
    f << name << " " << p.scale << " " << p.qmin << " " << p.qmax << " " << p.bits << " "
      << (p.is_signed ? 1 : 0) << "\n";
  }
  if (!f) fail(path, "write failed");
}

ActCalibTable load_act_calibration(const std::string& path) {
  std::ifstream f(path);
  if (!f) fail(path, "cannot open calibration file");
  std::string line;
  if (!std::getline(f, line) || line != kCalibHeader)
    fail(path, "not an fgq activation calibration file (bad header)");
  ActCalibTable table;
  for (int lineno = 2; std::getline(f, line); ++lineno) {
    if (line.empty()) continue;
    std::istringstream in(line);
    std::string name, extra;
    ActQuantParams p;
    int is_signed = 0;
    if (!(in >> name >> p.scale >> p.qmin >> p.qmax >> p.bits >> is_signed) || (in >> extra) ||
        !(p.scale > 0) || p.qmin > p.qmax)
      fail(path, "line " + std::to_string(lineno) + ": malformed entry");
    p.is_signed = is_signed != 0;
    table[name] = p;
  }
  return table;
}

}  // namespace fgq
