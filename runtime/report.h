#pragma once
// Scoring of classifier outputs (top-k, accuracy counts) and the evaluation report: the one-line
// summary and the JSON file (written atomically: temp file + rename).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fgq {

// Indices of the k largest of scores[0..n), largest first; ties go to the lower index, NaN
// ranks below every number. k is clamped to 0..n.
std::vector<int> top_k(const float* scores, int n, int k);
// Numerically stable softmax of logits[0..n) into out (may alias logits).
void softmax(const float* logits, int n, float* out);

// The one ranking of a classifier's output row, shared by fgq-run's reports and
// fgq::Session::classify: the k best classes (top_k on the row itself), best first, with their
// softmax probabilities (the row as is when it already is one, i.e. the graph ends in Softmax).
struct TopK {
  std::vector<int> classes;
  std::vector<float> scores;
};
TopK rank_row(const float* row, int n, int k, bool row_is_probability);

struct ImageResult {
  std::string file;
  int label = -1;
  std::vector<int> top5;             // class indices, best first (fewer if < 5 classes)
  std::vector<float> top5_scores;    // their softmax probabilities
  bool correct1 = false;
  bool correct5 = false;
};

// Ranks one output row. Top-k is taken on the row itself; the reported scores are softmax
// probabilities (the row as is when it already is one, i.e. the graph ends in Softmax).
ImageResult score_image(std::string file, int label, const float* row, int classes,
                        bool row_is_probability);

class Accuracy {
 public:
  void add(ImageResult r);
  // An image that was not scored, and why (e.g. "cannot decode image", "truncated JPEG ...").
  void add_skipped(std::string file, std::string reason = "");

  int64_t scored() const { return static_cast<int64_t>(results_.size()); }
  int64_t top1_correct() const { return top1_; }
  int64_t top5_correct() const { return top5_; }
  int64_t skipped() const { return static_cast<int64_t>(skipped_.size()); }
  double top1() const;  // fraction of scored images, 0 when none
  double top5() const;
  const std::vector<ImageResult>& results() const { return results_; }
  const std::vector<std::string>& skipped_files() const { return skipped_; }
  const std::vector<std::string>& skipped_reasons() const { return skipped_reasons_; }  // parallel

 private:
  std::vector<ImageResult> results_;
  std::vector<std::string> skipped_, skipped_reasons_;
  int64_t top1_ = 0, top5_ = 0;
};

// "Top-1 80.10 % (801/1000)  Top-5 95.20 % (952/1000)  skipped 0  1000 images in 62.3 s (16.1 img/s)"
std::string summary_line(const Accuracy& acc, double seconds);

// What the JSON report says besides the per-image results.
struct RunInfo {
  std::string model_path;
  std::map<std::string, std::string> model_metadata;
  nlohmann::json options = nlohmann::json::object();  // command-line options as used
  nlohmann::json dataset = nlohmann::json::object();  // dir, layout, labels file, ...
  nlohmann::json quantization;                        // null when not quantized
  int64_t images_selected = 0;                        // after --limit / --shard
  double load_seconds = 0;
  double quantize_seconds = 0;
  double eval_seconds = 0;
  bool interrupted = false;
};

// The float's shortest decimal form as a double, so JSON shows 0.1, not 0.10000000149011612.
// JSON numbers are written in the shortest form that reads back as the same double, and this
// double reads back (static_cast<float>) as the same float: scores survive a report exactly.
double json_float(float v);
// The float whose json_float() is d (a score read back from a report), so that a report read and
// written again (fgq-merge) has the same digits; (float)d for any other d.
float float_from_json(double d);

// Keys: model {path, metadata}, options, dataset, quantization, counts {selected, scored,
// skipped, top1_correct, top5_correct}, top1, top5 (fractions), timing {load_s, quantize_s,
// eval_s, images_per_s}, interrupted, skipped_files (names), skipped_images [{file, reason}],
// images [{file, label, top5, top5_scores, correct1, correct5}].
// File names that are not valid UTF-8 (JSON strings must be) are written with U+FFFD for each
// bad byte under "file" (readable) and exactly, as hex of the raw bytes, under "file_hex"
// (reversible: image_result_from_json and fgq-merge restore the name from it). The same holds
// for skipped_images. Other strings (paths, metadata) are written with U+FFFD replacements.
nlohmann::json report_json(const RunInfo& info, const Accuracy& acc);
// One record of report_json's "images" array, read back (fgq-merge), range-checked: label a
// class index (0..2^31-1), top5 distinct class indices, scores probabilities, correct1/correct5
// what label and top5 say. Throws fgq::Error "<field>: ..." for a value out of range,
// nlohmann::json exceptions for a missing key or a value of the wrong JSON type.
ImageResult image_result_from_json(const nlohmann::json& j);
// The file name of a record ({"file", optional "file_hex"}), restored to its raw bytes.
std::string file_name_from_json(const nlohmann::json& record);
// True if s is valid UTF-8 (what nlohmann::json can write as it is).
bool valid_utf8(const std::string& s);
// An integer field read as what it is: a JSON integer (not 1.5, not 1e300, not "3") within
// lo..hi, else fgq::Error "<what> must be an integer from lo to hi".
int64_t json_int(const nlohmann::json& j, int64_t lo, int64_t hi, const std::string& what);

// Writes to "<path>.tmp.<pid>" then renames over path, so readers never see a partial file.
// Throws fgq::Error "<path>: cannot write ..." on failure. Strings that are not valid UTF-8 are
// written with U+FFFD replacements (see report_json for how file names stay exact).
void write_json_atomic(const std::string& path, const nlohmann::json& j);

}  // namespace fgq
