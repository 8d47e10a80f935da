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
// n may exceed the number of images: the shards past the last image are empty (their reports
// hold no images and merge like any other).
struct Shard {
  int index = 0;
  int count = 1;
};
// The most shards of one run. More is a typo, not a plan (fgq-merge wants every shard's report);
// Slurm's largest job array and Kubernetes' largest Indexed Job are smaller still.
constexpr int kMaxShards = 1000000;
// "i/n": two whole decimal numbers (spaces around them allowed) with 0 <= i < n <= kMaxShards,
// read as what they are (no 32-bit wrap). Else fgq::Error "<where>: '<text>' must be i/n with
// 0 <= i < n", followed by the reason unless it is just i >= n.
Shard parse_shard(const std::string& text, const std::string& where);
// "i/n", as parse_shard reads it and reports record it.
std::string shard_text(const Shard& s);

// The job-array task this process runs as, from the environment:
//  - a Slurm job array (sbatch --array): SLURM_ARRAY_TASK_ID, _MIN, _MAX, _STEP, _COUNT;
//  - a Kubernetes Indexed Job: JOB_COMPLETION_INDEX (the number of completions is not in the
//    environment).
struct ArrayTask {
  std::string scheduler;  // "Slurm" or "Kubernetes"
  long long id = 0;       // SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX, as given
  long long index = -1;   // Slurm: (id - min) / step when the array is evenly spaced, else -1
  long long count = 0;    // Slurm: tasks in the array (0: not known); Kubernetes: 0
  std::string name;       // "Slurm array job 812 task 5 of 2-17", "Kubernetes completion index 3"
};
// Throws fgq::Error "<where>: ..." outside any job array, inside both kinds at once, and on
// values that are not whole numbers.
ArrayTask array_task(const std::string& where);

// The number of shards given explicitly: count_text (the --shard-count option) if not empty,
// else $FGQ_SHARD_COUNT if set, else 0. 1..kMaxShards, else fgq::Error "--shard-count: ..." or
// "FGQ_SHARD_COUNT: ...". `source`, if given, gets "--shard-count 16" or "FGQ_SHARD_COUNT=16".
int explicit_shard_count(const std::string& count_text, std::string* source = nullptr);

// --shard TEXT: "i/n" (parse_shard; then count_text must be empty), or "auto": this job-array
// task's shard (array_task):
//  - with an explicit count N (explicit_shard_count), task id i runs shard i/N: the ids must be
//    in 0..N-1, and any subset of them may be submitted (a rerun: sbatch --array=3,7);
//  - a Slurm array without one defines the shards itself: i = (ID - MIN) / STEP and n = its task
//    count. It must be evenly spaced (0-15, 1-16 and 0-30:2 are; 1,3,7 and 0-3,8-11 are not);
//  - a Kubernetes Indexed Job needs the count (its spec.completions).
// Errors are fgq::Error "<where>: ...". `how`, if given, gets where an auto shard came from.
Shard resolve_shard(const std::string& text, const std::string& count_text, const std::string& where,
                    std::string* how = nullptr);
// How many of `total` images shard s takes.
size_t shard_size(size_t total, const Shard& s);

// The order of Dataset::images: relative names compared folder by folder, so "a/x" < "a-b/y"
// as in the directory walk. fgq-merge restores a sharded run's order with it.
bool dataset_order(const std::string& a, const std::string& b);

}  // namespace fgq
