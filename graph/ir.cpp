#include "graph/ir.h"

#include <algorithm>
#include <sstream>

#include "graph/error.h"

namespace fgq {

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << '[';
  for (size_t i = 0; i < s.size(); ++i) o << (i ? "," : "") << s[i];
  o << ']';
  return o.str();
}

Tensor Tensor::f32(Shape shape, std::vector<float> data) {
  Tensor t;
  t.dtype = DType::F32;
  t.shape = std::move(shape);
  t.f = std::move(data);
  return t;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::I64: return "i64";
    case DType::U8: return "u8";
    case DType::S8: return "s8";
    case DType::I32: return "i32";
    case DType::U4: return "u4";
    case DType::T2: return "t2";
  }
  return "?";
}

std::optional<DType> dtype_from_name(const std::string& name) {
  for (DType t : {DType::F32, DType::I64, DType::U8, DType::S8, DType::I32, DType::U4, DType::T2})
    if (name == dtype_name(t)) return t;
  return std::nullopt;
}

int64_t dtype_bytes(DType t, int64_t n) {
  switch (t) {
    case DType::F32: case DType::I32: return 4 * n;
    case DType::I64: return 8 * n;
    case DType::U8: case DType::S8: return n;
    case DType::U4: return (n + 1) / 2;
    case DType::T2: return (n + 3) / 4;
  }
  return n;
}

Tensor Tensor::bytes(DType dtype, Shape shape, std::vector<uint8_t> data) {
  Tensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.raw = std::move(data);
  if (dtype == DType::F32 || dtype == DType::I64 ||
      static_cast<int64_t>(t.raw.size()) != dtype_bytes(dtype, t.numel()))
    fail("tensor", std::string(dtype_name(dtype)) + " tensor " + shape_str(t.shape) + " has " +
                       std::to_string(t.raw.size()) + " bytes");
  return t;
}

Tensor Tensor::i64(Shape shape, std::vector<int64_t> data) {
  Tensor t;
  t.dtype = DType::I64;
  t.shape = std::move(shape);
  t.i = std::move(data);
  return t;
}

int64_t Attrs::i(const std::string& k, int64_t def) const {
  auto it = m_.find(k);
  return it == m_.end() ? def : it->second.i;
}
float Attrs::f(const std::string& k, float def) const {
  auto it = m_.find(k);
  return it == m_.end() ? def : it->second.f;
}
std::string Attrs::s(const std::string& k, const std::string& def) const {
  auto it = m_.find(k);
  return it == m_.end() ? def : it->second.s;
}
std::vector<int64_t> Attrs::ints(const std::string& k, std::vector<int64_t> def) const {
  auto it = m_.find(k);
  return it == m_.end() ? def : it->second.ints;
}
std::vector<float> Attrs::floats(const std::string& k, std::vector<float> def) const {
  auto it = m_.find(k);
  return it == m_.end() ? def : it->second.floats;
}
void Attrs::set_i(const std::string& k, int64_t v) { m_[k] = Attr{Attr::INT, v, 0, {}, {}, {}}; }
void Attrs::set_f(const std::string& k, float v) { m_[k] = Attr{Attr::FLOAT, 0, v, {}, {}, {}}; }
void Attrs::set_s(const std::string& k, std::string v) {
  m_[k] = Attr{Attr::STRING, 0, 0, std::move(v), {}, {}};
}
void Attrs::set_ints(const std::string& k, std::vector<int64_t> v) {
  m_[k] = Attr{Attr::INTS, 0, 0, {}, std::move(v), {}};
}
void Attrs::set_floats(const std::string& k, std::vector<float> v) {
  m_[k] = Attr{Attr::FLOATS, 0, 0, {}, {}, std::move(v)};
}

int Graph::add_value(std::string name, Shape shape) {
  values.push_back(Value{std::move(name), std::move(shape), nullptr});
  return static_cast<int>(values.size()) - 1;
}

int Graph::add_const(std::string name, Tensor t) {
  values.push_back(Value{std::move(name), {}, nullptr});
  set_const(static_cast<int>(values.size()) - 1, std::move(t));
  return static_cast<int>(values.size()) - 1;
}

void Graph::set_const(int v, Tensor t) {
  Value& val = values.at(v);
  val.shape = t.shape;
  val.dtype = t.dtype;
  val.constant = std::make_shared<const Tensor>(std::move(t));
}

