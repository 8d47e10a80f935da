// libFuzzer target for what fgq-merge reads from untrusted report files: the input is one or
// more JSON shard reports separated by the byte 0x1E (ASCII record separator), each parsed as
// JSON (an input that is not JSON ends the run: that is nlohmann::json's parser, not ours), then
// merge_shards() over all of them, as fgq-merge does after reading its files.
// When the merge succeeds, the merged report must be writable as strict UTF-8 JSON (file names
// that are not UTF-8 travel hex-escaped) and must read back to the same records.
// Anything but success or a clean fgq::Error is a bug: a crash, a sanitizer report (a float
// or integer conversion out of range is undefined behaviour UBSan reports), another exception
// type (an nlohmann::json exception escaping the merge), a huge allocation, a slow input.
// scripts/fuzz.sh merge builds this with clang as a libFuzzer binary; every other build links
// replay_main.cpp instead to replay tests/fuzz/corpus_merge as a test.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fgq/error.h"
#include "runtime/report.h"
#include "runtime/report_merge.h"

namespace {

constexpr char kSeparator = '\x1e';
constexpr size_t kMaxShards = 16;

[[noreturn]] void bug(const char* what) {
  std::fprintf(stderr, "fuzz_report_merge: %s\n", what);
  __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<fgq::ShardReport> shards;
  for (size_t begin = 0; begin <= text.size() && shards.size() < kMaxShards;) {
    size_t end = text.find(kSeparator, begin);
    if (end == std::string::npos) end = text.size();
    nlohmann::json j = nlohmann::json::parse(text.begin() + begin, text.begin() + end, nullptr,
                                             /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
    shards.push_back({"s" + std::to_string(shards.size()) + ".json", std::move(j)});
    begin = end + 1;
  }
  try {
    const fgq::MergedRun m = fgq::merge_shards(shards);
    const nlohmann::json report = fgq::report_json(m.info, m.acc);
    (void)fgq::summary_line(m.acc, m.info.eval_seconds);
    std::string written;
    try {
      written = report.dump(2);  // strict: throws on a string that is not UTF-8
    } catch (const nlohmann::json::exception&) {
      bug("the merged report is not valid UTF-8 JSON");
    }
    const nlohmann::json back = nlohmann::json::parse(written);
    const auto& results = m.acc.results();
    if (back.at("images").size() != results.size()) bug("records lost in the merged report");
    for (size_t i = 0; i < results.size(); ++i) {
      const fgq::ImageResult r = fgq::image_result_from_json(back.at("images")[i]);
      const fgq::ImageResult& w = results[i];
      if (r.file != w.file || r.label != w.label || r.top5 != w.top5 || r.correct1 != w.correct1 ||
          r.correct5 != w.correct5 || r.top5_scores.size() != w.top5_scores.size())
        bug("a merged record does not read back as written");
      for (size_t k = 0; k < r.top5_scores.size(); ++k)
        if (r.top5_scores[k] != w.top5_scores[k] && !(r.top5_scores[k] != r.top5_scores[k]))
          bug("a score does not read back as the same float");
    }
  } catch (const fgq::Error&) {
  }
  return 0;
}
