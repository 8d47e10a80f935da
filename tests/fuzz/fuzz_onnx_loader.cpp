// libFuzzer target for what fgq reads from untrusted model files:
//  - input starting with '#': "key=value" lines as ONNX metadata_props, straight into
//    Preprocess::from_metadata (reaching it through a valid model would be rare);
//  - anything else: the ONNX importer and the graph preparation passes, then what fgq-run does
//    with a loaded model (activation fusion; a quantized model lowered to the integer pipeline,
//    or a saved integer model as it is: codes, levels and requantization constants from the
//    file), then the metadata; a small enough graph also runs once in the executor, whose set-up
//    and kernels trust what the loader validated (a Conv with 0 filters loaded, then crashed).
// Anything but success or a clean fgq::Error is a bug: a crash, a sanitizer report, another
// exception type, a huge allocation. scripts/fuzz.sh builds this with clang as a libFuzzer binary;
// every other build links replay_main.cpp instead to replay the corpus as a test.
#include <cstddef>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "fgq/error.h"
#include "graph/onnx_import.h"
#include "graph/prepare.h"
#include "runtime/executor.h"
#include "runtime/preprocess.h"
#include "runtime/run_graph.h"

namespace {

std::map<std::string, std::string> metadata_lines(const char* text, size_t size) {
  std::map<std::string, std::string> md;
  std::istringstream in(std::string(text, size));
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) md[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return md;
}

// Activations at batch 1. Larger graphs reach no new code, they only slow the fuzzer down
// (big pooling windows, big allocations under ASan).
void run_if_small(const fgq::Graph& g) {
  int64_t elements = 0;
  for (const fgq::Value& v : g.values)
    if (!v.is_const()) elements += fgq::numel(v.shape);
  if (elements > (int64_t(1) << 14)) return;
  fgq::Executor ex(g, 1);
  std::vector<float> x(static_cast<size_t>(fgq::numel(ex.input_shape())), 0.5f);
  ex.run(x.data(), 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    if (size > 0 && data[0] == '#') {
      (void)fgq::Preprocess::from_metadata(
          metadata_lines(reinterpret_cast<const char*>(data) + 1, size - 1), "<fuzz>");
      return 0;
    }
    const fgq::RunGraph r = fgq::make_run_graph(
        fgq::prepare_graph(fgq::import_onnx_bytes(data, size, "<fuzz>"), /*fuse=*/false));
    (void)fgq::Preprocess::from_metadata(r.graph.metadata, "<fuzz>");
    run_if_small(r.graph);
  } catch (const fgq::Error&) {
  }
  return 0;
}
