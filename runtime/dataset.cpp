#include "runtime/dataset.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "graph/error.h"

namespace fs = std::filesystem;

namespace fgq {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The folder without a trailing separator, so parent_path() is its real parent.
fs::path normalized_dir(const std::string& dir) {
  fs::path p = fs::absolute(dir).lexically_normal();
  return p.has_filename() ? p : p.parent_path();
}

// First existing candidate; the explicit file (if given) must exist.
std::string find_file(const std::string& explicit_file, const std::vector<fs::path>& candidates,
                      const std::string& dir, const std::string& what, const std::string& flag) {
  if (!explicit_file.empty()) {
    if (!fs::is_regular_file(explicit_file)) fail(explicit_file, "no such file");
    return explicit_file;
  }
  std::string looked;
  for (const fs::path& c : candidates) {
    if (fs::is_regular_file(c)) return c.string();
    looked += (looked.empty() ? "" : ", ") + c.string();
  }
  fail(dir, "no " + what + " (looked for " + looked + "; pass " + flag + " FILE)");
}

std::ifstream open_text(const std::string& file) {
  std::ifstream in(file);
  if (!in) fail(file, "cannot open");
  return in;
}

// "NAME INDEX" per line; blank lines allowed. INDEX is read as what it is, a class index that
// fits an int: "4294967296" must not wrap to class 0 (and be scored as correct).
std::map<std::string, int> read_labels(const std::string& file) {
  std::ifstream in = open_text(file);
  std::map<std::string, int> labels;
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files
    std::istringstream ss(line);
    std::string name, index_text, extra;
    if (!(ss >> name)) continue;
    const std::string where = file + ":" + std::to_string(no);
    if (!(ss >> index_text) || (ss >> extra))
      fail(where, "expected 'NAME INDEX' with INDEX >= 0, got '" + line + "'");
    int index = -1;
    const char* b = index_text.data();
    const char* e = b + index_text.size();
    const auto [end, ec] = std::from_chars(b, e, index);
    if (ec == std::errc::result_out_of_range && index_text.find_first_not_of("0123456789") == std::string::npos)
      fail(where, "label " + index_text + " is out of range (0.." + std::to_string(INT_MAX) + ")");
    if (ec != std::errc() || end != e || index < 0)
      fail(where, "expected 'NAME INDEX' with INDEX >= 0, got '" + line + "'");
    if (const auto [it, fresh] = labels.emplace(name, index); !fresh && it->second != index)
      fail(where, "'" + name + "' is labelled " + std::to_string(it->second) + " earlier in the file");
  }
  return labels;
}

// Line i = class i, first token = synset id.
std::map<std::string, int> read_synsets(const std::string& file) {
  std::ifstream in = open_text(file);
  std::map<std::string, int> synsets;
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    std::istringstream ss(line);
    std::string id;
    if (!(ss >> id)) fail(file + ":" + std::to_string(no), "empty line (line i must name class i)");
    if (!synsets.emplace(id, no - 1).second)
      fail(file + ":" + std::to_string(no), "synset '" + id + "' listed twice");
  }
  return synsets;
}

std::vector<fs::path> sorted_subdirs(const fs::path& dir) {
  std::vector<fs::path> subs;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory()) subs.push_back(e.path());
  std::sort(subs.begin(), subs.end());
  return subs;
}

void load_flat(Dataset& d, const fs::path& root, const std::vector<std::string>& files,
               const DatasetOptions& opt) {
  d.layout = "flat";
  d.labels_file = find_file(opt.labels_file,
                            {root / "val_labels.txt", root.parent_path() / "val_labels.txt"},
                            d.dir, "labels file", "--labels");
  const std::map<std::string, int> labels = read_labels(d.labels_file);
  size_t unlabeled = 0;
  std::string first_unlabeled;
  for (const std::string& path : files) {
    const std::string name = fs::path(path).filename().string();
    auto it = labels.find(name);
    if (it == labels.end()) {
      if (unlabeled++ == 0) first_unlabeled = name;
      continue;
    }
    d.images.push_back({path, name, it->second});
  }
  if (unlabeled)
    fail(d.dir, std::to_string(unlabeled) + " image(s) without a label in " + d.labels_file +
                    " (first: " + first_unlabeled + ")");
}

void load_image_folder(Dataset& d, const fs::path& root, const std::vector<fs::path>& subs,
                       const DatasetOptions& opt) {
  d.layout = "imagefolder";
  d.labels_file = find_file(opt.synsets_file,
                            {root / "synset_words.txt", root.parent_path() / "synset_words.txt"},
                            d.dir, "synsets file", "--synsets");
  const std::map<std::string, int> synsets = read_synsets(d.labels_file);
  std::vector<std::string> unknown;  // sub-folders that are not synsets
  size_t unlabeled = 0;
  for (const fs::path& sub : subs) {
    const std::string synset = sub.filename().string();
    const std::vector<std::string> files = list_image_files(sub.string());
    auto it = synsets.find(synset);
    if (it == synsets.end()) {
      unknown.push_back(synset);
      unlabeled += files.size();
      continue;
    }
    for (const std::string& path : files)
      d.images.push_back({path, synset + "/" + fs::path(path).filename().string(), it->second});
  }
  if (!unknown.empty())
    fail(d.dir, std::to_string(unlabeled) + " image(s) without a label: sub-folder '" + unknown[0] +
                    "'" + (unknown.size() > 1 ? " (and " + std::to_string(unknown.size() - 1) + " more)" : "") +
                    " is not a synset in " + d.labels_file);
}

}  // namespace

