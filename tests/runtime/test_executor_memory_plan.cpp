// The activation memory planner: placement never lets live buffers share bytes, and reuse makes
// the arena smaller than giving every buffer its own space.
#include <catch2/catch.hpp>
#include <random>

#include "graph/error.h"
#include "runtime/memory_plan.h"

namespace {

using fgq::BufferLifetime;

size_t padded(size_t bytes) { return (std::max<size_t>(bytes, 1) + 63) / 64 * 64; }

bool bytes_overlap(size_t off_a, size_t size_a, size_t off_b, size_t size_b) {
  return off_a < off_b + size_b && off_b < off_a + size_a;
}

void check_plan(const std::vector<BufferLifetime>& bufs, const fgq::MemoryPlan& plan) {
  REQUIRE(plan.offsets.size() == bufs.size());
  REQUIRE(plan.arena_bytes % 64 == 0);
  for (size_t a = 0; a < bufs.size(); ++a) {
    REQUIRE(plan.offsets[a] % 64 == 0);
    REQUIRE(plan.offsets[a] + bufs[a].bytes <= plan.arena_bytes);
    for (size_t b = a + 1; b < bufs.size(); ++b)
      if (fgq::lifetimes_overlap(bufs[a], bufs[b]))
        REQUIRE_FALSE(
            bytes_overlap(plan.offsets[a], bufs[a].bytes, plan.offsets[b], bufs[b].bytes));
  }
}

// A random DAG in topological order: value 0 is the input, node i reads 1-2 earlier values and
// writes value i+1; a few values are graph outputs.
fgq::Graph random_graph(std::mt19937& rng, int n_nodes) {
  fgq::Graph g;
  g.source = "random";
  g.inputs.push_back(g.add_value("in", {1, 4}));
  g.add_const("w", fgq::Tensor::f32({4}, {1, 2, 3, 4}));  // constants take no arena space
  for (int i = 0; i < n_nodes; ++i) {
    fgq::Node n;
    n.op = "Op";
    n.name = "n" + std::to_string(i);
    std::vector<int> activations;
    for (size_t v = 0; v < g.values.size(); ++v)
      if (!g.values[v].is_const()) activations.push_back(static_cast<int>(v));
    // Mostly recent values, so lifetimes vary between short and long.
    std::geometric_distribution<int> back(0.4);
    for (int k = 0, ins = 1 + int(rng() % 2); k < ins; ++k) {
      const int from_end = std::min<int>(back(rng), int(activations.size()) - 1);
      n.inputs.push_back(activations[activations.size() - 1 - from_end]);
    }
    if (rng() % 5 == 0) n.inputs.push_back(1);  // the constant
    n.outputs.push_back(g.add_value("v" + std::to_string(i)));
    g.nodes.push_back(n);
  }
  g.outputs.push_back(static_cast<int>(g.values.size()) - 1);
  if (n_nodes > 3) g.outputs.push_back(static_cast<int>(g.values.size()) - 3);
  return g;
}

}  // namespace

TEST_CASE("memory_plan: random lifetimes never share bytes while both are live") {
  std::mt19937 rng(42);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + int(rng() % 40);
    std::vector<BufferLifetime> bufs;
    for (int i = 0; i < n; ++i) {
      const int first = int(rng() % 30) - 1;
      const int last = first + int(rng() % 8);
      bufs.push_back({size_t(rng() % 5000), first, last});
    }
    check_plan(bufs, fgq::plan_memory(bufs));
  }
}

TEST_CASE("memory_plan: a chain ping-pongs between two buffers") {
  std::vector<BufferLifetime> bufs;
  for (int i = 0; i < 10; ++i) bufs.push_back({1000, i - 1, i});  // written at i-1, read at i
  const fgq::MemoryPlan plan = fgq::plan_memory(bufs);
  check_plan(bufs, plan);
  CHECK(plan.arena_bytes == 2 * padded(1000));
}

TEST_CASE("memory_plan: a freed block is reused by a later smaller buffer (best fit)") {
  // Big A and small C die at step 1 (B between them lives on); D (small) should take C's slot,
  // not A's or new space.
  std::vector<BufferLifetime> bufs = {{4096, 0, 1}, {4096, 0, 5}, {128, 0, 1}, {128, 2, 3}};
  const fgq::MemoryPlan plan = fgq::plan_memory(bufs);
  check_plan(bufs, plan);
  CHECK(plan.offsets[3] == plan.offsets[2]);
  CHECK(plan.arena_bytes == 4096 + 128 + 4096);
}

