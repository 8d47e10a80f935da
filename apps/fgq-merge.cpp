// fgq-merge: combines the JSON reports of `fgq-run --shard i/n --json` runs into the report of
// the unsharded run (counts, Top-1/Top-5, per-image records in dataset order; timings summed).
//   fgq-merge shard0.json shard1.json shard2.json [--json merged.json]
// Summary line on stdout like fgq-run. Exit codes: 0 done, 1 usage error, 2 shards that do not
// make one run (missing, overlapping, interrupted, inconsistent) or unreadable files.
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "graph/error.h"
#include "runtime/report.h"
#include "runtime/report_merge.h"

int main(int argc, char** argv) {
  std::vector<std::string> files;
  std::string json_path;
  CLI::App cli{"fgq-merge: combine fgq-run shard reports into one"};
  cli.add_option("reports", files, "JSON reports of fgq-run --shard 0/n .. n-1/n")->required();
  cli.add_option("--json", json_path, "write the merged JSON report to FILE");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e) == 0 ? 0 : 1;
  }
  try {
    std::vector<fgq::ShardReport> shards;
    for (const std::string& f : files) shards.push_back(fgq::read_shard_report(f));
    const fgq::MergedRun m = fgq::merge_shards(shards);
    std::printf("%s\n", fgq::summary_line(m.acc, m.info.eval_seconds).c_str());
    if (!json_path.empty()) fgq::write_json_atomic(json_path, fgq::report_json(m.info, m.acc));
    return 0;
  } catch (const std::exception& e) {  // fgq::Error, or std::bad_alloc on a huge report
    std::fprintf(stderr, "fgq-merge: %s\n", e.what());
    return 2;
  }
}
