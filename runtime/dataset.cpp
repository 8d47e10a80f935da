#include "runtime/dataset.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
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

// "NAME INDEX" per line; blank lines allowed.
std::map<std::string, int> read_labels(const std::string& file) {
  std::ifstream in = open_text(file);
  std::map<std::string, int> labels;
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    std::istringstream ss(line);
    std::string name, extra;
    long index = -1;
    if (!(ss >> name)) continue;
    if (!(ss >> index) || (ss >> extra) || index < 0)
      fail(file + ":" + std::to_string(no), "expected 'NAME INDEX' with INDEX >= 0, got '" + line + "'");
    labels.emplace(name, static_cast<int>(index));
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

Shard parse_shard(const std::string& text, const std::string& where) {
  int i = -1, n = 0;
  char slash = 0, extra = 0;
  if (std::sscanf(text.c_str(), "%d %c %d %c", &i, &slash, &n, &extra) != 3 || slash != '/' ||
      n < 1 || i < 0 || i >= n)
    fail(where, "'" + text + "' must be i/n with 0 <= i < n");
  return {i, n};
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
