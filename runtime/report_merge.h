#pragma once
// fgq-merge: the JSON reports of shards 0/n .. n-1/n of one fgq-run, combined into the report the
// unsharded run writes: the same counts, Top-1/Top-5 and per-image records in dataset order.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/report.h"

namespace fgq {

struct ShardReport {
  std::string file;       // names the shard in error messages
  nlohmann::json report;  // as written by fgq-run --shard i/n --json FILE
};

// Throws fgq::Error "<file>: cannot open" / "<file>: not valid JSON (...)".
ShardReport read_shard_report(const std::string& path);

struct MergedRun {
  RunInfo info;  // load, quantize and eval seconds are sums over the shards
  Accuracy acc;
};

// Throws a one-line fgq::Error, naming the file where there is one, when a shard is missing,
// given twice, interrupted, overlaps another, disagrees with its own records, or comes from a
// different run (model, dataset, options other than batch/threads, quantization).
MergedRun merge_shards(const std::vector<ShardReport>& shards);

}  // namespace fgq
