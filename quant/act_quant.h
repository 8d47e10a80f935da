#pragma once
// Activation quantization: per-tensor symmetric scales for 8- or 4-bit activations, chosen on
// calibration data (abs max, percentile of |x|, or the clip that minimises the MSE).
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fgq {

enum class CalibMethod { Max, Percentile, Mse };
// "max" | "percentile" | "mse"; throws fgq::Error otherwise.
CalibMethod parse_calib_method(const std::string& name);

// x ~= scale * q with q an integer in [qmin, qmax].
struct ActQuantParams {
  float scale = 1.f;
  int qmin = 0;
  int qmax = 0;
  int bits = 8;
  bool is_signed = false;
};

// Integer range: unsigned 0 .. 2^b-1 (non-negative tensors), signed symmetric
// -(2^(b-1)-1) .. 2^(b-1)-1. bits in 2..16.
void act_range(int bits, bool is_signed, int& qmin, int& qmax);
// Parameters that map |x| = clip onto the top code. pow2: dynamic fixed point, the scale is
// rounded UP to the next power of two, so the representable range only grows (nothing that
// fitted clips) at the price of a coarser grid. clip <= 0 (an all-zero tensor) gives scale 1.
ActQuantParams make_act_params(float clip, int bits, bool is_signed, bool pow2);

// Round-to-nearest-even onto the grid, clamp, and back to float (same rule as ops::fake_quant_f32).
inline float fake_quant(float x, const ActQuantParams& p) {
  float q = std::nearbyint(x / p.scale);
  q = std::fmin(std::fmax(q, float(p.qmin)), float(p.qmax));
  return q * p.scale;
}

// Accumulates statistics of one tensor over calibration batches: signedness, abs max and a
// histogram of |x| over [0, range). The range starts at the first batch's abs max and doubles
// whenever a batch exceeds it (adjacent bins merge pairwise), so one pass suffices.
class ActCalibrator {
 public:
  explicit ActCalibrator(int bins = 2048);
  void observe(const float* x, int64_t n);

  int64_t count() const { return count_; }
  float abs_max() const { return abs_max_; }
  bool seen_negative() const { return seen_negative_; }
  const std::vector<double>& histogram() const { return hist_; }
  float range() const { return range_; }

  // Clip value for |x|: max -> abs max; percentile -> that percentile of |x| (pct in (0, 100]);
  // mse -> the clip (searched over the bin edges) minimising the expected squared error of
  // quantizing the observed values with qmax positive levels (grid noise step^2/12 inside the
  // range, squared overshoot outside; exact zeros cost nothing).
  float clip(CalibMethod method, int qmax, float pct = 99.99f) const;
  // Signed iff a negative value was seen.
  ActQuantParams params(int bits, CalibMethod method, float pct, bool pow2) const;

 private:
  void grow_to(float needed);
  std::vector<double> hist_;
  float range_ = 0;  // 0 until a non-zero value is seen
  float abs_max_ = 0;
  int64_t count_ = 0;
  int64_t zeros_ = 0;
  bool seen_negative_ = false;
};

// Calibration results keyed by value name, as a text file: a header line, then one line
// "<name> <scale> <qmin> <qmax> <bits> <signed 0|1>" per tensor (names contain no whitespace).
using ActCalibTable = std::map<std::string, ActQuantParams>;
void save_act_calibration(const std::string& path, const ActCalibTable& table);
ActCalibTable load_act_calibration(const std::string& path);

}  // namespace fgq
