#include "graph/onnx_export.h"

#include "graph/error.h"
#include "graph/file_write.h"
#include "graph/onnx_proto.h"
#include "graph/onnx_tensor.h"
#include "graph/onnx_write.h"

namespace fgq {

namespace {

constexpr int64_t kExportOpset = 17;

}  // namespace

bool is_fgq_op(const std::string& op) {
  return op == "FakeQuant" || op == "Quantize" || op == "Dequantize" || op == "QConv" ||
         op == "QGlobalAveragePool" || op == "ChannelAffine";
}

std::string export_onnx_bytes(const Graph& g) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("fgq");
  auto* ai = m.add_opset_import();
  ai->set_domain("");
  ai->set_version(kExportOpset);
  auto* own = m.add_opset_import();
  own->set_domain(kFgqDomain);
  own->set_version(1);
  for (const auto& [k, v] : g.metadata) {
    auto* p = m.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }
  onnx::GraphProto& gp = *m.mutable_graph();
  gp.set_name("fgq");
  // Only the constants something reads: passes leave replaced ones behind.
  std::vector<bool> used(g.values.size(), false);
  for (const Node& n : g.nodes)
    for (int v : n.inputs)
      if (v >= 0) used[v] = true;
  for (int v : g.outputs) used[v] = true;
  for (size_t v = 0; v < g.values.size(); ++v)
    if (used[v] && g.values[v].is_const()) set_tensor(*gp.add_initializer(), g.values[v].name, *g.values[v].constant);
  for (int v : g.inputs) set_value_info(*gp.add_input(), g.values[v]);
  for (int v : g.outputs) set_value_info(*gp.add_output(), g.values[v]);
  for (const Node& n : g.nodes) {
    onnx::NodeProto& np = *gp.add_node();
    np.set_op_type(n.op);
    np.set_name(n.name);
    if (is_fgq_op(n.op)) np.set_domain(kFgqDomain);
    for (int v : n.inputs) np.add_input(v < 0 ? "" : g.values[v].name);
    for (int v : n.outputs) np.add_output(g.values[v].name);
    for (const auto& [k, a] : n.attrs.all()) set_attr(*np.add_attribute(), k, a);
  }
  std::string bytes;
  if (!m.SerializeToString(&bytes)) fail(g.source, "cannot serialise the graph to ONNX");
  return bytes;
}

void export_onnx_file(const Graph& g, const std::string& path) {
  write_file_atomic(path, export_onnx_bytes(g));
}

}  // namespace fgq
