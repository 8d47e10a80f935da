// ops::parallel_tasks and the spinning team: every task runs exactly once, on TBB or on a team,
// loop after loop; a task's exception reaches the caller; helpers really take tasks.
#include "ops/parallel_tasks.h"

#include <catch2/catch.hpp>
#include <tbb/task_arena.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

using fgq::ops::parallel_chunks;
using fgq::ops::parallel_tasks;
using fgq::ops::parallel_threads;
using fgq::ops::SpinTeam;

namespace {

// Runs a loop of n tasks and checks each ran once.
void check_once(int64_t n) {
  std::vector<std::atomic<int>> runs(static_cast<size_t>(n));
  parallel_tasks(n, [&](int64_t i) { runs[size_t(i)].fetch_add(1); });
  for (int64_t i = 0; i < n; ++i) REQUIRE(runs[size_t(i)].load() == 1);
}

}  // namespace

TEST_CASE("parallel_tasks runs every task once without a team", "[parallel]") {
  REQUIRE(SpinTeam::current() == nullptr);
  for (int64_t n : {0, 1, 2, 7, 1000}) check_once(n);
  REQUIRE(parallel_threads() == tbb::this_task_arena::max_concurrency());
}

TEST_CASE("a spinning team runs every task once, loop after loop", "[parallel]") {
  // More members than the arena may have threads: helpers that never arrive cost nothing.
  for (int threads : {1, 2, 3, 8}) {
    SpinTeam team(threads);
    REQUIRE(SpinTeam::current() == &team);
    REQUIRE(parallel_threads() == threads);
    for (int loop = 0; loop < 500; ++loop) check_once(int64_t(loop % 37));
    check_once(100000);
  }
  REQUIRE(SpinTeam::current() == nullptr);
}

TEST_CASE("parallel_chunks covers the range in chunks of the grain", "[parallel]") {
  SpinTeam team(2);
  for (int64_t n : {1, 15, 16, 17, 1001}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    std::atomic<int> short_chunks{0};
    parallel_chunks(n, 16, [&](int64_t b, int64_t e) {
      REQUIRE(b < e);
      REQUIRE(e - b <= 16);
      if (e - b < 16) short_chunks.fetch_add(1);
      for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1);
    });
    for (auto& h : hits) REQUIRE(h.load() == 1);
    REQUIRE(short_chunks.load() == (n % 16 ? 1 : 0));
  }
}

TEST_CASE("a task's exception reaches the caller and the team goes on", "[parallel]") {
  SpinTeam team(2);
  std::atomic<int> ran{0};
  REQUIRE_THROWS_WITH(parallel_tasks(64,
                                     [&](int64_t i) {
                                       ran.fetch_add(1);
                                       if (i == 40) throw std::runtime_error("task 40 failed");
                                     }),
                      "task 40 failed");
  REQUIRE(ran.load() == 64);  // the other tasks still ran: the loop ends whole
  check_once(64);
}

TEST_CASE("a loop inside a team's task runs on that thread", "[parallel]") {
  SpinTeam team(2);
  std::vector<std::atomic<int>> inner(8 * 8);
  parallel_tasks(8, [&](int64_t i) {
    parallel_tasks(8, [&](int64_t j) { inner[size_t(i * 8 + j)].fetch_add(1); });
  });
  for (auto& v : inner) REQUIRE(v.load() == 1);
}

TEST_CASE("teams nest and restore the outer one", "[parallel]") {
  SpinTeam outer(2);
  {
    SpinTeam inner(3);
    REQUIRE(SpinTeam::current() == &inner);
    check_once(50);
  }
  REQUIRE(SpinTeam::current() == &outer);
  check_once(50);
}

TEST_CASE("a team's helper takes tasks when the arena has a second thread", "[parallel]") {
  if (tbb::this_task_arena::max_concurrency() < 2) {
    WARN("skipped: the TBB arena has one thread on this machine");
    return;
  }
  SpinTeam team(2);
  std::set<std::thread::id> seen;
  std::mutex mu;
  // Tasks long enough that the owner cannot finish the loop alone before the helper joins;
  // the helper is a TBB task, so give it a few loops to be picked up.
  for (int loop = 0; loop < 200 && seen.size() < 2; ++loop)
    parallel_tasks(16, [&](int64_t) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      while (std::chrono::steady_clock::now() < until) {
      }
      const std::lock_guard<std::mutex> lock(mu);
      seen.insert(std::this_thread::get_id());
    });
  REQUIRE(seen.size() == 2);
}