bool is_image_file_name(const std::string& name) {
  const std::string ext = lower(fs::path(name).extension().string());
  return ext == ".jpeg" || ext == ".jpg" || ext == ".png" || ext == ".bmp";
}

std::vector<std::string> list_image_files(const std::string& dir) {
  if (!fs::is_directory(dir)) fail(dir, "no such directory");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (!e.is_directory() && is_image_file_name(e.path().filename().string()))
      files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

namespace {

// A whole decimal number as written: digits only after trimming spaces; a leading '-' is kept
// apart so "-1" can be called negative. Values past `cap` are not computed (no wrap): `big`.
struct Whole {
  enum Kind { Bad, Negative, Big, Ok } kind = Bad;
  long long value = 0;
};

Whole read_whole(std::string t, long long cap) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!t.empty() && space(t.back())) t.pop_back();
  size_t b = 0;
  while (b < t.size() && space(t[b])) ++b;
  t = t.substr(b);
  const bool negative = !t.empty() && t[0] == '-';
  if (negative) t = t.substr(1);
  if (t.empty() || !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return {};
  Whole w;
  w.kind = negative ? Whole::Negative : Whole::Ok;
  for (char c : t) {
    w.value = w.value * 10 + (c - '0');
    if (w.value > cap) {
      if (!negative) w.kind = Whole::Big;
      break;
    }
  }
  return w;
}

// An environment variable that must be a whole number (Slurm's ids stay far below 2^31).
bool env_whole(const char* name, const std::string& where, long long& out) {
  const char* v = std::getenv(name);
  if (v == nullptr) return false;
  const Whole w = read_whole(v, 1000000000000LL);
  if (w.kind != Whole::Ok)
    fail(where, std::string(name) + "='" + v + "' is not a whole number");
  out = w.value;
  return true;
}

}  // namespace

Shard parse_shard(const std::string& text, const std::string& where) {
  const std::string base = "'" + text + "' must be i/n with 0 <= i < n";
  const size_t slash = text.find('/');
  if (slash == std::string::npos || text.find('/', slash + 1) != std::string::npos)
    fail(where, base + " (two whole numbers, e.g. 3/16)");
  const Whole i = read_whole(text.substr(0, slash), kMaxShards);
  const Whole n = read_whole(text.substr(slash + 1), kMaxShards);
  if (i.kind == Whole::Bad || n.kind == Whole::Bad)
    fail(where, base + " (two whole numbers, e.g. 3/16)");
  if (n.kind == Whole::Negative || (n.kind == Whole::Ok && n.value == 0))
    fail(where, base + " (n is the number of shards: at least 1)");
  if (n.kind == Whole::Big)
    fail(where, base + " (n = " + text.substr(slash + 1) + " is more than " +
                    std::to_string(kMaxShards) + " shards)");
  if (i.kind == Whole::Negative) fail(where, base + " (i is negative)");
  if (i.kind == Whole::Big || i.value >= n.value) fail(where, base);
  return {static_cast<int>(i.value), static_cast<int>(n.value)};
}

std::string shard_text(const Shard& s) { return std::to_string(s.index) + "/" + std::to_string(s.count); }

ArrayTask array_task(const std::string& where) {
  ArrayTask t;
  long long id = 0, k8s = 0;
  const bool slurm = env_whole("SLURM_ARRAY_TASK_ID", where, id);
  const bool kube = env_whole("JOB_COMPLETION_INDEX", where, k8s);
  if (slurm && kube)
    fail(where, "both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX are set: give --shard i/n");
  if (kube) {
    t.scheduler = "Kubernetes";
    t.id = k8s;
    t.name = "Kubernetes completion index " + std::to_string(k8s);
    return t;
  }
  if (!slurm) {
    if (std::getenv("SLURM_JOB_ID") != nullptr)
      fail(where, "this Slurm job is not a job array (no SLURM_ARRAY_TASK_ID): submit it with "
                  "sbatch --array=0-N, or give --shard i/n");
    fail(where, "not a Slurm job array task (SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job "
                "(JOB_COMPLETION_INDEX): give --shard i/n");
  }
  t.scheduler = "Slurm";
  t.id = id;
  long long min = 0, max = 0, step = 1, count = 0;
  const bool has_min = env_whole("SLURM_ARRAY_TASK_MIN", where, min);
  const bool has_max = env_whole("SLURM_ARRAY_TASK_MAX", where, max);
  env_whole("SLURM_ARRAY_TASK_STEP", where, step);
  const bool has_count = env_whole("SLURM_ARRAY_TASK_COUNT", where, count);
  std::string array;
  if (has_min && has_max) {
    array = std::to_string(min) + "-" + std::to_string(max) + (step > 1 ? ":" + std::to_string(step) : "");
    // Evenly spaced: the ids are exactly min, min + step, ..., max, so (id - min) / step numbers
    // the tasks 0..count-1 (a list like 1,3,7 or 0-3,8-11 is not: Slurm gives it step 1).
    const bool even = step >= 1 && min <= id && id <= max && (max - min) % step == 0 &&
                      (id - min) % step == 0 && (!has_count || count == (max - min) / step + 1);
    if (even) {
      t.index = (id - min) / step;
      t.count = (max - min) / step + 1;
    } else {
      t.count = has_count ? count : 0;
      if (has_count) array += " (" + std::to_string(count) + " tasks)";
    }
  } else if (has_count) {
    t.count = count;
  }
  const char* job = std::getenv("SLURM_ARRAY_JOB_ID");
  t.name = "Slurm array " + (job ? std::string("job ") + job + " " : std::string()) + "task " +
           std::to_string(id) + (array.empty() ? "" : " of " + array);
  return t;
}

