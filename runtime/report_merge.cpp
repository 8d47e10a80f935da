#include "runtime/report_merge.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <fstream>
#include <map>
#include <set>

#include "graph/error.h"
#include "runtime/dataset.h"

namespace fgq {

using nlohmann::json;

namespace {

// One shard's report, checked against its own records.
struct Parsed {
  const ShardReport* src = nullptr;
  Shard shard;
  int64_t selected = 0;
  std::vector<ImageResult> images;
  std::vector<std::string> skipped, reasons;  // parallel
};

json without(json j, std::initializer_list<const char*> keys) {
  if (j.is_object())
    for (const char* k : keys) j.erase(k);
  return j;
}

// Shards of one run agree on everything that decides the results; name the first key that
// does not, so the user sees which option they changed between shards.
void check_same(const Parsed& p, const Parsed& first, const std::string& section, const json& a,
                const json& b) {
  if (a == b) return;
  std::string key = section;
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& it : a.items()) keys.insert(it.key());
    for (const auto& it : b.items()) keys.insert(it.key());
    auto get = [](const json& j, const std::string& k) { return j.contains(k) ? j.at(k) : json(); };
    for (const std::string& k : keys)
      if (get(a, k) != get(b, k)) {
        key += "." + k;
        break;
      }
  }
  fail(p.src->file, key + " differs from " + first.src->file + " (not shards of one run)");
}

Parsed parse(const ShardReport& s) {
  Parsed p;
  p.src = &s;
  const json& r = s.report;
  std::string at;  // the record being read, for the message
  try {
    if (!r.is_object()) fail(s.file, "not an fgq-run report (not a JSON object)");
    const std::string shard = r.at("options").at("shard").get<std::string>();
    if (shard.empty()) fail(s.file, "not a shard report (written without --shard)");
    if (shard == "auto")  // fgq-run records the shard --shard auto resolved to, never "auto"
      fail(s.file, "options.shard is 'auto', not the shard it resolved to: run that shard again");
    p.shard = parse_shard(shard, s.file + ": options.shard");
    if (r.at("interrupted").get<bool>())
      fail(s.file, "shard " + shard + " was interrupted; run it again before merging");
    const json& counts = r.at("counts");
    auto count = [&](const char* key) {
      return json_int(counts.at(key), 0, INT64_MAX, s.file + ": counts." + key);
    };
    p.selected = count("selected");
    const json& images = r.at("images");
    if (!images.is_array()) fail(s.file, "not an fgq-run report (images is not a list)");
    for (size_t i = 0; i < images.size(); ++i) {
      at = "images[" + std::to_string(i) + "]";
      try {
        p.images.push_back(image_result_from_json(images[i]));
      } catch (const Error& e) {
        fail(s.file + ": " + at, e.what());
      }
    }
    // Names (and the reasons since they are reported) of the images not scored.
    const json& names = r.at("skipped_files");
    if (!names.is_array()) fail(s.file, "not an fgq-run report (skipped_files is not a list)");
    if (const auto it = r.find("skipped_images"); it != r.end()) {
      if (!it->is_array() || it->size() != names.size())
        fail(s.file, "skipped_images does not match skipped_files (edited or truncated report?)");
      for (size_t i = 0; i < it->size(); ++i) {
        at = "skipped_images[" + std::to_string(i) + "]";
        const json& rec = (*it)[i];
        if (!rec.is_object()) fail(s.file + ": " + at, "must be an object");
        try {
          p.skipped.push_back(file_name_from_json(rec));
        } catch (const Error& e) {
          fail(s.file + ": " + at, e.what());
        }
        p.reasons.push_back(rec.at("reason").get<std::string>());
        if (names[i] != rec.at("file"))
          fail(s.file + ": " + at, "is not skipped_files[" + std::to_string(i) + "]");
      }
    } else {
      for (size_t i = 0; i < names.size(); ++i) {
        at = "skipped_files[" + std::to_string(i) + "]";
        p.skipped.push_back(names[i].get<std::string>());
        p.reasons.emplace_back();
      }
    }
    at.clear();
    int64_t top1 = 0, top5 = 0;
    for (const ImageResult& img : p.images) {
      top1 += img.correct1;
      top5 += img.correct5;
    }
    const int64_t scored = static_cast<int64_t>(p.images.size());
    const int64_t skipped = static_cast<int64_t>(p.skipped.size());
    if (count("scored") != scored || count("skipped") != skipped ||
        count("top1_correct") != top1 || count("top5_correct") != top5 || scored + skipped != p.selected)
      fail(s.file, "counts do not match the image records (edited or truncated report?)");
    at.clear();
    for (const char* key : {"model", "dataset", "timing"})  // compared or summed later
      if (!r.at(key).is_object()) fail(s.file, std::string("not an fgq-run report (bad ") + key + ")");
  } catch (const json::exception& e) {
    fail(s.file, std::string("not an fgq-run report (") + (at.empty() ? "" : at + ": ") + e.what() + ")");
  }
  return p;
}

}  // namespace

