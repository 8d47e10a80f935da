#include "graph/onnx_import.h"
#include "graph/onnx_export.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "graph/onnx_proto.h"

#include "graph/error.h"
#include "graph/limits.h"
#include "graph/onnx_tensor.h"
#include "graph/op_schema.h"

namespace fgq {
namespace {

// Opsets whose semantics for the supported ops we implement (attribute vs input forms of
// Pad/Squeeze/Unsqueeze, Softmax's default axis).
constexpr int64_t kMinOpset = 7, kMaxOpset = 21;

bool is_default_domain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

class Importer {
 public:
  Importer(const onnx::ModelProto& m, const std::string& where) : m_(m), where_(where) {
    g_.source = where;
  }

  Graph run() {
    check_model();
    const onnx::GraphProto& gp = m_.graph();
    for (const auto& t : gp.initializer()) add_initializer(t);
    for (const auto& vi : gp.input())
      if (!names_.count(vi.name())) add_graph_input(vi);
    // Outputs first, inputs second: the file's node order need not be topological.
    std::vector<const onnx::NodeProto*> protos;
    for (const auto& np : gp.node()) {
      // fgq's own ops live in their own domain (graph/onnx_export.h), and only there.
      const bool own_op = is_fgq_op(np.op_type());
      if (own_op ? np.domain() != kFgqDomain : !is_default_domain(np.domain()))
        fail(where_, "unsupported op '" + (np.domain().empty() ? "" : np.domain() + "::") +
                         np.op_type() + "' (node '" + node_name(np) + "')");
      if (np.op_type() == "Constant")
        add_constant_node(np);
      else
        protos.push_back(&np);
    }
    for (const auto* np : protos) declare_node(*np);
    for (size_t k = 0; k < protos.size(); ++k) connect_node(*protos[k], g_.nodes[k]);
    for (const auto& vi : gp.output()) {
      auto it = names_.find(vi.name());
      if (it == names_.end()) fail(where_, "graph output '" + vi.name() + "' is never computed");
      g_.outputs.push_back(it->second);
    }
    if (g_.outputs.empty()) fail(where_, "graph has no outputs");
    for (const auto& p : m_.metadata_props()) g_.metadata[p.key()] = p.value();
    g_.toposort();
    g_.remove_dead_nodes();
    return std::move(g_);
  }

 private:
  void check_model() {
    if (!m_.has_graph() || m_.ir_version() <= 0)
      fail(where_, "not a valid ONNX model (no graph)");
    bool found = false;
    for (const auto& os : m_.opset_import()) {
      if (!is_default_domain(os.domain())) continue;
      found = true;
      opset_ = os.version();
    }
    if (!found) fail(where_, "model imports no ai.onnx opset");
    if (opset_ < kMinOpset || opset_ > kMaxOpset)
      fail(where_, "opset " + std::to_string(opset_) + " is not supported (need " +
                       std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) + ")");
  }

  std::string node_name(const onnx::NodeProto& np) const {
    if (!np.name().empty()) return np.name();
    // Unnamed nodes are common; the first output identifies them in messages.
    return np.output_size() ? np.op_type() + ":" + np.output(0) : np.op_type();
  }

  int define(const std::string& name, const std::string& what) {
    if (name.empty()) fail(where_, what + " has an empty name");
    if (names_.count(name)) fail(where_, "value '" + name + "' is defined twice");
    const int id = g_.add_value(name);
    names_[name] = id;
    return id;
  }

  void add_initializer(const onnx::TensorProto& t) {
    Tensor c = tensor_from_onnx(t, where_, "initializer '" + t.name() + "'");
    const int id = define(t.name(), "an initializer");
    g_.set_const(id, std::move(c));
  }

  void add_graph_input(const onnx::ValueInfoProto& vi) {
    const std::string what = "graph input '" + vi.name() + "'";
    if (!vi.type().has_tensor_type()) fail(where_, what + " is not a tensor");
    const auto& tt = vi.type().tensor_type();
    if (tt.elem_type() != onnx::TensorProto::FLOAT)
      fail(where_, what + " has element type " +
                       (onnx::TensorProto_DataType_IsValid(tt.elem_type())
                            ? onnx::TensorProto_DataType_Name(
                                  static_cast<onnx::TensorProto_DataType>(tt.elem_type()))
                            : std::to_string(tt.elem_type())) +
                       "; only FLOAT inputs are supported");
    if (!tt.has_shape()) fail(where_, what + " has no shape");
    Shape s;
    for (int k = 0; k < tt.shape().dim_size(); ++k) {
      const auto& d = tt.shape().dim(k);
      if (d.has_dim_value()) {
        if (d.dim_value() <= 0 || d.dim_value() > kMaxElements)
          fail(where_, what + " has invalid dimension " + std::to_string(d.dim_value()));
        s.push_back(d.dim_value());
      } else if (k == 0) {
        s.push_back(-1);  // symbolic batch
      } else {
        fail(where_, what + " has symbolic dimension " + std::to_string(k) +
                         " ('" + d.dim_param() + "'); only the batch dimension may be symbolic");
      }
    }
    if (s.size() > kMaxRank) fail(where_, what + " has too many dimensions");
    Shape per_item(s.begin() + (s.empty() ? 0 : 1), s.end());
    if (!capped_numel(per_item)) fail(where_, what + " declared size too large " + shape_str(s));
    const int id = define(vi.name(), "a graph input");
    g_.values[id].shape = s;
    g_.inputs.push_back(id);
  }

