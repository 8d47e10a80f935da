// The peak-measurement driver (ops/cpu_peak.h): starts T std::threads together, each running
// an ISA loop (cpu_peak_avx512vnni.cpp / cpu_peak_avx2.cpp) in chunks until its time is up.
#include "ops/cpu_peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "graph/error.h"

// The ISA files' entry points (one each): loop selector, iterations, 64-byte sink; returns the
// multiply-adds done, -1 for an unknown loop.
extern "C" int64_t fgq_cpu_peak_avx512vnni(int loop, int64_t iterations, void* sink);
extern "C" int64_t fgq_cpu_peak_avx2(int loop, int64_t iterations, void* sink);

namespace fgq::ops {
namespace {

using Clock = std::chrono::steady_clock;

// One chunk: 2^15 iterations of 12..24 instructions, ~0.1-0.5 ms on current cores: the clock is
// read rarely enough not to matter and often enough to stop close to the deadline.
constexpr int64_t kChunk = int64_t(1) << 15;

int64_t run_chunk(PeakLoop loop, void* sink) {
  switch (loop) {
    case PeakLoop::Vpdpbusd512: return fgq_cpu_peak_avx512vnni(0, kChunk, sink);
    case PeakLoop::Fma512: return fgq_cpu_peak_avx512vnni(1, kChunk, sink);
    case PeakLoop::Vpmaddubsw256: return fgq_cpu_peak_avx2(0, kChunk, sink);
    case PeakLoop::Fma256: return fgq_cpu_peak_avx2(1, kChunk, sink);
    case PeakLoop::Vpmaddwd256: return fgq_cpu_peak_avx2(2, kChunk, sink);
  }
  return -1;
}

struct ThreadResult {
  int64_t ops = 0;
  double seconds = 0;
};

// One trial: all threads spin until every one is ready, warm up (clocks, power state), then
// each times its own run.
void trial(PeakLoop loop, int threads, double seconds, std::vector<ThreadResult>& out) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  out.assign(size_t(threads), {});
  const auto body = [&](int t) {
    alignas(64) unsigned char sink[64] = {3, 0, 0, 0, 5, 0, 0, 0};
    ready.fetch_add(1, std::memory_order_acq_rel);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    const auto warm_end = Clock::now() + std::chrono::duration<double>(std::min(0.01, seconds / 4));
    while (Clock::now() < warm_end) run_chunk(loop, sink);
    const auto t0 = Clock::now();
    const auto deadline = t0 + std::chrono::duration<double>(seconds);
    int64_t ops = 0;
    Clock::time_point t1;
    do {
      ops += run_chunk(loop, sink);
      t1 = Clock::now();
    } while (t1 < deadline);
    out[size_t(t)] = {ops, std::chrono::duration<double>(t1 - t0).count()};
  };
  std::vector<std::thread> pool;
  pool.reserve(size_t(threads));
  for (int t = 0; t < threads; ++t) pool.emplace_back(body, t);
  while (ready.load(std::memory_order_acquire) < threads) std::this_thread::yield();
  go.store(true, std::memory_order_release);
  for (std::thread& th : pool) th.join();
}

}  // namespace

const char* peak_loop_name(PeakLoop loop) {
  switch (loop) {
    case PeakLoop::Vpdpbusd512: return "vpdpbusd-zmm";
    case PeakLoop::Vpmaddubsw256: return "vpmaddubsw-ymm";
    case PeakLoop::Vpmaddwd256: return "vpmaddwd-ymm";
    case PeakLoop::Fma512: return "vfmadd-zmm";
    case PeakLoop::Fma256: return "vfmadd-ymm";
  }
  return "unknown";
}

int peak_loop_ops_per_instruction(PeakLoop loop) {
  switch (loop) {
    case PeakLoop::Vpdpbusd512: return 64;
    case PeakLoop::Vpmaddubsw256: return 32;
    case PeakLoop::Vpmaddwd256: return 16;
    case PeakLoop::Fma512: return 16;
    case PeakLoop::Fma256: return 8;
  }
  return 0;
}

bool peak_loop_supported(PeakLoop loop) {
  switch (loop) {
    case PeakLoop::Vpdpbusd512:
    case PeakLoop::Fma512: return cpu_supports(Isa::Avx512Vnni);
    case PeakLoop::Vpmaddubsw256:
    case PeakLoop::Vpmaddwd256:
    case PeakLoop::Fma256: return cpu_supports(Isa::Avx2);
  }
  return false;
}

std::optional<PeakLoop> int8_peak_loop(Isa isa) {
  switch (isa) {
    case Isa::Avx512Vnni: return PeakLoop::Vpdpbusd512;
    case Isa::Avx2: return PeakLoop::Vpmaddubsw256;
    case Isa::Scalar: return std::nullopt;
  }
  return std::nullopt;
}

std::optional<PeakLoop> fp32_peak_loop() {
  // This file is compiled with the FP32 kernels' flags (the project's, e.g. -march=native), so
  // these macros say how wide their FMAs can be.
#if defined(__AVX512F__)
  if (cpu_supports(Isa::Avx512Vnni)) return PeakLoop::Fma512;
#endif
#if defined(__AVX2__) && defined(__FMA__)
  if (cpu_supports(Isa::Avx2)) return PeakLoop::Fma256;
#endif
  return std::nullopt;
}

PeakResult measure_peak(PeakLoop loop, int threads, double seconds, int trials) {
  const std::string what = std::string("peak measurement (") + peak_loop_name(loop) + ")";
  if (!peak_loop_supported(loop)) fail(what, "this CPU cannot run the loop");
  if (threads < 1 || threads > 1024) fail(what, "threads must be 1..1024");
  if (!(seconds > 0) || seconds > 60) fail(what, "seconds must be in (0, 60]");
  if (trials < 1) fail(what, "trials must be >= 1");
  PeakResult best;
  best.loop = loop;
  best.threads = threads;
  std::vector<ThreadResult> r;
  for (int k = 0; k < trials; ++k) {
    trial(loop, threads, seconds, r);
    PeakResult p;
    p.loop = loop;
    p.threads = threads;
    for (const ThreadResult& t : r) {
      const double g = t.seconds > 0 ? double(t.ops) / t.seconds * 1e-9 : 0;
      p.per_thread.push_back(g);
      p.total += g;
      p.seconds = std::max(p.seconds, t.seconds);
    }
    if (p.total > best.total) best = std::move(p);
  }
  return best;
}

}  // namespace fgq::ops
