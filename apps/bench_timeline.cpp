#include "bench_timeline.h"

#include <tbb/task_arena.h>

#include <algorithm>
#include <initializer_list>

#include "bench_stats.h"

namespace fgq::bench {

TimelineRecorder::TimelineRecorder(int threads, int64_t (*clock)())
    : threads_(std::max(1, threads)), clock_(clock ? clock : now_ns) {
  events_.resize(size_t(threads_));
  // Room for a run of a deep network without reallocating while it is timed.
  for (auto& e : events_) e.reserve(1 << 14);
}

void TimelineRecorder::begin_run() {
  for (auto& e : events_) e.clear();
}

void TimelineRecorder::mark(Event kind) {
  const int slot = tbb::this_task_arena::current_thread_index();
  if (slot < 0 || slot >= threads_) {
    ++dropped_;  // a thread outside the arena the recorder was made for
    return;
  }
  events_[size_t(slot)].push_back({clock_(), kind});
}

void TimelineRecorder::end_run() {
  // The layers' spans (on the calling thread, one pair per layer, in order) and every thread's
  // task spans; a task belongs to the layer whose span holds its start.
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (const auto& thread : events_) {
    int64_t open = -1;
    for (const Stamp& e : thread) {
      if (e.kind == kLayerBegin) open = e.ns;
      if (e.kind == kLayerEnd && open >= 0) spans.emplace_back(open, e.ns), open = -1;
    }
  }
  std::sort(spans.begin(), spans.end());
  if (spans.empty()) return;
  std::vector<LayerRun> run(spans.size());
  for (size_t i = 0; i < spans.size(); ++i) run[i].wall = spans[i].second - spans[i].first;
  for (const auto& thread : events_) {
    std::vector<int64_t> first(spans.size(), -1), last(spans.size(), -1);
    int64_t open = -1;
    for (const Stamp& e : thread) {
      if (e.kind == kTaskBegin) open = e.ns;
      if (e.kind != kTaskEnd || open < 0) continue;
      const auto it = std::upper_bound(spans.begin(), spans.end(), std::make_pair(open, INT64_MAX));
      if (it != spans.begin()) {
        const size_t l = size_t(it - spans.begin()) - 1;
        if (open <= spans[l].second) {
          run[l].busy += e.ns - open;
          if (first[l] < 0) first[l] = open;
          last[l] = e.ns;
        }
      }
      open = -1;
    }
    for (size_t l = 0; l < spans.size(); ++l) {
      if (first[l] < 0) {  // no task in this layer: waiting all along
        run[l].start += run[l].wall;
        continue;
      }
      run[l].start += first[l] - spans[l].first;
      run[l].end += std::max<int64_t>(0, spans[l].second - last[l]);
    }
  }
  runs_.push_back(std::move(run));
  run_ns_.push_back(spans.back().second - spans.front().first);
}

TimelineSummary TimelineRecorder::summary(const std::vector<std::string>& layer_names) const {
  TimelineSummary s;
  s.runs = int(runs_.size());
  s.threads = threads_;
  if (runs_.empty()) return s;
  // Shares of the time summed over the runs (medians of each share would not add up: a run
  // where a thread was preempted has all its loss in one share); times are medians.
  const size_t n = runs_.front().size();  // a run with another layer count is left out
  std::vector<double> run_ms, layers_ms;
  std::vector<std::vector<double>> wall(n);
  std::vector<LayerRun> sum(n);
  LayerRun all;
  for (size_t r = 0; r < runs_.size(); ++r) {
    if (runs_[r].size() != n) continue;
    int64_t w = 0;
    for (size_t l = 0; l < n; ++l) {
      const LayerRun& x = runs_[r][l];
      w += x.wall;
      wall[l].push_back(x.wall * 1e-3);
      for (LayerRun* t : {&sum[l], &all})
        t->wall += x.wall, t->busy += x.busy, t->start += x.start, t->end += x.end;
    }
    run_ms.push_back(run_ns_[r] * 1e-6);
    layers_ms.push_back(w * 1e-6);
  }
  const auto shares = [&](const LayerRun& x) {
    const double cap = double(x.wall) * threads_ / 100;
    if (cap <= 0) return TimelineShares{};
    const TimelineShares t{x.busy / cap, x.start / cap, x.end / cap, 0};
    return TimelineShares{t.busy, t.start, t.end, std::max(0.0, 100 - t.busy - t.start - t.end)};
  };
  s.run_ms = median(run_ms);
  s.layers_ms = median(layers_ms);
  s.share = shares(all);
  for (size_t l = 0; l < n; ++l)
    s.layers.push_back({l < layer_names.size() ? layer_names[l] : "#" + std::to_string(l + 1),
                        median(wall[l]), shares(sum[l])});
  return s;
}

}  // namespace fgq::bench
