#include "runtime/op_registry.h"

#include <algorithm>

#include "graph/error.h"
#include "runtime/tensor_storage.h"

namespace fgq::rt {

std::shared_ptr<const void> KernelCache::get_or_make(const std::string& key,
                                                     const std::function<CacheItem()>& make) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(key);
  if (it != items_.end()) return it->second.object;
  CacheItem made = make();  // under the lock: a second session waits rather than redoes it
  items_.emplace(key, made);
  return made.object;
}

size_t KernelCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return items_.size();
}

size_t KernelCache::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t b = 0;
  for (const auto& [key, item] : items_) b += item.bytes;
  return b;
}

void NodeView::error(const std::string& what) const {
  fail(b_.g.source, "executor: " + n_.op + " node '" + n_.name + "': " + what);
}

const Tensor& NodeView::constant(int v, const char* role) const {
  if (v < 0 || !is_const(v)) error(std::string(role) + " must be a constant");
  return *b_.g.values[v].constant;
}

const float* NodeView::const_f32(int v, const char* role) const {
  const Tensor& t = constant(v, role);
  if (t.dtype != DType::F32) error(std::string(role) + " must be float");
  return t.f.data();
}

const uint8_t* NodeView::act_in(int v, const char* role) const {
  if (v < 0) error(std::string("missing ") + role);
  if (is_const(v)) error(std::string(role) + " must not be a constant");
  if (!b_.act[v]) error(std::string(role) + " '" + b_.g.values[v].name + "' is never computed");
  return b_.act[v];
}

const float* const* NodeView::caller_input(int v) const {
  return b_.input && v >= 0 && b_.g.inputs.size() == 1 && v == b_.g.inputs[0] ? b_.input : nullptr;
}

const float* NodeView::f32_in(int v, const char* role) const {
  const uint8_t* p = act_in(v, role);
  if (dtype(v) != DType::F32)
    error(std::string(role) + " must be float, is " + dtype_name(dtype(v)));
  return reinterpret_cast<const float*>(p);
}

float* NodeView::f32_out() const {
  if (dtype(out()) != DType::F32) error("output must be float");
  return reinterpret_cast<float*>(b_.act[out()]);
}

int64_t NodeView::image_bytes(int v) const {
  return bytes_per_image(dtype(v), b_.shape1[v], b_.g.source);
}

void NodeView::require_rank(int v, size_t rank, const char* role) const {
  if (b_.shape1[v].size() != rank)
    error(std::string(role) + " must have rank " + std::to_string(rank) + ", has shape " +
          shape_str(b_.shape1[v]));
}

void NodeView::check_output_shape(const Shape& expect) const {
  if (shape1(out()) != expect)
    error("kernel computes output " + shape_str(expect) + " but shape inference gave " +
          shape_str(shape1(out())));
}

std::shared_ptr<const void> NodeView::shared(const std::string& what,
                                             const std::function<CacheItem()>& make) const {
  if (!b_.cache) return make().object;
  // Value names are unique in a graph; the output names the node.
  return b_.cache->get_or_make(b_.g.values[out()].name + "|" + n_.op + "|" + what, make);
}

void OpRegistry::add(OpKernelDef def) {
  const std::string op = def.op;
  defs_.emplace(op, std::move(def));
}

const OpKernelDef* OpRegistry::find(const std::string& op, DType t) const {
  auto [b, e] = defs_.equal_range(op);
  for (auto it = b; it != e; ++it)
    if (std::find(it->second.input_types.begin(), it->second.input_types.end(), t) !=
        it->second.input_types.end())
      return &it->second;
  return nullptr;
}

bool OpRegistry::has_op(const std::string& op) const { return defs_.count(op) != 0; }

const OpRegistry& builtin_ops() {
  static const OpRegistry r = [] {
    OpRegistry reg;
    register_conv(reg);
    register_pool(reg);
    register_elementwise(reg);
    register_gemm(reg);
    register_views(reg);
    register_layout(reg);
    register_unary(reg);
    register_reduce(reg);
    register_normalization(reg);
    register_resize(reg);
    register_conv_transpose(reg);
    register_qconv(reg);
    register_quantize(reg);
    return reg;
  }();
  return r;
}

}  // namespace fgq::rt
