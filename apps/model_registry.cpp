#include "model_registry.h"

#include <cstdlib>
#include <filesystem>

#include "graph/error.h"

namespace fs = std::filesystem;

namespace fgq::app {

static const char* const kRegistry[] = {"resnet50", "resnet101", "alexnet"};

std::string executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

std::vector<std::string> model_search_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("FGQ_MODELS"); env && *env) dirs.push_back(env);
  const std::string exe = executable_dir();
  if (!exe.empty()) {
    dirs.push_back((fs::path(exe) / ".." / ".." / "models").lexically_normal().string());
    dirs.push_back((fs::path(exe) / ".." / "models").lexically_normal().string());
  }
  return dirs;
}

std::string resolve_model(const std::string& model) {
  bool registered = false;
  for (const char* name : kRegistry) registered |= model == name;
  if (!registered || fs::is_regular_file(model)) return model;
  std::string looked;
  for (const std::string& dir : model_search_dirs()) {
    const fs::path p = fs::path(dir) / (model + ".onnx");
    if (fs::is_regular_file(p)) return p.string();
    looked += (looked.empty() ? "" : ", ") + dir;
  }
  fail("", "model '" + model + "' not found (looked in " + (looked.empty() ? "nothing" : looked) +
               "; set FGQ_MODELS or fetch the models into <repo>/models)");
}

}  // namespace fgq::app
