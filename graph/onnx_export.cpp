#include "graph/onnx_export.h"

#include "graph/error.h"
#include "graph/file_write.h"
#include "graph/onnx_proto.h"

namespace fgq {

namespace {

constexpr int64_t kExportOpset = 17;

void set_tensor(onnx::TensorProto& tp, const std::string& name, const Tensor& t) {
  tp.set_name(name);
  for (int64_t d : t.shape) tp.add_dims(d);
  if (t.dtype == DType::F32) {
    tp.set_data_type(onnx::TensorProto::FLOAT);
    static_assert(sizeof(float) == 4, "raw_data is little-endian IEEE float32");
    tp.set_raw_data(t.f.data(), t.f.size() * sizeof(float));
  } else {
    tp.set_data_type(onnx::TensorProto::INT64);
    for (int64_t v : t.i) tp.add_int64_data(v);
  }
}

void set_attr(onnx::AttributeProto& ap, const std::string& name, const Attr& a) {
  ap.set_name(name);
  switch (a.kind) {
    case Attr::INT: ap.set_type(onnx::AttributeProto::INT), ap.set_i(a.i); break;
    case Attr::FLOAT: ap.set_type(onnx::AttributeProto::FLOAT), ap.set_f(a.f); break;
    case Attr::STRING: ap.set_type(onnx::AttributeProto::STRING), ap.set_s(a.s); break;
    case Attr::INTS:
      ap.set_type(onnx::AttributeProto::INTS);
      for (int64_t v : a.ints) ap.add_ints(v);
      break;
    case Attr::FLOATS:
      ap.set_type(onnx::AttributeProto::FLOATS);
      for (float v : a.floats) ap.add_floats(v);
      break;
  }
}

void set_value_info(onnx::ValueInfoProto& vi, const Value& v) {
  vi.set_name(v.name);
  auto* tt = vi.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = tt->mutable_shape();
  for (size_t k = 0; k < v.shape.size(); ++k) {
    auto* d = shape->add_dim();
    if (k == 0) d->set_dim_param("N");  // the batch
    else d->set_dim_value(v.shape[k]);
  }
}

}  // namespace

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
  for (const Value& v : g.values)
    if (v.is_const()) set_tensor(*gp.add_initializer(), v.name, *v.constant);
  for (int v : g.inputs) set_value_info(*gp.add_input(), g.values[v]);
  for (int v : g.outputs) set_value_info(*gp.add_output(), g.values[v]);
  for (const Node& n : g.nodes) {
    onnx::NodeProto& np = *gp.add_node();
    np.set_op_type(n.op);
    np.set_name(n.name);
    if (n.op == "FakeQuant") np.set_domain(kFgqDomain);
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
