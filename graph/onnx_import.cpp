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

// Opsets whose semantics for the supported ops we implement. Older forms are rewritten into the
// current ones as nodes are read (legacy_forms): attribute inputs (Reshape's shape, Slice's
// starts/ends/axes), Pad's "paddings", Cast's type names, Concat's default axis, opset 1-6
// broadcasting (broadcast/axis on Add/Sub/Mul/Div), Softmax's 2-D coercion before opset 13, and
// attributes that only ever said "inference" (is_test, consumed_inputs).
constexpr int64_t kMinOpset = 1, kMaxOpset = 21;
constexpr size_t kMaxSplitOutputs = 4096;

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
    for (Node& n : added_) g_.nodes.push_back(std::move(n));  // toposort places them
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
    // Every supported op has one output; Dropout may also name its (unused) mask, and Split,
    // which becomes one Slice per output (expand_split), has any number.
    const int max_out = n.op == "Dropout" ? 2 : n.op == "Split" ? static_cast<int>(kMaxSplitOutputs) : 1;
    int nout = np.output_size();
    while (nout > 1 && np.output(nout - 1).empty()) --nout;  // trailing optional outputs
    if (nout < 1 || nout > max_out)
      fail(where_, node_desc(n) + ": has " + std::to_string(nout) + " outputs, expected " +
                       (max_out == 1 ? "1" : max_out == 2 ? "1 or 2" : "1 to " + std::to_string(max_out)));
    for (int k = 0; k < nout; ++k) n.outputs.push_back(define(np.output(k), node_desc(n) + " output"));
    for (const auto& a : np.attribute())
      n.attrs.all()[a.name()] = attr_from_onnx(a, where_, node_desc(n));
    legacy_attrs(n);
    g_.nodes.push_back(std::move(n));
  }

  static bool np_has_attr(const onnx::NodeProto& np, const char* name) {
    for (const auto& a : np.attribute())
      if (a.name() == name) return true;
    return false;
  }

  // Opset-dependent attribute forms made explicit, so later code need not know the opset.
  void legacy_attrs(Node& n) {
    Attrs& a = n.attrs;
    const std::string& op = n.op;
    if ((op == "Softmax" || op == "LogSoftmax") && opset_ < 13) {
      // Before opset 13: default axis 1, and the input is flattened to 2-D at the axis (softmax
      // over every dim from the axis on). fold_constants resolves "coerce_2d" once shapes are known.
      if (!a.has("axis")) a.set_i("axis", 1);
      a.set_i("coerce_2d", 1);
    }
    if ((op == "Add" || op == "Sub" || op == "Mul" || op == "Div") && opset_ < 7) {
      // Opsets 1-6: no broadcasting unless broadcast=1; then B lines up with A from `axis` on
      // (default: the trailing dims, as numpy does). fold_constants reshapes B for an axis.
      if (a.i("broadcast", 0) != 0 && a.has("axis")) a.set_i("broadcast_axis", a.i("axis", 0));
      a.erase("broadcast");
      a.erase("axis");
    }
    if (op == "Gemm" && opset_ < 7) a.erase("broadcast");  // C always broadcasts now
    if (op == "Pad" && opset_ < 2 && a.has("paddings") && !a.has("pads")) {
      a.set_ints("pads", a.ints("paddings"));
      a.erase("paddings");
    }
    if (op == "Concat" && opset_ < 4 && !a.has("axis")) a.set_i("axis", 1);
    if (op == "Cast" && a.has("to") && a.all().at("to").kind == Attr::STRING) {
      // Opsets 1-5 name the type.
      onnx::TensorProto_DataType t;
      if (!onnx::TensorProto_DataType_Parse(a.s("to", ""), &t))
        fail(where_, node_desc(n) + ": unknown data type '" + a.s("to", "") + "'");
      a.set_i("to", t);
    }
    if (op == "BatchNormalization" && opset_ < 9 && a.i("spatial", 1) == 1) a.erase("spatial");
    // Inference is all fgq does; these only said so (or described buffer reuse).
    a.erase("consumed_inputs");
    if (op == "BatchNormalization" || op == "Dropout") a.erase("is_test");
  }

  // Conv / ConvTranspose / MaxPool / AveragePool over one spatial dim ([N, C, L]: a 1-value
  // kernel_shape, or a convolution with a rank-3 constant weight).
  bool is_1d_window(const Node& n) const {
    const bool conv = n.op == "Conv" || n.op == "ConvTranspose";
    if (!conv && n.op != "MaxPool" && n.op != "AveragePool") return false;
    if (n.attrs.has("kernel_shape")) return n.attrs.ints("kernel_shape").size() == 1;
    if (!conv || n.inputs.size() < 2 || n.inputs[1] < 0) return false;
    const Value& w = g_.values[n.inputs[1]];
    return w.is_const() && w.constant->shape.size() == 3;
  }

  // Runs a 1-D window op as the 2-D one over [N, C, 1, L]: Unsqueeze(axis 2) -> op -> Squeeze,
  // window attributes with a leading 1 (pads [b, e] -> [0, b, 0, e]), a convolution weight
  // reshaped to [A, B, 1, kernel]. Unsqueeze and Squeeze are views: no copies at run time.
  void lift_1d_window(Node& n) {
    // A value for the new leading H axis (pads: one at each end).
    auto lift = [&](const char* k, size_t count, int64_t h) {
      if (!n.attrs.has(k)) return;
      std::vector<int64_t> v = n.attrs.ints(k);
      if (v.size() != count) return;  // validate_node names the bad attribute
      if (count == 1) v.insert(v.begin(), h);
      else v = {h, v[0], h, v[1]};
      n.attrs.set_ints(k, v);
    };
    lift("kernel_shape", 1, 1);
    lift("strides", 1, 1);
    lift("dilations", 1, 1);
    lift("pads", 2, 0);
    lift("output_padding", 1, 0);
    if (n.attrs.has("output_shape") && n.attrs.ints("output_shape").size() == 1)
      n.attrs.set_ints("output_shape", {1, n.attrs.ints("output_shape")[0]});
    if ((n.op == "Conv" || n.op == "ConvTranspose") && n.inputs.size() > 1 && n.inputs[1] >= 0) {
      const Value& w = g_.values[n.inputs[1]];
      if (!w.is_const() || w.constant->shape.size() != 3)
        fail(where_, node_desc(n) + ": a 1-D convolution needs a constant 3-D weight");
      Tensor t = *w.constant;
      t.shape.insert(t.shape.begin() + 2, 1);
      const int id = define(unique_name(w.name + "::2d"), node_desc(n) + " weight");
      g_.set_const(id, std::move(t));
      n.inputs[1] = id;
    }
    const int axes = define(unique_name(n.name + "::axis2"), node_desc(n) + " axes");
    g_.set_const(axes, Tensor::i64({1}, {2}));
    const int x2 = define(unique_name(n.name + "::2d_in"), node_desc(n) + " input");
    const int y2 = define(unique_name(n.name + "::2d_out"), node_desc(n) + " output");
    Node un, sq;
    un.op = "Unsqueeze";
    un.name = n.name + "::to_2d";
    un.inputs = {n.inputs[0], axes};
    un.outputs = {x2};
    sq.op = "Squeeze";
    sq.name = n.name + "::from_2d";
    sq.inputs = {y2, axes};
    sq.outputs = {n.outputs[0]};
    n.inputs[0] = x2;
    n.outputs[0] = y2;
    validate_node(un, where_);
    validate_node(sq, where_);
    added_.push_back(std::move(un));
    added_.push_back(std::move(sq));
  }

  // Upsample (opsets 7-9, scales an attribute before 9) and Resize-10 -> the Resize of opset 11+:
  // inputs (X, roi, scales), asymmetric coordinates, nearest rounding down (what the ONNX
  // version converter sets).
  void resize_from_upsample(Node& n) {
    int scales = n.inputs.size() > 1 ? n.inputs[1] : -1;
    if (scales < 0 && n.attrs.has("scales")) {
      const std::vector<float> v = n.attrs.floats("scales");
      scales = define(unique_name(n.name + "::scales"), node_desc(n) + " scales");
      g_.set_const(scales, Tensor::f32({static_cast<int64_t>(v.size())}, v));
    }
    if (scales < 0) fail(where_, node_desc(n) + ": has no scales");
    std::string mode = n.attrs.s("mode", "nearest");
    if (mode == "bilinear") mode = "linear";
    n.attrs = Attrs();
    n.attrs.set_s("mode", mode);
    n.attrs.set_s("coordinate_transformation_mode", "asymmetric");
    n.attrs.set_s("nearest_mode", "floor");
    n.op = "Resize";
    n.inputs = {n.inputs.at(0), -1, scales};
  }

  // Split -> one Slice per output. The sizes come from the `split` input (opset 13+) or
  // attribute, else the axis splits evenly: fold_constants resolves the "split_part" marker
  // [index, count] (+ "split" sizes, "axis") into starts/ends once the input shape is known.
  void expand_split(Node& n) {
    std::vector<int64_t> sizes;
    if (n.inputs.size() > 1 && n.inputs[1] >= 0) {
      const Value& v = g_.values[n.inputs[1]];
      if (!v.is_const() || v.constant->dtype != DType::I64)
        fail(where_, node_desc(n) + ": split must be a constant int64 tensor");
      sizes = v.constant->i;
    } else if (n.attrs.has("split")) {
      sizes = n.attrs.ints("split");
    }
    const size_t count = n.outputs.size();
    if (!sizes.empty() && sizes.size() != count)
      fail(where_, node_desc(n) + ": split has " + std::to_string(sizes.size()) + " sizes for " +
                       std::to_string(count) + " outputs");
    if (n.attrs.has("num_outputs") && n.attrs.i("num_outputs", 0) != static_cast<int64_t>(count))
      fail(where_, node_desc(n) + ": num_outputs does not match the outputs");
    for (size_t k = 0; k < count; ++k) {
      Node part;
      part.op = "Slice";
      part.name = count == 1 ? n.name : n.name + "::part" + std::to_string(k);
      part.inputs = {n.inputs[0]};
      part.outputs = {n.outputs[k]};
      part.attrs.set_i("axis", n.attrs.i("axis", 0));
      part.attrs.set_ints("split_part", {static_cast<int64_t>(k), static_cast<int64_t>(count)});
      if (!sizes.empty()) part.attrs.set_ints("split", sizes);
      if (k == 0) continue;
      validate_node(part, where_);
      added_.push_back(std::move(part));
    }
    Node first;
    first.op = "Slice";
    first.name = count == 1 ? n.name : n.name + "::part0";
    first.inputs = {n.inputs[0]};
    first.outputs = {n.outputs[0]};
    first.attrs.set_i("axis", n.attrs.i("axis", 0));
    first.attrs.set_ints("split_part", {0, static_cast<int64_t>(count)});
    if (!sizes.empty()) first.attrs.set_ints("split", sizes);
    n = std::move(first);
  }

  // Max / Min / Sum / Mean of any number of inputs -> a chain of two-input ops (Sum: Add; Mean:
  // Add, then Div by the count); one input is an Identity.
  void expand_variadic(Node& n) {
    const std::string op = n.op == "Sum" || n.op == "Mean" ? "Add" : n.op;
    for (int v : n.inputs)
      if (v < 0) fail(where_, node_desc(n) + ": has a missing input");
    const size_t count = n.inputs.size();
    if (count == 0) fail(where_, node_desc(n) + ": has no inputs");
    const int y = n.outputs[0];
    int acc = n.inputs[0];
    const bool mean = n.op == "Mean" && count > 1;
    std::vector<Node> chain;
    for (size_t k = 1; k < count; ++k) {
      Node step;
      step.op = op;
      step.name = n.name + "::" + std::to_string(k);
      step.inputs = {acc, n.inputs[k]};
      const bool last = k + 1 == count && !mean;
      step.outputs = {last ? y : define(unique_name(step.name), node_desc(n) + " partial result")};
      acc = step.outputs[0];
      chain.push_back(std::move(step));
    }
    if (mean) {
      Node div;
      div.op = "Div";
      div.name = n.name + "::mean";
      const int c = define(unique_name(n.name + "::count"), node_desc(n) + " count");
      g_.set_const(c, Tensor::f32({}, {static_cast<float>(count)}));
      div.inputs = {acc, c};
      div.outputs = {y};
      chain.push_back(std::move(div));
    }
    if (chain.empty()) {
      n.op = "Identity";
      return;
    }
    for (size_t k = 0; k + 1 < chain.size(); ++k) {
      validate_node(chain[k], where_);
      added_.push_back(std::move(chain[k]));
    }
    n = std::move(chain.back());
  }

  std::string unique_name(std::string name) const {
    while (names_.count(name)) name += "_";
    return name;
  }

  // A constant made from an attribute (Reshape's shape, Slice's starts before opset 10).
  int attr_input(const Node& n, const std::string& attr) {
    const std::vector<int64_t> v = n.attrs.ints(attr);
    const int id = define(unique_name(n.name + "::" + attr), node_desc(n) + " attribute input");
    g_.set_const(id, Tensor::i64({static_cast<int64_t>(v.size())}, v));
    return id;
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
    // Attributes that later opsets made inputs.
    if (n.op == "Reshape" && n.inputs.size() == 1 && n.attrs.has("shape")) {
      n.inputs.push_back(attr_input(n, "shape"));
      n.attrs.erase("shape");
    }
    if (n.op == "Slice" && n.inputs.size() == 1 && n.attrs.has("starts") && n.attrs.has("ends")) {
      n.inputs.push_back(attr_input(n, "starts"));
      n.inputs.push_back(attr_input(n, "ends"));
      if (n.attrs.has("axes")) n.inputs.push_back(attr_input(n, "axes"));
      for (const char* k : {"starts", "ends", "axes"}) n.attrs.erase(k);
    }
    // 1-D windows become 2-D ones first: validation knows 2-D windows only.
    if (!n.inputs.empty() && n.inputs[0] >= 0 && is_1d_window(n)) lift_1d_window(n);
    // The node as the file has it must be valid before it is rewritten into other ops.
    validate_node(n, where_);
    for (const char* k : {"split_part", "coerce_2d", "broadcast_axis"})  // the importer's own markers
      if (np_has_attr(np, k)) fail(where_, node_desc(n) + ": unexpected attribute '" + k + "'");
    if (n.op == "Upsample" || (n.op == "Resize" && opset_ < 11)) resize_from_upsample(n);
    if (n.op == "Split") expand_split(n);
    if (n.op == "Max" || n.op == "Min" || n.op == "Sum" || n.op == "Mean") expand_variadic(n);
    // Opsets 1-6: a 1-D slope is per channel (axis 1), not numpy-aligned to the last axis.
    if (n.op == "PRelu" && opset_ < 7 && n.inputs.size() == 2 && n.inputs[1] >= 0 &&
        g_.values[n.inputs[1]].shape.size() == 1)
      n.attrs.set_i("broadcast_axis", 1);
    validate_node(n, where_);
  }

  const onnx::ModelProto& m_;
  std::string where_;
  Graph g_;
  int64_t opset_ = 0;
  std::unordered_map<std::string, int> names_;
  std::vector<Node> added_;  // nodes the importer adds (lift_1d_window), appended after the file's
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
