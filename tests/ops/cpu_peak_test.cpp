// ops/cpu_peak: the peak loops run, return plausible positive rates, and refuse what this CPU
// cannot do. No speed is asserted (shared machines, other CPUs).
#include <catch2/catch.hpp>

#include <string>

#include "fgq/error.h"
#include "ops/cpu_peak.h"

using fgq::ops::Isa;
using fgq::ops::PeakLoop;

TEST_CASE("cpu_peak: names, widths and the loop of each path") {
  CHECK(std::string(fgq::ops::peak_loop_name(PeakLoop::Vpdpbusd512)) == "vpdpbusd-zmm");
  CHECK(std::string(fgq::ops::peak_loop_name(PeakLoop::Vpmaddubsw256)) == "vpmaddubsw-ymm");
  CHECK(std::string(fgq::ops::peak_loop_name(PeakLoop::Fma512)) == "vfmadd-zmm");
  CHECK(fgq::ops::peak_loop_ops_per_instruction(PeakLoop::Vpdpbusd512) == 64);
  CHECK(fgq::ops::peak_loop_ops_per_instruction(PeakLoop::Vpmaddubsw256) == 32);
  CHECK(fgq::ops::peak_loop_ops_per_instruction(PeakLoop::Vpmaddwd256) == 16);
  CHECK(fgq::ops::peak_loop_ops_per_instruction(PeakLoop::Fma512) == 16);
  CHECK(fgq::ops::peak_loop_ops_per_instruction(PeakLoop::Fma256) == 8);
  CHECK(fgq::ops::int8_peak_loop(Isa::Avx512Vnni) == PeakLoop::Vpdpbusd512);
  CHECK(fgq::ops::int8_peak_loop(Isa::Avx2) == PeakLoop::Vpmaddubsw256);
  CHECK_FALSE(fgq::ops::int8_peak_loop(Isa::Scalar).has_value());
  if (const auto f = fgq::ops::fp32_peak_loop()) CHECK(fgq::ops::peak_loop_supported(*f));
}

TEST_CASE("cpu_peak: every supported loop measures a positive rate on 1 and 2 threads") {
  for (PeakLoop loop : {PeakLoop::Vpdpbusd512, PeakLoop::Fma512, PeakLoop::Vpmaddubsw256,
                        PeakLoop::Vpmaddwd256, PeakLoop::Fma256}) {
    INFO(fgq::ops::peak_loop_name(loop));
    if (!fgq::ops::peak_loop_supported(loop)) {
      CHECK_THROWS_AS(fgq::ops::measure_peak(loop, 1, 0.005), fgq::Error);
      continue;
    }
    for (int threads : {1, 2}) {
      const fgq::ops::PeakResult r = fgq::ops::measure_peak(loop, threads, 0.005, 2);
      CHECK(r.loop == loop);
      CHECK(r.threads == threads);
      REQUIRE(r.per_thread.size() == size_t(threads));
      double sum = 0;
      for (double g : r.per_thread) {
        CHECK(g > 0);
        sum += g;
      }
      CHECK(r.total == Approx(sum));
      CHECK(r.seconds >= 0.005);
      // Sanity, not speed: no CPU does 10^5 G multiply-adds per second per thread.
      CHECK(r.total < 1e5 * threads);
    }
  }
}

TEST_CASE("cpu_peak: bad arguments are an fgq::Error") {
  const auto loop = fgq::ops::fp32_peak_loop();
  if (!loop) return;
  CHECK_THROWS_AS(fgq::ops::measure_peak(*loop, 0, 0.01), fgq::Error);
  CHECK_THROWS_AS(fgq::ops::measure_peak(*loop, 1, 0), fgq::Error);
  CHECK_THROWS_AS(fgq::ops::measure_peak(*loop, 1, 0.01, 0), fgq::Error);
}
