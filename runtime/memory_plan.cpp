#include "runtime/memory_plan.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <numeric>
#include <queue>

#include "graph/error.h"

namespace fgq {
namespace {

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// Free space of the arena below its current end, as disjoint blocks offset -> size, kept merged.
class FreeList {
 public:
  void release(size_t off, size_t size) {
    auto next = blocks_.lower_bound(off);
    if (next != blocks_.end() && off + size == next->first) {  // merge with the block after
      size += next->second;
      next = blocks_.erase(next);
    }
    if (next != blocks_.begin()) {  // merge with the block before
      auto prev = std::prev(next);
      if (prev->first + prev->second == off) {
        prev->second += size;
        return;
      }
    }
    blocks_.emplace(off, size);
  }

  // Smallest block that holds `size`; ties go to the lowest offset. Returns false if none fits.
  bool take_best_fit(size_t size, size_t* off) {
    auto best = blocks_.end();
    for (auto it = blocks_.begin(); it != blocks_.end(); ++it)
      if (it->second >= size && (best == blocks_.end() || it->second < best->second)) best = it;
    if (best == blocks_.end()) return false;
    *off = best->first;
    const size_t rest = best->second - size;
    const size_t rest_off = best->first + size;
    blocks_.erase(best);
    if (rest) blocks_.emplace(rest_off, rest);
    return true;
  }

  // Removes and returns the size of a free block ending exactly at `end` (0 if none), so the
  // arena can grow from it instead of leaving it stranded.
  size_t take_tail(size_t end) {
    if (blocks_.empty()) return 0;
    auto last = std::prev(blocks_.end());
    if (last->first + last->second != end) return 0;
    const size_t size = last->second;
    blocks_.erase(last);
    return size;
  }

 private:
  std::map<size_t, size_t> blocks_;
};

}  // namespace

MemoryPlan plan_memory(const std::vector<BufferLifetime>& buffers, size_t alignment) {
  MemoryPlan plan;
  plan.offsets.assign(buffers.size(), 0);
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return buffers[a].first < buffers[b].first; });

  // Live buffers by last use, earliest first, so the dead ones pop off the top.
  auto later = [&](size_t a, size_t b) { return buffers[a].last > buffers[b].last; };
  std::priority_queue<size_t, std::vector<size_t>, decltype(later)> live(later);
  FreeList free_list;
  for (size_t b : order) {
    const BufferLifetime& buf = buffers[b];
    if (buf.last < buf.first) fail("memory plan", "buffer ends before it starts");
    while (!live.empty() && buffers[live.top()].last < buf.first) {
      const size_t d = live.top();
      live.pop();
      free_list.release(plan.offsets[d],
                        round_up(std::max<size_t>(buffers[d].bytes, 1), alignment));
    }
    const size_t size = round_up(std::max<size_t>(buf.bytes, 1), alignment);
    size_t off = 0;
    if (!free_list.take_best_fit(size, &off)) {
      off = plan.arena_bytes - free_list.take_tail(plan.arena_bytes);
      plan.arena_bytes = off + size;
    }
    plan.offsets[b] = off;
    live.push(b);
  }
  return plan;
}

std::vector<BufferLifetime> value_lifetimes(const Graph& g) {
  const int n_nodes = static_cast<int>(g.nodes.size());
  std::vector<BufferLifetime> life(g.values.size(), BufferLifetime{0, -2, -2});
  for (int v : g.inputs) life[v].first = life[v].last = -1;
  for (int i = 0; i < n_nodes; ++i) {
    for (int v : g.nodes[i].inputs)
      if (v >= 0 && life[v].first != -2) life[v].last = std::max(life[v].last, i);
    for (int v : g.nodes[i].outputs)
      if (!g.values[v].is_const()) life[v].first = life[v].last = i;
  }
  for (int v : g.outputs)
    if (life[v].first != -2) life[v].last = n_nodes;
  return life;
}

GraphMemoryPlan plan_graph_memory(const Graph& g, const std::vector<int>& storage_of,
                                  const std::vector<size_t>& bytes_of, size_t alignment) {
  const size_t n = g.values.size();
  if (storage_of.size() != n || bytes_of.size() != n)
    fail(g.source, "memory plan: storage/size tables do not match the graph");
  auto root_of = [&](int v) {
    for (size_t hops = 0; storage_of[v] != v; ++hops) {
      if (hops > n)
        fail(g.source, "memory plan: aliasing cycle at value '" + g.values[v].name + "'");
      v = storage_of[v];
    }
    return v;
  };

  // A root lives from its own first step to the last step any value stored in it is read.
  const std::vector<BufferLifetime> life = value_lifetimes(g);
  std::vector<BufferLifetime> root_life(n, BufferLifetime{0, -2, -2});
  for (size_t v = 0; v < n; ++v) {
    if (life[v].first == -2) continue;
    const int r = root_of(static_cast<int>(v));
    if (life[r].first == -2)
      fail(g.source,
           "memory plan: value '" + g.values[v].name + "' aliases a value without storage");
    BufferLifetime& rl = root_life[r];
    if (rl.first == -2) rl = BufferLifetime{bytes_of[r], life[r].first, life[r].last};
    rl.last = std::max(rl.last, life[v].last);
  }

  std::vector<int> roots;
  std::vector<BufferLifetime> buffers;
  for (size_t r = 0; r < n; ++r)
    if (root_life[r].first != -2) {
      roots.push_back(static_cast<int>(r));
      buffers.push_back(root_life[r]);
    }
  const MemoryPlan mp = plan_memory(buffers, alignment);

  GraphMemoryPlan plan;
  plan.arena_bytes = mp.arena_bytes;
  plan.offset.assign(n, -1);
  for (size_t k = 0; k < roots.size(); ++k)
    plan.offset[roots[k]] = static_cast<long long>(mp.offsets[k]);
  for (size_t v = 0; v < n; ++v)
    if (life[v].first != -2) plan.offset[v] = plan.offset[root_of(static_cast<int>(v))];
  return plan;
}

}  // namespace fgq
