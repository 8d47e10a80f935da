// fgq-bench --timeline's recorder (apps/bench_timeline.h): how a run's layer and task spans turn
// into shares of the threads' time, on a clock the test sets.
#include <catch2/catch.hpp>

#include <tbb/task_arena.h>

#include "apps/bench_timeline.h"

namespace {

int64_t g_now = 0;
int64_t test_clock() { return g_now; }

// One run on the recorder: layer 1 from 0 to 100 ns with tasks [10, 50) and [60, 80), layer 2
// from 100 to 200 ns without a task (a layer the calling thread ran alone would record its tasks
// too; this one stands for time the thread spent waiting).
void one_run(fgq::bench::TimelineRecorder& rec, int64_t base) {
  using T = fgq::ops::QConvTimeline;
  auto at = [&](int64_t t, T::Event e) { g_now = base + t, rec.mark(e); };
  rec.begin_run();
  at(0, T::kLayerBegin);
  at(10, T::kTaskBegin);
  at(50, T::kTaskEnd);
  at(60, T::kTaskBegin);
  at(80, T::kTaskEnd);
  at(100, T::kLayerEnd);
  at(100, T::kLayerBegin);
  at(200, T::kLayerEnd);
  rec.end_run();
}

}  // namespace

TEST_CASE("timeline: layer and task spans become shares of the threads' time") {
  tbb::task_arena arena(1);  // the recorder files events by the thread's slot in its arena
  arena.execute([] {
    fgq::bench::TimelineRecorder rec(1, test_clock);
    one_run(rec, 1000);
    one_run(rec, 5000);
    const fgq::bench::TimelineSummary s = rec.summary({"first"});
    CHECK(s.runs == 2);
    CHECK(s.threads == 1);
    CHECK(s.run_ms == Approx(200e-6));
    CHECK(s.layers_ms == Approx(200e-6));
    REQUIRE(s.layers.size() == 2);
    CHECK(s.layers[0].name == "first");
    CHECK(s.layers[1].name == "#2");  // past the names given
    CHECK(s.layers[0].wall_us == Approx(0.1));
    // Layer 1: 60 ns computing, 10 before the first task, 20 after the last, 10 between.
    CHECK(s.layers[0].share.busy == Approx(60));
    CHECK(s.layers[0].share.start == Approx(10));
    CHECK(s.layers[0].share.end == Approx(20));
    CHECK(s.layers[0].share.gaps == Approx(10));
    // Layer 2: no task at all, all of it waiting.
    CHECK(s.layers[1].share.busy == Approx(0));
    CHECK(s.layers[1].share.start == Approx(100));
    // Both layers together.
    CHECK(s.share.busy == Approx(30));
    CHECK(s.share.start == Approx(55));
    CHECK(s.share.end == Approx(10));
    CHECK(s.share.gaps == Approx(5));
    CHECK(rec.dropped() == 0);
  });
}