  void add_constant_node(const onnx::NodeProto& np) {
    const std::string desc = "node '" + node_name(np) + "' (Constant)";
    if (np.output_size() != 1) fail(where_, desc + ": needs exactly one output");
    if (np.attribute_size() != 1) fail(where_, desc + ": needs exactly one value attribute");
    const auto& a = np.attribute(0);
    Tensor t;
    if (a.name() == "value") {
      t = tensor_from_onnx(a.t(), where_, desc + " value");
    } else if (a.name() == "value_float") {
      t = Tensor::f32({}, {a.f()});
    } else if (a.name() == "value_floats") {
      t = Tensor::f32({a.floats_size()}, {a.floats().begin(), a.floats().end()});
    } else if (a.name() == "value_int") {
      t = Tensor::i64({}, {a.i()});
    } else if (a.name() == "value_ints") {
      t = Tensor::i64({a.ints_size()}, {a.ints().begin(), a.ints().end()});
    } else {
      fail(where_, desc + ": unsupported value attribute '" + a.name() + "'");
    }
    const int id = define(np.output(0), desc + " output");
    g_.set_const(id, std::move(t));
  }

  void declare_node(const onnx::NodeProto& np) {
    Node n;
    n.op = np.op_type();
    n.name = node_name(np);
    if (!find_op_spec(n.op)) fail(where_, "unsupported op '" + n.op + "' (node '" + n.name + "')");
    // Every supported op has one output; Dropout may also name its (unused) mask.
    const int max_out = n.op == "Dropout" ? 2 : 1;
    int nout = np.output_size();
    while (nout > 1 && np.output(nout - 1).empty()) --nout;  // trailing optional outputs
    if (nout < 1 || nout > max_out)
      fail(where_, node_desc(n) + ": has " + std::to_string(nout) + " outputs, expected " +
                       (max_out == 1 ? "1" : "1 or 2"));
    for (int k = 0; k < nout; ++k) n.outputs.push_back(define(np.output(k), node_desc(n) + " output"));
    for (const auto& a : np.attribute())
      n.attrs.all()[a.name()] = attr_from_onnx(a, where_, node_desc(n));
    // Before opset 13 Softmax defaulted to axis 1; make the axis explicit so later code need
    // not know the opset.
    if (n.op == "Softmax" && opset_ < 13 && !n.attrs.has("axis")) n.attrs.set_i("axis", 1);
    g_.nodes.push_back(std::move(n));
  }

  void connect_node(const onnx::NodeProto& np, Node& n) {
    for (const auto& in : np.input()) {
      if (in.empty()) {
        n.inputs.push_back(-1);  // absent optional input
        continue;
      }
      auto it = names_.find(in);
      if (it == names_.end())
        fail(where_, "node '" + n.name + "' reads undefined value '" + in + "'");
      n.inputs.push_back(it->second);
    }
    // Trailing absent optional inputs carry no information.
    while (!n.inputs.empty() && n.inputs.back() < 0) n.inputs.pop_back();
    validate_node(n, where_);
  }

  const onnx::ModelProto& m_;
  std::string where_;
  Graph g_;
  int64_t opset_ = 0;
  std::unordered_map<std::string, int> names_;
};

}  // namespace

Graph import_onnx_bytes(const void* data, size_t size, const std::string& name) {
  if (size == 0) fail(name, "not a valid ONNX model (empty file)");
  if (size > static_cast<size_t>(INT_MAX)) fail(name, "file too large for protobuf (over 2 GB)");
  onnx::ModelProto m;
  if (!m.ParseFromArray(data, static_cast<int>(size)))
    fail(name, "not a valid ONNX model (protobuf parse failed)");
  return Importer(m, name).run();
}

Graph import_onnx_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, "cannot open (is a directory)");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
  const std::streamoff size = f.tellg();
  if (size < 0) fail(path, "cannot determine the file size");
  if (static_cast<uint64_t>(size) > static_cast<uint64_t>(INT_MAX))
    fail(path, "file too large for protobuf (over 2 GB)");
  std::string bytes(static_cast<size_t>(size), '\0');
  f.seekg(0);
  if (!f.read(bytes.data(), size)) fail(path, std::string("read error (") + std::strerror(errno) + ")");
  return import_onnx_bytes(bytes.data(), bytes.size(), path);
}

}  // namespace fgq
