#pragma once
// The machine's own arithmetic peak, measured: tight loops of independent multiply-accumulate
// instructions (no loads, no stores, enough accumulators to hide the latency) run on T threads
// at once, so kernels can be reported as a fraction of what this CPU, under its current load and
// clocks, actually sustains. Peaks differ between machines (one or two vpdpbusd per cycle...),
// so only ratios to a peak measured in the same run mean anything.
//
// Loops (each in the ISA file compiled for it: cpu_peak_avx512vnni.cpp, cpu_peak_avx2.cpp):
//   vpdpbusd-zmm    64 u8*s8 MACs per instruction   int8 peak of the avx512vnni qconv path
//   vpmaddubsw-ymm  32 u8*s8 MACs per instruction   int8 peak of an AVX2 CPU (saturating int16
//                                                   pairs; the avx2 qconv path, exact, uses
//                                                   vpmaddwd instead: see below)
//   vpmaddwd-ymm    16 s16*s16 MACs per instruction the instruction the avx2 qconv path runs
//   vfmadd-zmm      16 FP32 FMAs per instruction
//   vfmadd-ymm       8 FP32 FMAs per instruction
#include <optional>
#include <string>
#include <vector>

#include "ops/cpu_features.h"

namespace fgq::ops {

enum class PeakLoop { Vpdpbusd512, Vpmaddubsw256, Vpmaddwd256, Fma512, Fma256 };

const char* peak_loop_name(PeakLoop loop);       // "vpdpbusd-zmm", ...
int peak_loop_ops_per_instruction(PeakLoop loop);  // MACs (FMAs) one instruction does
bool peak_loop_supported(PeakLoop loop);          // this CPU (cpu_supports) can run it

// The int8 dot-product loop of an integer-kernel path: avx512vnni -> vpdpbusd-zmm, avx2 ->
// vpmaddubsw-ymm, scalar -> none (no SIMD dot product: no meaningful peak).
std::optional<PeakLoop> int8_peak_loop(Isa isa);
// The FMA loop of the FP32 kernels: as wide as both this build (the FP32 kernels' compile flags,
// e.g. -march=native) and this CPU allow: vfmadd-zmm, vfmadd-ymm, or none (SSE-only build).
std::optional<PeakLoop> fp32_peak_loop();

struct PeakResult {
  PeakLoop loop{};
  int threads = 0;
  double seconds = 0;                 // timed length of each thread's run (best trial)
  double total = 0;                   // G multiply-adds per second, all threads together
  std::vector<double> per_thread;     // G multiply-adds per second of each thread
};

// Runs `loop` on `threads` std::threads started together (each spins on a start flag until all
// are ready), each for about `seconds` after a short warm-up; `trials` such runs, the best total
// kept (a shared machine only ever makes a run slower). Throws fgq::Error when this CPU cannot
// run the loop or the arguments are out of range (threads 1..1024, seconds > 0, trials >= 1).
PeakResult measure_peak(PeakLoop loop, int threads, double seconds = 0.05, int trials = 1);

}  // namespace fgq::ops
