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

// Element types. Imported models hold F32 and I64 constants and F32 activations; the integer
// pipeline adds u8/s8/i32 constants, T2 ternary codes (2 bits per weight, four per byte, first
// element in the low bits: 0 -> 0, 1 -> +1, 2 -> -1, 3 is invalid) and U8/S8/U4 activations
// (stored NHWC with padded channels, see ops/qtypes.h).
enum class DType : uint8_t { F32, I64, U8, S8, I32, U4, T2 };
const char* dtype_name(DType t);  // "f32", "i64", "u8", "s8", "i32", "u4", "t2"
// Inverse of dtype_name; nullopt for other names.
std::optional<DType> dtype_from_name(const std::string& name);
// Bytes of a constant of n elements (T2: four per byte, rounded up).
int64_t dtype_bytes(DType t, int64_t n);

// A constant tensor (initializer).
struct Tensor {
  DType dtype = DType::F32;
  Shape shape;
  std::vector<float> f;       // dtype == F32
  std::vector<int64_t> i;     // dtype == I64
  std::vector<uint8_t> raw;   // U8, S8, I32 (little-endian), T2: dtype_bytes(dtype, numel) bytes
  int64_t numel() const { return fgq::numel(shape); }
  const uint8_t* u8() const { return raw.data(); }
  const int8_t* s8() const { return reinterpret_cast<const int8_t*>(raw.data()); }
  static Tensor f32(Shape shape, std::vector<float> data);
  static Tensor i64(Shape shape, std::vector<int64_t> data);
  // Any dtype stored in `raw`; throws fgq::Error unless bytes.size() == dtype_bytes(numel).
  static Tensor bytes(DType dtype, Shape shape, std::vector<uint8_t> bytes);
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
  // Set for initializers and folded constants. Immutable and shared: copies of a graph (one per
  // executor, per session) share the weights; a pass that changes a constant replaces it.
  std::shared_ptr<const Tensor> constant;
  DType dtype = DType::F32;         // of an activation, filled by shape inference
  bool is_const() const { return constant != nullptr; }
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
  void set_const(int v, Tensor t);                  // (re)places value v's constant
  int find_value(const std::string& name) const;  // -1 if absent
  const Tensor& const_of(int v) const;             // throws if not constant
  // Nodes that read value v.
  std::vector<int> consumers(int v) const;
  bool is_graph_output(int v) const;
  // Re-sort nodes topologically, drop nodes whose outputs nobody reads, throw on cycles.
  void toposort();
  void remove_dead_nodes();
  // Per value id: whether some node takes it as an input.
  std::vector<bool> read_by_nodes() const;
  // Drops constants no node reads and that are no graph output (e.g. the float weights a
  // lowering replaced), renumbering the values: their memory goes with the last graph sharing them.
  void drop_unread_constants();
};

}  // namespace fgq
