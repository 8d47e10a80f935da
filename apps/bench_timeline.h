#pragma once
// fgq-bench --timeline: where the threads' time goes inside the integer convolutions. The
// recorder is qconv_run's measurement hook (ops/qconv/qconv.h): per run it notes when each layer
// starts and ends on the calling thread and when each task starts and ends on the thread that
// runs it. The summary splits the threads' time in the layers (threads x a layer's wall time)
// into computing, waiting before the thread's first task (a worker's wake-up, the first conv's
// input conversion, or no task at all: a layer too small for two threads), idle after its last
// task (imbalance at the layer's end) and between tasks.
#include <cstdint>
#include <string>
#include <vector>

#include "ops/qconv/qconv.h"

namespace fgq::bench {

struct TimelineShares {  // percent of threads x wall time
  double busy = 0, start = 0, end = 0, gaps = 0;
};

struct TimelineLayer {
  std::string name;
  double wall_us = 0;     // median over the runs
  TimelineShares share;  // of the time summed over the runs
};

struct TimelineSummary {
  int runs = 0, threads = 0;
  double run_ms = 0;     // median: from the first layer's start to the last one's end
  double layers_ms = 0;  // median: the layers' wall times summed
  TimelineShares share;  // of the layers' time summed over the runs
  std::vector<TimelineLayer> layers;  // in run order
};

class TimelineRecorder : public ops::QConvTimeline {
 public:
  // clock: nanoseconds (steady_clock when null; tests give their own).
  explicit TimelineRecorder(int threads, int64_t (*clock)() = nullptr);
  // Around each recorded run (nothing may run qconv layers outside them while installed).
  void begin_run();
  void end_run();
  void mark(Event e) override;
  // layer_names: the QConv nodes in run order (a layer past the list is "#index").
  TimelineSummary summary(const std::vector<std::string>& layer_names) const;
  int64_t dropped() const { return dropped_; }  // events of threads past `threads`

 private:
  struct Stamp {  // an event and when it happened
    int64_t ns;
    Event kind;
  };
  struct LayerRun {  // one layer in one run, nanoseconds
    int64_t wall = 0, busy = 0, start = 0, end = 0;
  };
  int threads_;
  int64_t (*clock_)();
  std::vector<std::vector<Stamp>> events_;  // per thread slot, the current run
  std::vector<std::vector<LayerRun>> runs_;  // [run][layer]
  std::vector<int64_t> run_ns_;
  int64_t dropped_ = 0;
};

}  // namespace fgq::bench
