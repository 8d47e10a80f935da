#include "ops/parallel_tasks.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace fgq::ops {
namespace {

thread_local SpinTeam* t_current = nullptr;

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// A member's share of a loop: the tasks [front, back) not taken yet, in one word so that taking
// from either end is one compare-and-swap.
struct alignas(64) Part {
  std::atomic<uint64_t> range{0};
};
uint64_t pack(uint32_t front, uint32_t back) { return uint64_t(front) << 32 | back; }

int64_t take_front(Part& p) {
  uint64_t v = p.range.load(std::memory_order_relaxed);
  for (;;) {
    const uint32_t f = uint32_t(v >> 32), b = uint32_t(v);
    if (f >= b) return -1;
    if (p.range.compare_exchange_weak(v, pack(f + 1, b), std::memory_order_acq_rel,
                                      std::memory_order_relaxed))
      return f;
  }
}

int64_t take_back(Part& p) {
  uint64_t v = p.range.load(std::memory_order_relaxed);
  for (;;) {
    const uint32_t f = uint32_t(v >> 32), b = uint32_t(v);
    if (f >= b) return -1;
    if (p.range.compare_exchange_weak(v, pack(f, b - 1), std::memory_order_acq_rel,
                                      std::memory_order_relaxed))
      return b - 1;
  }
}

// How a member waits (a helper for the next loop, the owner for a loop's last tasks): pause,
// and once it has waited 50 us yield its CPU on every turn. A network's gaps between layers and
// a layer's last task are microseconds; longer waits mean the other thread is not running (a
// helper sharing the owner's CPU, under taskset or a CPU quota, would not run for a whole slice).
class Backoff {
 public:
  void restart() { since_ = std::chrono::steady_clock::now(), turn_ = 0, yielding_ = false; }
  void wait() {
    if (++turn_ % 64 == 0) yielding_ = std::chrono::steady_clock::now() - since_ > kSpin;
    if (yielding_)
      std::this_thread::yield();
    else
      cpu_relax();
  }

 private:
  static constexpr auto kSpin = std::chrono::microseconds(50);
  std::chrono::steady_clock::time_point since_ = std::chrono::steady_clock::now();
  unsigned turn_ = 0;
  bool yielding_ = false;
};

}  // namespace

struct SpinTeam::State {
  explicit State(int threads) : parts(size_t(threads)) {}
  std::vector<Part> parts;
  // The loop: written by the owner before it publishes the parts (release), read by a member
  // only after it took a task from them (acquire), while the loop cannot end.
  int64_t n = 0;
  void (*fn)(const void*, int64_t) = nullptr;
  const void* ctx = nullptr;
  std::exception_ptr error;  // the first a task threw; under error_mu
  std::mutex error_mu;
  alignas(64) std::atomic<uint32_t> epoch{0};  // one more per loop: wakes the helpers
  alignas(64) std::atomic<int64_t> done{0};    // tasks of the loop finished
  std::atomic<int> joined{1};                  // member indices handed out (0: the owner)
  std::atomic<bool> closed{false};
  tbb::task_group helpers;
};

SpinTeam::SpinTeam(int threads)
    : threads_(std::max(1, threads)), s_(std::make_unique<State>(threads_)), outer_(t_current) {
  for (int i = 1; i < threads_; ++i) s_->helpers.run([this] { help(); });
  t_current = this;
}

SpinTeam::~SpinTeam() {
  t_current = outer_;
  s_->closed.store(true, std::memory_order_release);
  s_->helpers.wait();  // helpers never throw (work() catches)
}

SpinTeam* SpinTeam::current() { return t_current; }

void SpinTeam::run(int64_t n, void (*fn)(const void*, int64_t), const void* ctx) {
  if (n <= 0) return;
  if (in_loop_) {  // a task of this loop running a loop of its own: on this thread
    for (int64_t i = 0; i < n; ++i) fn(ctx, i);
    return;
  }
  struct Flag {
    bool& f;
    explicit Flag(bool& b) : f(b) { f = true; }
    ~Flag() { f = false; }
  } flag(in_loop_);
  State& s = *s_;
  s.n = n, s.fn = fn, s.ctx = ctx;
  s.error = nullptr;
  s.done.store(0, std::memory_order_relaxed);
  for (int j = 0; j < threads_; ++j)
    s.parts[size_t(j)].range.store(pack(uint32_t(j * n / threads_), uint32_t((j + 1) * n / threads_)),
                                   std::memory_order_release);
  s.epoch.fetch_add(1, std::memory_order_release);
  work(0);
  Backoff backoff;  // the last tasks are the helpers'
  while (s.done.load(std::memory_order_acquire) < n) backoff.wait();
  if (s.error) std::rethrow_exception(std::exchange(s.error, nullptr));
}

void SpinTeam::work(int member) {
  State& s = *s_;
  auto exec = [&s](int64_t i) {
    try {
      s.fn(s.ctx, i);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(s.error_mu);
      if (!s.error) s.error = std::current_exception();
    }
    s.done.fetch_add(1, std::memory_order_acq_rel);
  };
  for (int64_t i; (i = take_front(s.parts[size_t(member)])) >= 0;) exec(i);
  for (int k = 1; k < threads_; ++k)
    for (int64_t i; (i = take_back(s.parts[size_t((member + k) % threads_)])) >= 0;) exec(i);
}

void SpinTeam::help() {
  State& s = *s_;
  const int member = s.joined.fetch_add(1, std::memory_order_relaxed);
  if (member >= threads_) return;
  uint32_t seen = 0;
  Backoff backoff;
  while (!s.closed.load(std::memory_order_acquire)) {
    const uint32_t e = s.epoch.load(std::memory_order_acquire);
    if (e == seen) {
      backoff.wait();
      continue;
    }
    seen = e;
    work(member);
    backoff.restart();
  }
}

int parallel_threads() {
  if (const SpinTeam* t = SpinTeam::current()) return t->size();
  return std::max(1, tbb::this_task_arena::max_concurrency());
}

void parallel_tasks_impl(int64_t n, void (*fn)(const void*, int64_t), const void* ctx) {
  if (n <= 0) return;
  if (n == 1) return fn(ctx, 0);
  SpinTeam* team = SpinTeam::current();
  if (team && team->size() > 1 && n <= int64_t(UINT32_MAX)) return team->run(n, fn, ctx);
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, n, 1),
      [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t i = r.begin(); i < r.end(); ++i) fn(ctx, i);
      },
      tbb::simple_partitioner());
}

}  // namespace fgq::ops
