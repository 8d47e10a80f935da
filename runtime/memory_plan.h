#pragma once
// Static memory planning for activations: every buffer gets an offset in one arena so that no two
// buffers alive at the same node step overlap, while dead buffers' space is reused.
#include <cstddef>
#include <vector>

#include "graph/ir.h"

namespace fgq {

// One buffer to place. Steps are node indices in execution order; a buffer is alive from the step
// that writes it to the last step that reads it, both inclusive.
struct BufferLifetime {
  size_t bytes = 0;
  int first = 0;  // -1: written before the first node (the graph input)
  int last = 0;
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // one per buffer, each a multiple of the alignment
  size_t arena_bytes = 0;       // a multiple of the alignment
};

inline bool lifetimes_overlap(const BufferLifetime& a, const BufferLifetime& b) {
  return a.first <= b.last && b.first <= a.last;
}

// Greedy best fit in order of first use: a buffer takes the smallest free block that holds it,
// else grows the arena.
MemoryPlan plan_memory(const std::vector<BufferLifetime>& buffers, size_t alignment = 64);

// Arena placement for the activation values of a graph.
struct GraphMemoryPlan {
  std::vector<long long> offset;  // per value id; -1 for constants and values nobody stores
  size_t arena_bytes = 0;
};

// storage_of[v]: the value whose buffer v lives in (v itself, or the value it aliases, e.g. the
// input of a Flatten or of an in-place ReLU; chains resolve to their root). bytes_of[v]: buffer
// size for roots. A root stays alive while any value stored in it is still read; graph outputs
// stay alive to the end, graph inputs are written before the first node.
GraphMemoryPlan plan_graph_memory(const Graph& g, const std::vector<int>& storage_of,
                                  const std::vector<size_t>& bytes_of, size_t alignment = 64);

// The lifetime of each value in isolation (ignoring aliasing): index of its producing node
// (-1 for graph inputs) to its last consumer, or to num_nodes for graph outputs. Constants and
// values no node produces get {first = last = -2}.
std::vector<BufferLifetime> value_lifetimes(const Graph& g);

}  // namespace fgq
