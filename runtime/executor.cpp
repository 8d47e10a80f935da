#include "runtime/executor.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "graph/error.h"
#include "graph/shape_inference.h"
#include "ops/parallel_tasks.h"
#include "runtime/memory_plan.h"
#include "runtime/op_registry.h"
#include "runtime/tensor_storage.h"

namespace fgq {
namespace {

constexpr size_t kArenaAlign = 64;

// Large arenas (calibration runs a whole batch of 200 images: gigabytes) on 2 MiB pages: with
// 4 KiB pages first touch costs more than the convolutions that write them.
uint8_t* allocate_arena(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  // aligned_alloc wants a size that is a multiple of the alignment.
  const auto round_up = [&](size_t align) { return std::max(align, (bytes + align - 1) / align * align); };
  if (bytes < 4 * kHuge) return static_cast<uint8_t*>(std::aligned_alloc(kArenaAlign, round_up(kArenaAlign)));
  bytes = round_up(kHuge);
  void* p = std::aligned_alloc(kHuge, bytes);
  if (p) madvise(p, bytes, MADV_HUGEPAGE);  // advice only: fine if it fails
  return static_cast<uint8_t*>(p);
}

// Shapes at batch 1 and at max_batch; every activation must be N-first, i.e. scale with the
// batch in dim 0 only, since one plan and one set of kernels serve every batch size.
// `computed[v]`: v is a graph input or a node output (passes may leave orphan values behind).
std::vector<Shape> infer_image_shapes(Graph& g, int max_batch, const std::vector<bool>& computed) {
  infer_shapes(g, 1);
  std::vector<Shape> shape1(g.values.size());
  for (size_t v = 0; v < g.values.size(); ++v) shape1[v] = g.values[v].shape;
  infer_shapes(g, max_batch);
  for (size_t v = 0; v < g.values.size(); ++v) {
    const Value& val = g.values[v];
    if (!computed[v]) continue;
    Shape expect = shape1[v];
    const bool n_first = !expect.empty() && expect[0] == 1;
    if (n_first) expect[0] = max_batch;
    if (!n_first || val.shape != expect)
      fail(g.source, "executor: value '" + val.name + "' has shape " + shape_str(shape1[v]) +
                         " at batch 1 and " + shape_str(val.shape) + " at batch " +
                         std::to_string(max_batch) + ": the batch must be dim 0");
  }
  return shape1;
}

// Which buffer each value lives in: views share their input's buffer; ops that can run in place
// take over that input's buffer when nothing reads it (or anything else stored there) later
// and no other input of the node lives in it. Returns storage_of for plan_graph_memory.
std::vector<int> choose_storage(const Graph& g, const std::vector<BufferLifetime>& life,
                                const std::vector<const rt::OpKernelDef*>& defs) {
  const int n_nodes = static_cast<int>(g.nodes.size());
  std::vector<int> storage(g.values.size());
  for (size_t v = 0; v < storage.size(); ++v) storage[v] = static_cast<int>(v);
  std::vector<int> buffer_last(g.values.size());  // per root: last step any member is read
  for (size_t v = 0; v < buffer_last.size(); ++v) buffer_last[v] = life[v].last;
  // Float tensors of one size are laid out alike; integer ones (NHWC, padded channels) need
  // the same shape, and u8 and s8 are stored byte for byte the same way.
  auto same_layout = [&](int x, int y) {
    const DType a = g.values[x].dtype, b = g.values[y].dtype;
    if (a == DType::F32 || b == DType::F32) return a == b && numel(g.values[x].shape) == numel(g.values[y].shape);
    const bool bytes = (a == DType::U8 || a == DType::S8) && (b == DType::U8 || b == DType::S8);
    return (a == b || bytes) && g.values[x].shape == g.values[y].shape;
  };

  for (int i = 0; i < n_nodes; ++i) {
    const Node& n = g.nodes[i];
    const rt::OpKernelDef& d = *defs[i];
    const int k = d.view ? 0 : d.in_place ? d.in_place_input : -1;
    if (k < 0 || k >= int(n.inputs.size()) || n.inputs[k] < 0 || n.outputs.size() != 1) continue;
    const int x = n.inputs[k], y = n.outputs[0];
    if (g.values[x].is_const()) continue;
    const int root = storage[x];
    if (!d.view) {
      // buffer_last <= i also excludes graph outputs, which are read "at" step n_nodes.
      bool ok = buffer_last[root] <= i && same_layout(x, y);
      for (size_t j = 0; j < n.inputs.size() && ok; ++j)
        ok = int(j) == k || n.inputs[j] < 0 || storage[n.inputs[j]] != root;
      if (!ok) continue;
    }
    storage[y] = root;
    buffer_last[root] = std::max(buffer_last[root], life[y].last);
  }
  return storage;
}

}  // namespace

struct Executor::Impl {
  Graph g;
  int max_batch = 0;
  int input = -1;
  std::vector<Shape> shape1;  // per value, at batch 1
  struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, FreeDeleter> arena, scratch;
  size_t arena_bytes = 0, scratch_bytes = 0;
  std::vector<uint8_t*> act;  // per activation value: its arena address
  // The graph input stays in the caller's buffer (every node reading it can): run_input.
  bool input_from_caller = false;
  const float* run_input = nullptr;
  std::vector<rt::Kernel> kernels;
  // Per node: it may run inside a spinning team (OpKernelDef::team_parallel), and whether the
  // run opens teams at all (FGQ_SPIN_TEAM=0: never).
  std::vector<bool> team_node;
  bool spin_team = true;
  Observer observer;

