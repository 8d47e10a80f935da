#pragma once
// ImageNet-style evaluation folders: which image files, in which order, with which label.
//
// Two layouts, detected from the folder:
//  - flat: DIR/*.JPEG (e.g. ILSVRC2012_val_00000001.JPEG) + a labels file of "NAME INDEX" lines
//    (DIR/val_labels.txt, DIR/../val_labels.txt, or an explicit one);
//  - ImageFolder: DIR/<synset>/*.JPEG + synset_words.txt (line i = class i, first token = synset
//    id) from DIR, DIR/.., or an explicit one. Chosen when DIR has sub-folders holding images.
// Files are sorted by (relative) name, so every run sees the same order.
// An image without a label is an error naming the count and the first such file: evaluating on
// a silently smaller set would report a misleading accuracy.
#include <cstddef>
#include <string>
#include <vector>

namespace fgq {

struct LabeledImage {
  std::string path;  // full path
  std::string name;  // path relative to the dataset folder (reports, labels lookup)
  int label = -1;
};

struct Dataset {
  std::string dir;
  std::string layout;        // "flat" | "imagefolder"
  std::string labels_file;   // the labels or synsets file used
  std::vector<LabeledImage> images;
};

struct DatasetOptions {
  std::string labels_file;   // flat layout: overrides the search for val_labels.txt
  std::string synsets_file;  // ImageFolder layout: overrides the search for synset_words.txt
};

// Throws fgq::Error "<dir>: no such directory", "<dir>: no images (...)", "<file>:<line>: ...".
Dataset discover_dataset(const std::string& dir, const DatasetOptions& opt = {});

// Image files (by extension: jpg, jpeg, png, bmp, any case) directly inside dir, sorted by name.
std::vector<std::string> list_image_files(const std::string& dir);

bool is_image_file_name(const std::string& name);

// --shard i/n: the images whose index (in dataset order, after --limit) % n == i.
struct Shard {
  int index = 0;
  int count = 1;
};
// "i/n" with 0 <= i < n, else fgq::Error "<where>: '<text>' must be i/n with 0 <= i < n".
Shard parse_shard(const std::string& text, const std::string& where);
// How many of `total` images shard s takes.
size_t shard_size(size_t total, const Shard& s);

// The order of Dataset::images: relative names compared folder by folder, so "a/x" < "a-b/y"
// as in the directory walk. fgq-merge restores a sharded run's order with it.
bool dataset_order(const std::string& a, const std::string& b);

}  // namespace fgq
