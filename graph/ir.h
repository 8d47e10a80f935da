#pragma once
// The graph IR: values (activations or constants) connected by nodes in topological order.
// Node op names are ONNX op types, plus the few fused forms the passes create (see passes.h).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fgq {

using Shape = std::vector<int64_t>;
int64_t numel(const Shape& s);
std::string shape_str(const Shape& s);

enum class DType : uint8_t { F32, I64 };

// A constant tensor (initializer). Only F32 and I64 constants occur in the models we import.
struct Tensor {
  DType dtype = DType::F32;
  Shape shape;
  std::vector<float> f;    // dtype == F32
  std::vector<int64_t> i;  // dtype == I64
  int64_t numel() const { return fgq::numel(shape); }
  static Tensor f32(Shape shape, std::vector<float> data);
  static Tensor i64(Shape shape, std::vector<int64_t> data);
};

struct Attr {
  enum Kind { INT, FLOAT, STRING, INTS, FLOATS } kind = INT;
  int64_t i = 0;
  float f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<float> floats;
};

class Attrs {
 public:
  bool has(const std::string& k) const { return m_.count(k) != 0; }
  int64_t i(const std::string& k, int64_t def) const;
  float f(const std::string& k, float def) const;
  std::string s(const std::string& k, const std::string& def) const;
  std::vector<int64_t> ints(const std::string& k, std::vector<int64_t> def = {}) const;
  std::vector<float> floats(const std::string& k, std::vector<float> def = {}) const;
  void set_i(const std::string& k, int64_t v);
  void set_f(const std::string& k, float v);
  void set_s(const std::string& k, std::string v);
  void set_ints(const std::string& k, std::vector<int64_t> v);
  void set_floats(const std::string& k, std::vector<float> v);
  void erase(const std::string& k) { m_.erase(k); }
  const std::map<std::string, Attr>& all() const { return m_; }
  std::map<std::string, Attr>& all() { return m_; }

 private:
  std::map<std::string, Attr> m_;
};

struct Value {
  std::string name;
  Shape shape;                      // filled by shape inference; dim 0 of activations is the batch
  std::optional<Tensor> constant;   // set for initializers and folded constants
  bool is_const() const { return constant.has_value(); }
};

struct Node {
  std::string op;                   // "Conv", "Relu", ... or "FakeQuant"
  std::string name;
  std::vector<int> inputs;          // value ids; -1 marks an absent optional input
  std::vector<int> outputs;
  Attrs attrs;
};

struct Graph {
  std::string source;               // file the graph came from, for error messages
  std::vector<Value> values;
  std::vector<Node> nodes;          // topological order (importer and passes keep it)
  std::vector<int> inputs;          // non-constant graph inputs
  std::vector<int> outputs;
  std::map<std::string, std::string> metadata;  // ONNX metadata_props (preprocessing, labels)

  int add_value(std::string name, Shape shape = {});
  int add_const(std::string name, Tensor t);
  int find_value(const std::string& name) const;  // -1 if absent
  const Tensor& const_of(int v) const;             // throws if not constant
  // Nodes that read value v.
  std::vector<int> consumers(int v) const;
  bool is_graph_output(int v) const;
  // Re-sort nodes topologically, drop nodes whose outputs nobody reads, throw on cycles.
  void toposort();
  void remove_dead_nodes();
};

}  // namespace fgq