ShardReport read_shard_report(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, "cannot open");
  ShardReport s{path, json()};
  try {
    s.report = json::parse(in);
  } catch (const json::exception& e) {
    fail(path, std::string("not valid JSON (") + e.what() + ")");
  }
  return s;
}

namespace {

MergedRun merge_checked(const std::vector<ShardReport>& shards) {
  std::vector<Parsed> parts;
  for (const ShardReport& s : shards) parts.push_back(parse(s));

  const Parsed& first = parts[0];
  const json& f = first.src->report;
  const int n = first.shard.count;
  std::map<int, const Parsed*> by_index;
  int64_t total = 0;
  for (const Parsed& p : parts) {
    const json& r = p.src->report;
    const std::string name = std::to_string(p.shard.index) + "/" + std::to_string(p.shard.count);
    if (p.shard.count != n)
      fail(p.src->file, "shard " + name + " is not one of " + std::to_string(n) + " like " +
                            first.src->file);
    if (auto [it, fresh] = by_index.emplace(p.shard.index, &p); !fresh)
      fail(p.src->file, "shard " + name + " is given twice (also " + it->second->src->file + ")");
    check_same(p, first, "model", r.at("model"), f.at("model"));
    check_same(p, first, "dataset", r.at("dataset"), f.at("dataset"));
    check_same(p, first, "options", without(r.at("options"), {"shard", "batch", "threads"}),
               without(f.at("options"), {"shard", "batch", "threads"}));
    check_same(p, first, "quantization", without(r.value("quantization", json()), {"seconds"}),
               without(f.value("quantization", json()), {"seconds"}));
    total += p.selected;
  }
  for (int i = 0; i < n; ++i)
    if (!by_index.count(i))
      fail("", "shard " + std::to_string(i) + "/" + std::to_string(n) + " is missing");
  // --limit then --shard: shard i of n takes every n-th of the first min(limit, found) images.
  const json& dataset = f.at("dataset");
  const json& options = f.at("options");
  const int64_t found = dataset.contains("images_found")
                            ? json_int(dataset.at("images_found"), 0, INT64_MAX, first.src->file + ": dataset.images_found")
                            : total;
  const int64_t limit = options.contains("limit")
                            ? json_int(options.at("limit"), 0, INT_MAX, first.src->file + ": options.limit")
                            : 0;
  const size_t run_total = static_cast<size_t>(limit > 0 ? std::min(limit, found) : found);
  for (const Parsed& p : parts)
    if (static_cast<size_t>(p.selected) != shard_size(run_total, p.shard))
      fail(p.src->file, "has " + std::to_string(p.selected) + " images, but shard " +
                            std::to_string(p.shard.index) + "/" + std::to_string(n) + " of " +
                            std::to_string(run_total) + " has " +
                            std::to_string(shard_size(run_total, p.shard)));

  std::vector<ImageResult> images;
  std::vector<std::pair<std::string, std::string>> skipped;  // file, reason
  std::map<std::string, std::string> seen;  // image -> shard file
  MergedRun m;
  for (const Parsed& p : parts) {
    auto note = [&](const std::string& file) {
      if (auto [it, fresh] = seen.emplace(file, p.src->file); !fresh)
        fail(p.src->file, "image '" + file + "' is also in " + it->second + " (shards overlap)");
    };
    for (const ImageResult& img : p.images) {
      note(img.file);
      images.push_back(img);
    }
    for (size_t i = 0; i < p.skipped.size(); ++i) {
      note(p.skipped[i]);
      skipped.emplace_back(p.skipped[i], p.reasons[i]);
    }
    const json& t = p.src->report.at("timing");
    m.info.load_seconds += t.value("load_s", 0.0);
    m.info.quantize_seconds += t.value("quantize_s", 0.0);
    m.info.eval_seconds += t.value("eval_s", 0.0);
  }
  // The unsharded run scores in dataset order.
  std::sort(images.begin(), images.end(), [](const ImageResult& a, const ImageResult& b) {
    return dataset_order(a.file, b.file);
  });
  std::sort(skipped.begin(), skipped.end(),
            [](const auto& a, const auto& b) { return dataset_order(a.first, b.first); });
  for (ImageResult& img : images) m.acc.add(std::move(img));
  for (auto& [file, reason] : skipped) m.acc.add_skipped(std::move(file), std::move(reason));

  m.info.model_path = f.at("model").at("path").get<std::string>();
  m.info.model_metadata = f.at("model").at("metadata").get<std::map<std::string, std::string>>();
  m.info.options = f.at("options");
  m.info.options["shard"] = "";
  m.info.dataset = f.at("dataset");
  m.info.quantization = f.value("quantization", json());
  m.info.images_selected = total;
  return m;
}

}  // namespace

MergedRun merge_shards(const std::vector<ShardReport>& shards) {
  if (shards.empty()) fail("", "no shard reports to merge");
  try {
    return merge_checked(shards);
  } catch (const json::exception& e) {  // a field of the wrong type past parse()'s checks
    fail("", std::string("not fgq-run shard reports (") + e.what() + ")");
  }
}

}  // namespace fgq