  Shape shape_at(int v, int batch) const {
    Shape s = shape1[v];
    if (!g.values[v].is_const()) s[0] = batch;
    return s;
  }
};

Executor::Executor(const Graph& graph, int max_batch, std::shared_ptr<rt::KernelCache> cache)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.g = graph;
  Graph& g = m.g;
  if (max_batch < 1) fail(g.source, "executor: max_batch must be >= 1");
  m.max_batch = max_batch;
  if (const char* e = std::getenv("FGQ_SPIN_TEAM")) m.spin_team = std::string(e) != "0";
  // Reject unknown ops first so the error names the op rather than a shape-inference symptom.
  const rt::OpRegistry& ops = rt::builtin_ops();
  for (const Node& n : g.nodes)
    if (!ops.has_op(n.op))
      fail(g.source, "executor: unsupported op '" + n.op + "' (node '" + n.name + "')");
  if (g.inputs.size() != 1)
    fail(g.source, "executor: the graph needs exactly one activation input, it has " +
                       std::to_string(g.inputs.size()));
  m.input = g.inputs[0];
  if (g.outputs.empty()) fail(g.source, "executor: the graph has no outputs");
  // An output folded into a constant (Shape of the input, ...) has no batch dimension: callers
  // read batch x (its size) values from it.
  for (int v : g.outputs)
    if (g.values[v].is_const())
      fail(g.source, "executor: output '" + g.values[v].name +
                         "' is a constant (it does not depend on the input); outputs must be computed per image");

  const std::vector<BufferLifetime> life = value_lifetimes(g);
  std::vector<bool> computed(g.values.size());
  for (size_t v = 0; v < g.values.size(); ++v) computed[v] = life[v].first != -2;
  m.shape1 = infer_image_shapes(g, max_batch, computed);
  if (g.values[m.input].dtype != DType::F32) fail(g.source, "executor: the graph input must be float");

  // The kernel for each node, by op and the element type of its first input.
  std::vector<const rt::OpKernelDef*> defs;
  for (const Node& n : g.nodes) {
    const DType t = n.inputs.empty() || n.inputs[0] < 0 ? DType::F32 : g.values[n.inputs[0]].dtype;
    const rt::OpKernelDef* d = ops.find(n.op, t);
    if (!d)
      fail(g.source, "executor: no kernel for " + n.op + " on " + dtype_name(t) + " input (node '" +
                         n.name + "')");
    defs.push_back(d);
  }

  // The input quantization of an integer network reads the caller's buffer: a copy of the
  // image would be one more pass over it (0.6 MB per ResNet-50 image).
  int readers = 0, direct = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (std::count(g.nodes[i].inputs.begin(), g.nodes[i].inputs.end(), m.input))
      ++readers, direct += defs[i]->reads_caller_input;
  m.input_from_caller = readers > 0 && direct == readers && !g.is_graph_output(m.input);

  const std::vector<int> storage = choose_storage(g, life, defs);
  std::vector<size_t> bytes(g.values.size(), 0);
  for (size_t v = 0; v < g.values.size(); ++v)
    if (computed[v] && !(m.input_from_caller && int(v) == m.input))
      bytes[v] = size_t(max_batch) *
                 size_t(rt::bytes_per_image(g.values[v].dtype, m.shape1[v], g.source + ": value '" + g.values[v].name + "'"));
  const GraphMemoryPlan plan = plan_graph_memory(g, storage, bytes, kArenaAlign);
  m.arena_bytes = plan.arena_bytes;
  m.arena.reset(allocate_arena(plan.arena_bytes));
  if (!m.arena)
    fail(g.source, "executor: cannot allocate " + std::to_string(plan.arena_bytes) + " bytes");
  // Zeroed in parallel: for a large arena this is the first touch of every page.
  tbb::parallel_for(tbb::blocked_range<size_t>(0, plan.arena_bytes, size_t(2) << 20),
                    [&](const tbb::blocked_range<size_t>& r) {
                      std::memset(m.arena.get() + r.begin(), 0, r.size());
                    });
  m.act.assign(g.values.size(), nullptr);
  for (size_t v = 0; v < g.values.size(); ++v)
    if (plan.offset[v] >= 0) m.act[v] = m.arena.get() + plan.offset[v];
  if (m.input_from_caller) m.act[m.input] = nullptr;