int explicit_shard_count(const std::string& count_text, std::string* source) {
  std::string text = count_text, name = "--shard-count";
  if (text.empty()) {
    const char* env = std::getenv("FGQ_SHARD_COUNT");
    if (env == nullptr) return 0;
    text = env;
    name = "FGQ_SHARD_COUNT";
  }
  const Whole w = read_whole(text, kMaxShards);
  if (w.kind != Whole::Ok || w.value < 1)
    fail(name, "'" + text + "' must be a whole number of shards, 1.." + std::to_string(kMaxShards));
  if (source) *source = name + (name == "FGQ_SHARD_COUNT" ? "=" : " ") + std::to_string(w.value);
  return static_cast<int>(w.value);
}

Shard resolve_shard(const std::string& text, const std::string& count_text, const std::string& where,
                    std::string* how) {
  if (text != "auto") {
    if (!count_text.empty())
      fail("--shard-count", "goes with " + where + " auto (" + where + " i/n gives its own count)");
    return parse_shard(text, where);
  }
  const std::string at = where + " auto";
  std::string count_source;
  const int n = explicit_shard_count(count_text, &count_source);
  const ArrayTask t = array_task(at);
  Shard s;
  if (n > 0) {
    if (t.id >= n)
      fail(at, t.name + " is not a shard of " + std::to_string(n) + " (with " + count_source +
                   " the task ids are the shard numbers 0.." + std::to_string(n - 1) + ")");
    s = {static_cast<int>(t.id), n};
    if (how) *how = t.name + ", " + count_source;
  } else if (t.scheduler == "Kubernetes") {
    fail(at, t.name + ": the number of shards is not in the environment: give --shard-count N or "
                      "FGQ_SHARD_COUNT=N (the Job's spec.completions)");
  } else {
    if (t.index < 0)
      fail(at, t.name + ": the array's ids do not number its tasks 0..n-1 as (id - min) / step "
                        "(not evenly spaced, like 1,3,7): submit --array=0-N, or give --shard-count "
                        "N so that the task ids are the shard numbers");
    if (t.count > kMaxShards)
      fail(at, t.name + ": " + std::to_string(t.count) + " tasks are more than " +
                   std::to_string(kMaxShards) + " shards");
    s = {static_cast<int>(t.index), static_cast<int>(t.count)};
    if (how) *how = t.name;
  }
  return s;
}

size_t shard_size(size_t total, const Shard& s) {
  const size_t i = static_cast<size_t>(s.index), n = static_cast<size_t>(s.count);
  return total > i ? (total - i + n - 1) / n : 0;
}

bool dataset_order(const std::string& a, const std::string& b) {
  return fs::path(a).compare(fs::path(b)) < 0;
}

Dataset discover_dataset(const std::string& dir, const DatasetOptions& opt) {
  if (!fs::is_directory(dir)) fail(dir, "no such directory");
  Dataset d;
  d.dir = dir;
  const fs::path root = normalized_dir(dir);
  try {
    const std::vector<std::string> top = list_image_files(dir);
    if (!top.empty()) {
      load_flat(d, root, top, opt);
    } else {
      std::vector<fs::path> with_images;
      for (const fs::path& sub : sorted_subdirs(root))
        if (!list_image_files(sub.string()).empty()) with_images.push_back(sub);
      if (with_images.empty())
        fail(dir, "no images (expected *.JPEG files or <synset>/ sub-folders of them)");
      load_image_folder(d, root, with_images, opt);
    }
  } catch (const fs::filesystem_error& e) {
    fail(e.path1().string(), e.code().message());
  }
  // The walk above already yields this order; sorting states it in one place.
  std::stable_sort(d.images.begin(), d.images.end(), [](const LabeledImage& a, const LabeledImage& b) {
    return dataset_order(a.name, b.name);
  });
  return d;
}

}  // namespace fgq
