// libFuzzer target: arbitrary bytes through the ONNX importer and the graph preparation passes.
// Anything but a clean fgq::Error is a bug (crash, sanitizer report, huge allocation).
#include <cstddef>
#include <cstdint>

#include "fgq/error.h"
#include "graph/onnx_import.h"
#include "graph/prepare.h"
#include "runtime/preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    fgq::Graph g = fgq::prepare_graph(fgq::import_onnx_bytes(data, size, "<fuzz>"), /*fuse=*/true);
    (void)fgq::Preprocess::from_metadata(g.metadata, "<fuzz>");
  } catch (const fgq::Error&) {
  }
  return 0;
}
