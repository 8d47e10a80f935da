// fgq-run stopped by SIGINT/SIGTERM finishes the batches in flight and still writes its JSON
// report, marked interrupted. Deterministic without sleeps-and-hope: the third image is a FIFO,
// so decoding blocks until the test has seen the child reach it (its handlers are installed by
// then) and the signal delivered; closing the FIFO then lets the child go on and notice the stop.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "app_fixture.h"

extern char** environ;

namespace fs = std::filesystem;
using fgq::test::slurp;

namespace {

using Clock = std::chrono::steady_clock;

bool child_exited(pid_t pid, int& status) { return waitpid(pid, &status, WNOHANG) == pid; }

// Process-directed signals wait in ShdPnd until a thread takes them (and runs the handler).
bool signal_pending(pid_t pid, int sig) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("ShdPnd:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> (sig - 1)) & 1;
  return false;
}

}  // namespace

TEST_CASE("fgq-run: SIGINT/SIGTERM stop the run and the JSON holds the partial result") {
  const int sig = GENERATE(SIGINT, SIGTERM);
  fgq::test::Fixture f;
  const fs::path dir = f.root / "many";
  fs::create_directories(dir);
  constexpr int kImages = 20;  // well above the 4 batches the pipeline keeps in flight
  {
    std::ofstream labels(dir / "val_labels.txt");
    for (int k = 0; k < kImages; ++k) {
      const std::string name = "img_" + std::string(k < 10 ? "0" : "") + std::to_string(k) + ".png";
      labels << name << " 0\n";
      if (k == 2)
        REQUIRE(mkfifo((dir / name).c_str(), 0600) == 0);
      else
        fgq::test::write_solid_image(dir / name, {0, 0, 255});  // red: class 0, correct
    }
  }
  const std::string fifo = (dir / "img_02.png").string(), json = (f.root / "partial.json").string();
  const std::string out = (f.root / "out.txt").string(), err = (f.root / "err.txt").string();
  std::vector<std::string> args = {FGQ_RUN_EXE, "--model", f.model(), "--imagenet", dir.string(),
                                   "--batch", "1", "--threads", "2", "--quiet", "--json", json};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  REQUIRE(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);

  // A non-blocking writer open succeeds once the child has opened the FIFO to decode it.
  int status = 0, fd = -1;
  bool exited = false;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while ((fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK)) < 0 && errno == ENXIO &&
         !(exited = child_exited(pid, status)) && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (fd < 0 && !exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  INFO(slurp(err));
  REQUIRE(fd >= 0);

  REQUIRE(kill(pid, sig) == 0);
  while (signal_pending(pid, sig) && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the handler: two atomic stores
  close(fd);  // end of file: the FIFO image is skipped as undecodable, the run goes on
  while (!child_exited(pid, status)) {
    if (Clock::now() > deadline) kill(pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 128 + sig);
  CHECK(slurp(out).find("  (interrupted)\n") != std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(slurp(json));
  CHECK(j["interrupted"] == true);
  CHECK(j["counts"]["selected"] == kImages);
  const int scored = j["counts"]["scored"], skipped = j["counts"]["skipped"];
  // Images 0..2 were reached; the stop came with at most 4 one-image batches in flight.
  CHECK(scored + skipped >= 3);
  CHECK(scored + skipped <= 2 + 4);
  CHECK(j["skipped_files"] == std::vector<std::string>{"img_02.png"});
  CHECK(j["counts"]["top1_correct"] == scored);
  // The partial result is a prefix of the dataset order.
  REQUIRE(j["images"].size() == size_t(scored));
  for (int k = 0; k < scored; ++k) {
    const int index = k < 2 ? k : k + 1;
    CHECK(j["images"][k]["file"] ==
          "img_" + std::string(index < 10 ? "0" : "") + std::to_string(index) + ".png");
  }
}
