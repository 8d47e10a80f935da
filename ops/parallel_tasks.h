#pragma once
// The parallel loop of the integer kernels, and the spinning team it runs on during a network.
//
// TBB's workers yield and then sleep when a loop ends, and a process competing for the CPUs
// takes an idle worker's CPU while the next layer waits for it. Measured on ResNet-50 at batch 1
// (2 threads, Zen 4): with a busy loop at nice 10 on the second CPU one image went from 10 to
// 18-20 ms, against 12.1 -> 12.8 ms for ONNX Runtime, whose workers spin; on a team, 12-14 ms. A SpinTeam keeps its helpers spinning between loops for as long as it lives (the
// executor opens one for the run of an integer network); parallel_tasks hands a loop to the
// calling thread's team when it has one, else to TBB.
#include <cstdint>
#include <memory>

namespace fgq::ops {

class SpinTeam {
 public:
  // The calling thread (member 0) and threads - 1 helpers: TBB tasks in the current arena
  // that join when a TBB thread takes them (the loops never wait for them to), spin between
  // loops and leave when the team is destroyed. Makes this team the calling thread's current
  // one until then; the calling thread must destroy it.
  explicit SpinTeam(int threads);
  ~SpinTeam();
  SpinTeam(const SpinTeam&) = delete;
  SpinTeam& operator=(const SpinTeam&) = delete;

  int size() const { return threads_; }
  // Runs fn(ctx, i) for every i in [0, n) on the members that are there, and returns when all
  // have run; rethrows the first exception a task threw. Member j first takes the tasks
  // [j n / T, (j + 1) n / T) from the front, then the others' from their back, as TBB's simple
  // partitioner would hand them out.
  void run(int64_t n, void (*fn)(const void* ctx, int64_t i), const void* ctx);

  // The team the calling thread owns, or null.
  static SpinTeam* current();

 private:
  struct State;
  void help();
  void work(int member);

  int threads_;
  bool in_loop_ = false;  // the owner is inside run()
  std::unique_ptr<State> s_;
  SpinTeam* outer_;  // the calling thread's team before this one
};

// Threads a parallel loop runs on from here: the team's, else the TBB arena's.
int parallel_threads();

// body(i) for every i in [0, n): on the current SpinTeam if the calling thread has one, else on
// TBB's threads (simple partitioner, one task per i).
void parallel_tasks_impl(int64_t n, void (*fn)(const void*, int64_t), const void* ctx);

template <class F>
void parallel_tasks(int64_t n, const F& body) {
  parallel_tasks_impl(
      n, [](const void* c, int64_t i) { (*static_cast<const F*>(c))(i); }, &body);
}

// body(begin, end) over [0, n) in chunks of `grain` elements (the last one shorter).
template <class F>
void parallel_chunks(int64_t n, int64_t grain, const F& body) {
  if (n <= 0) return;
  const int64_t chunks = (n + grain - 1) / grain;
  parallel_tasks(chunks, [&](int64_t c) {
    const int64_t b = c * grain;
    body(b, b + grain < n ? b + grain : n);
  });
}

}  // namespace fgq::ops
