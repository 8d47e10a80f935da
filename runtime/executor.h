#pragma once
// Runs a Graph node by node over a whole batch. Activations live in one arena planned at
// construction (liveness-based offsets, sized for max_batch): no allocation per inference.
#include <functional>
#include <memory>
#include <vector>

#include "graph/ir.h"

namespace fgq {

namespace rt {
class KernelCache;
}

class Executor {
 public:
  // The graph must have exactly one float activation input (N,C,H,W). Takes a copy of the graph
  // (constants are shared, not copied). Objects derived from the constants (packed integer
  // weights) are made once per `cache`: executors of one model given the same cache share them.
  Executor(const Graph& g, int max_batch, std::shared_ptr<rt::KernelCache> cache = nullptr);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // input: batch x (C*H*W) floats, batch <= max_batch. Returns when all outputs are ready.
  void run(const float* input, int batch);

  int max_batch() const;
  const Shape& input_shape() const;           // dim 0 = max_batch
  int num_outputs() const;
  const float* output(int i) const;           // valid until the next run(); float outputs only
  Shape output_shape(int i, int batch) const;  // dim 0 = batch

  // Called after each node with its output over the whole batch (mutable: a calibration pass
  // may correct the values in place before later nodes read them). out is null when the output
  // is not float (integer tensors are stored NHWC, see ops/qtypes.h).
  using Observer = std::function<void(const Node& node, int node_index, float* out,
                                      const Shape& shape)>;
  void set_observer(Observer obs);

  // Where activation value v (an id of graph()) is stored: float NCHW, or integer NHWC with
  // padded channels (ops/qtypes.h); null for values nobody computes and for the graph input
  // when its readers take it from the caller's buffer (an integer network's input
  // quantization). Valid until the next run().
  const uint8_t* value_data(int v) const;

  const Graph& graph() const;
  size_t arena_bytes() const;
  size_t scratch_bytes() const;  // the kernels' shared scratch (not part of the arena)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fgq
