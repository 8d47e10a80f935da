#pragma once
// fgq-run's --model: a registry name (resnet50 | resnet101 | alexnet -> models/NAME.onnx of the
// source tree) or a path to an ONNX file.
#include <string>
#include <vector>

namespace fgq::app {

// Folder holding the running executable (from /proc/self/exe), "" if unknown.
std::string executable_dir();

// Where a registry name is looked for, in order: $FGQ_MODELS, then <exe>/../../models
// (executables are built in <repo>/build*/apps/) and <exe>/../models.
std::vector<std::string> model_search_dirs();

// Resolves --model. A registry name that is not an existing file is searched for in
// model_search_dirs(); throws fgq::Error "model 'NAME' not found (looked in ...)" if absent.
// Anything else is returned unchanged (the loader reports a missing or bad file).
std::string resolve_model(const std::string& model);

}  // namespace fgq::app