TEST_CASE("memory_plan: a buffer that ends before it starts is an error") {
  CHECK_THROWS_AS(fgq::plan_memory({{64, 3, 2}}), fgq::Error);
}

TEST_CASE("memory_plan: value lifetimes follow producers, consumers and graph outputs") {
  std::mt19937 rng(7);
  const fgq::Graph g = random_graph(rng, 12);
  const auto life = fgq::value_lifetimes(g);
  CHECK(life[0].first == -1);
  CHECK(life[1].first == -2);  // constant
  for (size_t i = 0; i < g.nodes.size(); ++i) CHECK(life[g.nodes[i].outputs[0]].first == int(i));
  for (int v : g.outputs) CHECK(life[v].last == int(g.nodes.size()));
}

TEST_CASE("memory_plan: random graphs with aliases keep simultaneously live values apart") {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 100; ++trial) {
    const fgq::Graph g = random_graph(rng, 2 + int(rng() % 30));
    const size_t nv = g.values.size();
    std::vector<int> storage(nv);
    std::vector<size_t> bytes(nv, 0);
    for (size_t v = 0; v < nv; ++v) {
      storage[v] = int(v);
      if (!g.values[v].is_const()) bytes[v] = 4 * (1 + rng() % 3000);
    }
    // Some single-input nodes become views of their input (chains of views included).
    for (const fgq::Node& n : g.nodes)
      if (n.inputs.size() == 1 && rng() % 2 == 0) storage[n.outputs[0]] = n.inputs[0];
    const fgq::GraphMemoryPlan plan = fgq::plan_graph_memory(g, storage, bytes);

    auto root = [&](int v) {
      while (storage[v] != v) v = storage[v];
      return v;
    };
    const auto life = fgq::value_lifetimes(g);
    CHECK(plan.offset[1] == -1);  // the constant
    for (size_t a = 0; a < nv; ++a) {
      if (g.values[a].is_const()) continue;
      REQUIRE(plan.offset[a] >= 0);
      CHECK(plan.offset[a] == plan.offset[root(int(a))]);
      REQUIRE(size_t(plan.offset[a]) + bytes[root(int(a))] <= plan.arena_bytes);
      for (size_t b = a + 1; b < nv; ++b) {
        if (g.values[b].is_const() || root(int(a)) == root(int(b))) continue;
        if (!fgq::lifetimes_overlap(life[a], life[b])) continue;
        REQUIRE_FALSE(bytes_overlap(size_t(plan.offset[a]), bytes[root(int(a))],
                                    size_t(plan.offset[b]), bytes[root(int(b))]));
      }
    }
  }
}

TEST_CASE("memory_plan: a long chain needs far less than the naive sum") {
  fgq::Graph g;
  g.source = "chain";
  int prev = g.add_value("in");
  g.inputs.push_back(prev);
  for (int i = 0; i < 20; ++i) {
    fgq::Node n;
    n.op = "Relu";
    n.name = "r" + std::to_string(i);
    n.inputs = {prev};
    prev = g.add_value("v" + std::to_string(i));
    n.outputs = {prev};
    g.nodes.push_back(n);
  }
  g.outputs.push_back(prev);
  std::vector<int> storage(g.values.size());
  for (size_t v = 0; v < storage.size(); ++v) storage[v] = int(v);
  const std::vector<size_t> bytes(g.values.size(), 4096);
  const fgq::GraphMemoryPlan plan = fgq::plan_graph_memory(g, storage, bytes);
  CHECK(plan.arena_bytes == 2 * 4096);
  CHECK(plan.arena_bytes < 21 * 4096);
}

TEST_CASE("memory_plan: an aliasing cycle is an error naming the value") {
  fgq::Graph g;
  g.source = "cyc";
  g.inputs.push_back(g.add_value("in"));
  const int a = g.add_value("a"), b = g.add_value("b");
  g.nodes.push_back(fgq::Node{"Relu", "r0", {0}, {a}, {}});
  g.nodes.push_back(fgq::Node{"Relu", "r1", {a}, {b}, {}});
  g.outputs.push_back(b);
  const std::vector<int> storage = {0, b, a};
  try {
    fgq::plan_graph_memory(g, storage, {64, 64, 64});
    FAIL("no error");
  } catch (const fgq::Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("cyc: memory plan: aliasing cycle"));
  }
}
