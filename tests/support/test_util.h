#pragma once
// Small helpers for tests: random data, temp files, where the shared real data lives.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fgq::test {

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f);
// A fresh path under the system temp dir, removed at process exit is not guaranteed.
std::string temp_path(const std::string& suffix);
// $FGQ_DATA, else ../shared next to the source tree; nullopt (and a printed reason) if the
// folder or `relative` inside it is missing. Use: if (!dir) return; // skipped
std::optional<std::string> shared_data(const std::string& relative);
// models/NAME.onnx, or nullopt (printing why) when absent or FGQ_REAL_MODEL_TESTS=0.
std::optional<std::string> model_file(const std::string& name);

}  // namespace fgq::test
