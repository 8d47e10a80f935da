#include "support/test_util.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

#include <unistd.h>

namespace fs = std::filesystem;

namespace fgq::test {

std::vector<float> random_floats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::string temp_path(const std::string& suffix) {
  static std::atomic<int> counter{0};
  return (fs::temp_directory_path() /
          ("fgq_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + suffix))
      .string();
}

static fs::path source_dir() {
  const char* s = std::getenv("FGQ_SOURCE_DIR");
  return s ? fs::path(s) : fs::current_path();
}

std::optional<std::string> shared_data(const std::string& relative) {
  const char* env = std::getenv("FGQ_DATA");
  fs::path root = env ? fs::path(env) : source_dir() / ".." / "shared";
  fs::path p = root / relative;
  if (!fs::exists(p)) {
    std::printf("SKIPPED: %s not found (set FGQ_DATA to the shared data folder)\n", p.c_str());
    return std::nullopt;
  }
  return p.lexically_normal().string();
}

std::optional<std::string> model_file(const std::string& name) {
  // FGQ_REAL_MODEL_TESTS=0: the sanitizer pass, where the real networks would take most of CI.
  if (const char* e = std::getenv("FGQ_REAL_MODEL_TESTS"); e && std::string(e) == "0") {
    std::printf("SKIPPED: %s: FGQ_REAL_MODEL_TESTS=0\n", name.c_str());
    return std::nullopt;
  }
  fs::path p = source_dir() / "models" / (name + ".onnx");
  if (!fs::exists(p)) {
    std::printf("SKIPPED: %s not found (run scripts/fetch_models.sh)\n", p.c_str());
    return std::nullopt;
  }
  return p.string();
}

}  // namespace fgq::test