  const rt::Bindings bindings{g, m.act, m.shape1, max_batch, cache.get(),
                              m.input_from_caller ? &m.run_input : nullptr};
  m.kernels.reserve(g.nodes.size());
  std::shared_ptr<const void*> waiting;  // the latest node's next_lead, not yet set
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const rt::NodeView nv(bindings, g.nodes[i]);
    if (g.nodes[i].outputs.size() != 1) nv.error("expected exactly one output");
    rt::Compiled c = defs[i]->compile(nv);
    if (c.lead && waiting) *waiting = c.lead, waiting.reset();
    if (c.next_lead) waiting = c.next_lead;
    m.kernels.push_back(std::move(c.run));
    m.team_node.push_back(defs[i]->team_parallel);
    m.scratch_bytes = std::max(m.scratch_bytes, c.scratch_bytes);
  }
  if (m.scratch_bytes) {
    m.scratch.reset(allocate_arena(m.scratch_bytes));
    if (!m.scratch) fail(g.source, "executor: cannot allocate " + std::to_string(m.scratch_bytes) + " bytes");
  }
}

Executor::~Executor() = default;

void Executor::run(const float* input, int batch) {
  Impl& m = *impl_;
  if (batch < 1 || batch > m.max_batch)
    fail(m.g.source,
         "executor: batch " + std::to_string(batch) + " outside 1.." + std::to_string(m.max_batch));
  if (!input) fail(m.g.source, "executor: null input");
  if (m.input_from_caller) {
    m.run_input = input;  // read by the kernels during this run only
  } else {
    const size_t in_elems = size_t(batch) * size_t(numel(m.shape1[m.input]));
    std::memcpy(m.act[m.input], input, sizeof(float) * in_elems);
  }
  // Consecutive nodes whose loops a team can run share one spinning team (ops/parallel_tasks.h):
  // its helpers wait for the next layer's tasks without sleeping. With an observer (any code
  // between nodes) the run stays on TBB's threads. The isolation keeps this thread from picking
  // up outside work (a decode task of fgq-run) while it waits for its own tasks.
  const int threads = tbb::this_task_arena::max_concurrency();
  const bool teams = m.spin_team && threads > 1 && !m.observer;
  tbb::this_task_arena::isolate([&] {
    std::optional<ops::SpinTeam> team;
    for (size_t i = 0; i < m.kernels.size(); ++i) {
      if (teams && m.team_node[i]) {
        if (!team) team.emplace(threads);
      } else {
        team.reset();
      }
      m.kernels[i](batch, m.scratch.get());
      if (m.observer) {
        const Node& n = m.g.nodes[i];
        const int y = n.outputs[0];
        float* out = m.g.values[y].dtype == DType::F32 ? reinterpret_cast<float*>(m.act[y]) : nullptr;
        m.observer(n, static_cast<int>(i), out, m.shape_at(y, batch));
      }
    }
  });
}

int Executor::max_batch() const { return impl_->max_batch; }
const Shape& Executor::input_shape() const { return impl_->g.values[impl_->input].shape; }
int Executor::num_outputs() const { return static_cast<int>(impl_->g.outputs.size()); }

const float* Executor::output(int i) const {
  const int v = impl_->g.outputs.at(i);
  const Value& val = impl_->g.values[v];
  if (val.dtype != DType::F32)
    fail(impl_->g.source, "executor: output '" + val.name + "' is " + dtype_name(val.dtype) + ", not float");
  return val.is_const() ? val.constant->f.data() : reinterpret_cast<const float*>(impl_->act[v]);
}

Shape Executor::output_shape(int i, int batch) const {
  return impl_->shape_at(impl_->g.outputs.at(i), batch);
}

void Executor::set_observer(Observer obs) { impl_->observer = std::move(obs); }
const uint8_t* Executor::value_data(int v) const { return impl_->act.at(size_t(v)); }
const Graph& Executor::graph() const { return impl_->g; }
size_t Executor::arena_bytes() const { return impl_->arena_bytes; }
size_t Executor::scratch_bytes() const { return impl_->scratch_bytes; }

}  // namespace fgq
