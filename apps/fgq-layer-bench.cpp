// fgq-layer-bench: ResNet-50's integer convolutions one layer at a time, each run alone in a loop,
// in % of this machine's measured int8 peak: how fast the kernels are when nothing else is
// running (fgq-bench measures the same layers inside the network). Three conditions per layer:
//   warm      the same layer again and again: weights, input and output stay in the caches;
//   cold w    the layer's weights cycled through copies of at least --cold-mb MB, so every run
//             reads them from memory as the network does (input and output stay warm);
//   cold act  warm weights, the input, output and residual cycled through sets of at least
//             --cold-mb MB: the output lines are not in cache before the layer writes them.
//   fgq-layer-bench [--threads 2] [--isa avx512vnni] [--reps 200] [--cold-mb 48] [--layer NAME]
// Ternary weights (FGQ N=4: random codes and levels) kept resident as on the integer pipeline,
// u8 activations, ReLU outputs (u8) and, where the network adds a residual, a u8 residual.
// Reports median and best time per condition; exit 1 on a usage error, 2 on an --isa this CPU
// cannot run.
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "graph/error.h"
#include "ops/cpu_features.h"
#include "ops/cpu_peak.h"
#include "ops/qconv/qconv.h"

namespace {

using fgq::ops::QConvKernel;
using fgq::ops::QConvParams;

struct Shape {
  const char* name;  // a ResNet-50 layer of this shape (caffe-style, stride in the 1x1 projections)
  int C, H, K, kernel, stride;
  bool residual;
};

// The distinct shapes of ResNet-50's convolutions at batch 1 (224 x 224).
const Shape kShapes[] = {
    {"conv1 (7x7/2, 3->64)", 3, 224, 64, 7, 2, false},
    {"res2a_branch2a (1x1, 64->64, 56)", 64, 56, 64, 1, 1, false},
    {"res2b_branch2a (1x1, 256->64, 56)", 256, 56, 64, 1, 1, false},
    {"res2b_branch2b (3x3, 64, 56)", 64, 56, 64, 3, 1, false},
    {"res2a_branch2c (1x1, 64->256, 56)", 64, 56, 256, 1, 1, false},
    {"res2b_branch2c (1x1, 64->256, 56, +res)", 64, 56, 256, 1, 1, true},
    {"res3a_branch1 (1x1/2, 256->512, +res)", 256, 56, 512, 1, 2, true},
    {"res3b_branch2b (3x3, 128, 28)", 128, 28, 128, 3, 1, false},
    {"res3b_branch2c (1x1, 128->512, 28, +res)", 128, 28, 512, 1, 1, true},
    {"res4b_branch2a (1x1, 1024->256, 14)", 1024, 14, 256, 1, 1, false},
    {"res4b_branch2b (3x3, 256, 14)", 256, 14, 256, 3, 1, false},
    {"res4b_branch2c (1x1, 256->1024, 14, +res)", 256, 14, 1024, 1, 1, true},
    {"res5b_branch2a (1x1, 2048->512, 7)", 2048, 7, 512, 1, 1, false},
    {"res5b_branch2b (3x3, 512, 7)", 512, 7, 512, 3, 1, false},
    {"res5b_branch2c (1x1, 512->2048, 7, +res)", 512, 7, 2048, 1, 1, true},
};

struct Timing {
  double median_us = 0, best_us = 0;
};

Timing time_runs(int reps, const std::function<void(int)>& run) {
  std::vector<double> us;
  for (int i = 0; i < reps + reps / 10; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    run(i);
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= reps / 10) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us.front()};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"fgq-layer-bench: ResNet-50's integer convolutions, each alone, warm, with cold weights and "
                 "with cold activations"};
  int threads = 2, reps = 200, cold_mb = 48;
  std::string isa_name, only;
  cli.add_option("--threads", threads, "TBB threads")->check(CLI::Range(1, 1024));
  cli.add_option("--isa", isa_name, "scalar | avx2 | avx512vnni (default: the best this CPU runs)");
  cli.add_option("--reps", reps, "timed runs per layer and condition")->check(CLI::Range(10, 100000));
  cli.add_option("--cold-mb", cold_mb,
                 "weight copies, and activation sets, cycled for the cold runs, in MB (0: no cold runs)")
      ->check(CLI::Range(0, 4096));
  cli.add_option("--layer", only, "only the layers whose name contains this");
  CLI11_PARSE(cli, argc, argv);

  fgq::ops::Isa isa;
  try {
    isa = isa_name.empty() ? fgq::ops::active_isa() : fgq::ops::parse_isa(isa_name);
    if (!fgq::ops::cpu_supports(isa)) fgq::fail("fgq-layer-bench", std::string("this CPU cannot run --isa ") + isa_name);
  } catch (const fgq::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, size_t(threads));
  double peak = 0;
  if (const auto loop = fgq::ops::int8_peak_loop(isa))
    peak = fgq::ops::measure_peak(*loop, threads, 0.05, 3).total;
  std::printf("fgq-layer-bench: %s kernels, %d thread%s, int8 peak %.1f GMAC/s (%s), %d runs per condition\n",
              fgq::ops::isa_name(isa), threads, threads == 1 ? "" : "s", peak,
              peak > 0 ? "measured now" : "none on this path", reps);
  std::printf("%-44s %8s  %10s %7s %7s  %10s %7s %7s  %10s %7s %7s\n", "layer", "MMAC", "warm us", "%peak",
              "best%", "cold w us", "%peak", "best%", "cold act us", "%peak", "best%");

  std::mt19937 rng(1);
  for (const Shape& s : kShapes) {
    if (!only.empty() && std::string(s.name).find(only) == std::string::npos) continue;
    QConvParams p;
    p.g.C = s.C, p.g.H = p.g.W = s.H, p.g.K = s.K, p.g.KH = p.g.KW = s.kernel;
    p.g.SH = p.g.SW = s.stride;
    p.g.PT = p.g.PL = p.g.PB = p.g.PR = s.kernel / 2;
    p.in_zero = s.C == 3 ? 128 : 0;  // the image: signed, stored as u8 + 128
    p.has_residual = s.residual, p.res_scale = 0.5f;
    p.clamp_lo = 0, p.clamp_hi = 255;
    const int64_t taps = int64_t(s.kernel) * s.kernel, n = int64_t(s.K) * s.C * taps;
    std::vector<uint8_t> codes(size_t((n + 3) / 4)), levels(size_t(s.K * ((s.C + 3) / 4) * taps));
    for (auto& c : codes) c = uint8_t((rng() % 3) | (rng() % 3) << 2 | (rng() % 3) << 4 | (rng() % 3) << 6);
    for (auto& l : levels) l = uint8_t(rng() % 128);
    const std::vector<float> mult(size_t(s.K), 1e-3f), bias(size_t(s.K), 3.f);
    const fgq::ops::QConvTernaryWeights tw{codes.data(), levels.data(), 4};
    auto make = [&] { return fgq::ops::make_qconv_ternary(isa, p, tw, mult.data(), bias.data(), true); };
    const std::shared_ptr<const QConvKernel> k = make();
    const int copies = cold_mb == 0 ? 0
                       : int(std::max<size_t>(2, (size_t(cold_mb) << 20) / fgq::ops::qconv_packed_bytes(*k) + 1));
    std::vector<std::shared_ptr<const QConvKernel>> cold;
    for (int c = 0; c < copies; ++c) cold.push_back(make());

    // Activations: input, output and residual, in as many sets as --cold-mb holds (at least 2):
    // the warm and cold-weight runs use set 0, the cold-activation runs cycle through them all,
    // as a layer in the network finds its input, residual and output lines beyond its caches.
    // Each buffer 64-byte aligned, as in the executor's arena (a vector's 16-byte alignment had
    // every 64-byte store of some layers straddle two lines).
    const int64_t OH = p.g.OH(), OW = p.g.OW();
    const auto round64 = [](size_t b) { return (b + 63) / 64 * 64; };
    const size_t x_bytes = size_t(s.H) * s.H * fgq::ops::qpixel_bytes(fgq::ops::QType::U8, s.C);
    const size_t y_bytes = size_t(OH * OW) * fgq::ops::qpixel_bytes(fgq::ops::QType::U8, s.K);
    const size_t y_off = round64(x_bytes), res_off = y_off + round64(y_bytes);
    const size_t set_bytes = res_off + (s.residual ? round64(y_bytes) : 0);
    const size_t sets = cold_mb == 0 ? 1 : std::max<size_t>(2, (size_t(cold_mb) << 20) / set_bytes + 1);
    std::unique_ptr<uint8_t, decltype(&std::free)> acts(
        static_cast<uint8_t*>(std::aligned_alloc(64, sets * set_bytes)), &std::free);
    const size_t sb = fgq::ops::qconv_scratch_bytes(*k, 1);
    std::unique_ptr<void, decltype(&std::free)> scratch(sb ? std::aligned_alloc(64, round64(sb)) : nullptr, &std::free);
    if (!acts || (sb && !scratch)) {
      std::fprintf(stderr, "fgq-layer-bench: cannot allocate %zu MB of activations for %s (--cold-mb %d)\n",
                   (sets * set_bytes) >> 20, s.name, cold_mb);
      return 1;
    }
    for (size_t i = 0; i < sets * set_bytes; ++i) acts.get()[i] = uint8_t(rng() % 64);
    auto run = [&](const QConvKernel& kk, size_t set = 0) {
      uint8_t* a = acts.get() + set * set_bytes;
      fgq::ops::qconv_run(kk, 1, a, s.residual ? a + res_off : nullptr, a + y_off, scratch.get());
    };
    const double macs = double(fgq::ops::qconv_macs(*k, 1));
    const auto pct = [&](double us) { return peak > 0 ? 100.0 * macs / (us * 1e-6) / (peak * 1e9) : 0.0; };
    tbb::task_arena arena(threads);
    Timing warm, cool, cool_act;
    arena.execute([&] {
      warm = time_runs(reps, [&](int) { run(*k); });
      if (copies) cool = time_runs(reps, [&](int i) { run(*cold[size_t(i % copies)]); });
      if (sets > 1) cool_act = time_runs(reps, [&](int i) { run(*k, size_t(i) % sets); });
    });
    std::printf("%-44s %8.1f  %10.1f %7.1f %7.1f", s.name, macs / 1e6, warm.median_us, pct(warm.median_us),
                pct(warm.best_us));
    if (copies)
      std::printf("  %10.1f %7.1f %7.1f  %10.1f %7.1f %7.1f\n", cool.median_us, pct(cool.median_us),
                  pct(cool.best_us), cool_act.median_us, pct(cool_act.median_us), pct(cool_act.best_us));
    else
      std::printf("\n");
  }
  return 0;
}
