#pragma once
// The loader: ONNX file -> imported, simplified graph with shapes inferred for batch 1.
#include <string>

#include "graph/ir.h"

namespace fgq {

// import_onnx_file + prepare_graph.
Graph load_and_prepare(const std::string& path, bool fuse = true);

// drop_identities, fold_constants, make_pads_explicit, fold_batchnorm, fuse_pad_into_conv_pool,
// then fuse_conv_activation when `fuse` (quantization wants the unfused conv outputs first).
// Fails naming the node if an op that fgq only evaluates at load time (Shape, Gather, Mul, ...)
// is left working on activations.
Graph prepare_graph(Graph g, bool fuse = true);

}  // namespace fgq
