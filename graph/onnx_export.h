#pragma once
// Graph -> ONNX: a prepared or quantized graph written so that import_onnx_file reads it back
// into the same graph (same value names, node order, attributes and constants). fgq's own ops
// (FakeQuant) go to the "fgq" domain; the fgq_* and bn_* attributes the quantizer leaves on
// Conv/Gemm nodes are kept, so an integer pipeline can load a quantized model directly.
#include <string>

#include "graph/ir.h"

namespace fgq {

// ONNX domain of the ops fgq adds: FakeQuant (simulated quantization) and the integer
// pipeline's Quantize, Dequantize, QConv, QGlobalAveragePool (graph/pass_lower_integer.h).
inline constexpr const char* kFgqDomain = "fgq";
bool is_fgq_op(const std::string& op_type);

std::string export_onnx_bytes(const Graph& g);
// Writes atomically (temporary file, then rename); throws fgq::Error naming `path`.
void export_onnx_file(const Graph& g, const std::string& path);

}  // namespace fgq