int Graph::find_value(const std::string& name) const {
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].name == name) return static_cast<int>(i);
  return -1;
}

const Tensor& Graph::const_of(int v) const {
  if (v < 0 || v >= static_cast<int>(values.size()) || !values[v].constant)
    fail(source, "value '" + (v >= 0 && v < (int)values.size() ? values[v].name : std::string("?")) +
                     "' must be a constant");
  return *values[v].constant;
}

std::vector<int> Graph::consumers(int v) const {
  std::vector<int> r;
  for (size_t n = 0; n < nodes.size(); ++n)
    if (std::find(nodes[n].inputs.begin(), nodes[n].inputs.end(), v) != nodes[n].inputs.end())
      r.push_back(static_cast<int>(n));
  return r;
}

bool Graph::is_graph_output(int v) const {
  return std::find(outputs.begin(), outputs.end(), v) != outputs.end();
}

void Graph::toposort() {
  const size_t nv = values.size();
  std::vector<int> producer(nv, -1);
  for (size_t n = 0; n < nodes.size(); ++n)
    for (int o : nodes[n].outputs) {
      if (o < 0 || static_cast<size_t>(o) >= nv) fail(source, "node '" + nodes[n].name + "' has an invalid output");
      if (producer[o] != -1) fail(source, "value '" + values[o].name + "' is produced by two nodes");
      producer[o] = static_cast<int>(n);
    }
  // Iterative DFS with colours so that a cyclic graph is reported, not recursed into forever.
  std::vector<uint8_t> state(nodes.size(), 0);  // 0 new, 1 on stack, 2 done
  std::vector<Node> sorted;
  sorted.reserve(nodes.size());
  for (size_t root = 0; root < nodes.size(); ++root) {
    if (state[root]) continue;
    std::vector<std::pair<int, size_t>> stack{{static_cast<int>(root), 0}};
    state[root] = 1;
    while (!stack.empty()) {
      auto& [n, next] = stack.back();
      if (next < nodes[n].inputs.size()) {
        int in = nodes[n].inputs[next++];
        if (in < -1 || in >= static_cast<int>(nv)) fail(source, "node '" + nodes[n].name + "' has an invalid input");
        int p = in < 0 ? -1 : producer[in];
        if (p < 0) continue;
        if (state[p] == 1) fail(source, "graph has a cycle through node '" + nodes[p].name + "'");
        if (state[p] == 0) {
          state[p] = 1;
          stack.push_back({p, 0});
        }
      } else {
        state[n] = 2;
        sorted.push_back(std::move(nodes[n]));
        stack.pop_back();
      }
    }
  }
  nodes = std::move(sorted);
}

void Graph::remove_dead_nodes() {
  std::vector<bool> live(values.size(), false);
  for (int o : outputs) live[o] = true;
  std::vector<Node> kept;
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    bool used = false;
    for (int o : it->outputs) used = used || live[o];
    if (!used) continue;
    for (int in : it->inputs)
      if (in >= 0) live[in] = true;
    kept.push_back(std::move(*it));
  }
  nodes.assign(std::make_move_iterator(kept.rbegin()), std::make_move_iterator(kept.rend()));
}

std::vector<bool> Graph::read_by_nodes() const {
  std::vector<bool> read(values.size(), false);
  for (const Node& n : nodes)
    for (int v : n.inputs)
      if (v >= 0) read[size_t(v)] = true;
  return read;
}

void Graph::drop_unread_constants() {
  std::vector<bool> read = read_by_nodes();
  for (int v : outputs) read[size_t(v)] = true;
  std::vector<int> to(values.size(), -1);
  std::vector<Value> kept;
  for (size_t v = 0; v < values.size(); ++v) {
    if (values[v].is_const() && !read[v]) continue;
    to[v] = static_cast<int>(kept.size());
    kept.push_back(std::move(values[v]));
  }
  values = std::move(kept);
  auto remap = [&](std::vector<int>& ids) {
    for (int& v : ids)
      if (v >= 0) v = to[size_t(v)];
  };
  for (Node& n : nodes) remap(n.inputs), remap(n.outputs);
  remap(inputs);
  remap(outputs);
}

}  // namespace fgq
