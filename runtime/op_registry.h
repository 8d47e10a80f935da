#pragma once
// Op dispatch: (op type, element type of input 0) -> how to compile a node into a kernel.
// Float and integer kernels sit side by side; an op family is one file in runtime/nodes/ with
// one register_*() function, listed once in op_registry.cpp.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace fgq::rt {

// Runs a compiled node over `batch` images. scratch: the node's scratch_bytes (one buffer the
// executor shares among its nodes, which run one after another).
using Kernel = std::function<void(int batch, void* scratch)>;

// An object derived from a model's constants (packed weights) and the bytes it keeps resident.
struct CacheItem {
  std::shared_ptr<const void> object;
  size_t bytes = 0;
};

// Objects derived from a model's constants that every session of the model can share, made
// once. Thread-safe.
class KernelCache {
 public:
  std::shared_ptr<const void> get_or_make(const std::string& key,
                                          const std::function<CacheItem()>& make);
  size_t size() const;
  size_t bytes() const;  // resident bytes of everything made so far

 private:
  mutable std::mutex mu_;
  std::map<std::string, CacheItem> items_;
};

// Where each value lives and its shape for one image (dim 0 == 1). Constants are read from the
// graph; activations from `act` (arena addresses, fixed for the executor's lifetime).
struct Bindings {
  const Graph& g;
  const std::vector<uint8_t*>& act;
  const std::vector<Shape>& shape1;
  int max_batch = 1;
  KernelCache* cache = nullptr;  // null: nothing shared
  // Set when the nodes reading the graph input read it from the caller's buffer (no arena
  // copy): *input is that buffer during a run.
  const float* const* input = nullptr;
};

// Parsing context for one node: input lookup and errors that name the node.
class NodeView {
 public:
  NodeView(const Bindings& b, const Node& n) : b_(b), n_(n) {}

  [[noreturn]] void error(const std::string& what) const;
  const Node& node() const { return n_; }
  const Graph& graph() const { return b_.g; }
  const Attrs& attrs() const { return n_.attrs; }
  int in(size_t k) const { return k < n_.inputs.size() ? n_.inputs[k] : -1; }
  int out() const { return n_.outputs.at(0); }
  int max_batch() const { return b_.max_batch; }

  bool is_const(int v) const { return b_.g.values[v].is_const(); }
  const Tensor& constant(int v, const char* role) const;
  const float* const_f32(int v, const char* role) const;
  DType dtype(int v) const { return b_.g.values[v].dtype; }
  // An activation input (arena address); `role` names it in errors.
  const uint8_t* act_in(int v, const char* role) const;
  const float* f32_in(int v, const char* role) const;  // ... which must be float
  // For the graph input when the executor leaves it in the caller's buffer (the op's
  // OpKernelDef::reads_caller_input): where that buffer's address is during a run; else null.
  const float* const* caller_input(int v) const;
  uint8_t* act_out() const { return b_.act[out()]; }
  float* f32_out() const;
  const Shape& shape1(int v) const { return b_.shape1[v]; }
  int64_t per_image(int v) const { return numel(b_.shape1[v]); }       // elements
  int64_t image_bytes(int v) const;                                    // arena bytes per image

  void require_rank(int v, size_t rank, const char* role) const;
  // Throws unless the output shape at batch 1 is exactly `expect`.
  void check_output_shape(const Shape& expect) const;
  // Shared derived data (packed weights): made once per model when the executor has a cache.
  std::shared_ptr<const void> shared(const std::string& what,
                                     const std::function<CacheItem()>& make) const;

 private:
  const Bindings& b_;
  const Node& n_;
};

struct Compiled {
  Kernel run;
  size_t scratch_bytes = 0;  // at Bindings::max_batch
  // Prefetch across nodes (the integer convolutions, whose weights stream from memory): `lead`
  // is the object whose data this node reads first, and the executor sets *next_lead to the
  // lead of the next node in order that has one, so that this node's run can prefetch it.
  const void* lead = nullptr;
  std::shared_ptr<const void*> next_lead{};
};

struct OpKernelDef {
  std::string op;
  std::vector<DType> input_types;  // element types of input 0 this entry takes
  std::function<Compiled(const NodeView&)> compile;
  bool view = false;      // the output is the input reinterpreted: may share its storage
  bool in_place = false;  // stays correct when the output buffer is input in_place_input's
  int in_place_input = 0;
  // Reads the graph input through NodeView::caller_input when that is set: when every reader
  // of the graph input does, the executor does not copy the caller's input into its arena.
  bool reads_caller_input = false;
  // Its kernel's parallel loops are ops::parallel_tasks (or it has none), so it may run while
  // the executor keeps a spinning team (ops::SpinTeam) open: a TBB loop would find the team's
  // helpers busy spinning and run on the calling thread alone.
  bool team_parallel = false;
};

class OpRegistry {
 public:
  void add(OpKernelDef def);
  // nullptr when no entry takes this op with this input type.
  const OpKernelDef* find(const std::string& op, DType input_type) const;
  bool has_op(const std::string& op) const;

 private:
  std::multimap<std::string, OpKernelDef> defs_;
};

// Every built-in kernel (float and integer).
const OpRegistry& builtin_ops();

// The op families (runtime/nodes/*.cpp).
void register_conv(OpRegistry& r);
void register_pool(OpRegistry& r);
void register_elementwise(OpRegistry& r);
void register_gemm(OpRegistry& r);
void register_views(OpRegistry& r);
void register_layout(OpRegistry& r);
void register_unary(OpRegistry& r);
void register_reduce(OpRegistry& r);
void register_normalization(OpRegistry& r);
void register_resize(OpRegistry& r);
void register_conv_transpose(OpRegistry& r);
void register_qconv(OpRegistry& r);
void register_quantize(OpRegistry& r);

}  // namespace fgq::rt
