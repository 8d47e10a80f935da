#include "graph/prepare.h"

#include "graph/error.h"
#include "graph/onnx_import.h"
#include "graph/op_schema.h"
#include "graph/passes.h"
#include "graph/shape_inference.h"

namespace fgq {
namespace {

void require_runtime_ops(const Graph& g) {
  for (const Node& n : g.nodes) {
    const OpSpec* spec = find_op_spec(n.op);
    if (spec && spec->constant_only)
      fail(g.source, node_desc(n) + ": only supported on constants, but reads activation '" +
                         g.values[n.inputs.at(0)].name + "'");
  }
}

}  // namespace

Graph prepare_graph(Graph g, bool fuse) {
  drop_identities(g);
  fold_constants(g);
  require_runtime_ops(g);
  infer_shapes(g, 1);
  make_pads_explicit(g);
  fold_batchnorm(g);
  fuse_pad_into_conv_pool(g);
  if (fuse) fuse_conv_activation(g);
  g.remove_dead_nodes();
  infer_shapes(g, 1);
  return g;
}

Graph load_and_prepare(const std::string& path, bool fuse) {
  return prepare_graph(import_onnx_file(path), fuse);
}

}  // namespace fgq
