#pragma once
// Runs a Graph node by node over a whole batch. Activations live in one arena planned at
// construction (liveness-based offsets, sized for max_batch): no allocation per inference.
#include <functional>
#include <memory>
#include <vector>

#include "graph/ir.h"

namespace fgq {

class Executor {
 public:
  // The graph must have exactly one activation input (N,C,H,W). Takes a copy of the graph.
  Executor(const Graph& g, int max_batch);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // input: batch x (C*H*W) floats, batch <= max_batch. Returns when all outputs are ready.
  void run(const float* input, int batch);

  int max_batch() const;
  const Shape& input_shape() const;           // dim 0 = max_batch
  int num_outputs() const;
  const float* output(int i) const;           // valid until the next run()
  Shape output_shape(int i, int batch) const;  // dim 0 = batch

  // Called after each node with its output over the whole batch (mutable: a calibration pass
  // may correct the values in place before later nodes read them).
  using Observer = std::function<void(const Node& node, int node_index, float* out,
                                      const Shape& shape)>;
  void set_observer(Observer obs);

  const Graph& graph() const;
  size_t arena_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fgq
