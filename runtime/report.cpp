#include "runtime/report.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "graph/error.h"
#include "graph/file_write.h"

namespace fgq {

std::vector<int> top_k(const float* scores, int n, int k) {
  k = std::clamp(k, 0, n);
  std::vector<int> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  idx.resize(k);
  return idx;
}

void softmax(const float* logits, int n, float* out) {
  if (n <= 0) return;
  const float mx = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += (out[i] = std::exp(logits[i] - mx));
  for (int i = 0; i < n; ++i) out[i] = static_cast<float>(out[i] / sum);
}

ImageResult score_image(std::string file, int label, const float* row, int classes,
                        bool row_is_probability) {
  ImageResult r;
  r.file = std::move(file);
  r.label = label;
  r.top5 = top_k(row, classes, 5);
  std::vector<float> prob;
  const float* p = row;
  if (!row_is_probability) {
    prob.resize(classes);
    softmax(row, classes, prob.data());
    p = prob.data();
  }
  for (int c : r.top5) r.top5_scores.push_back(p[c]);
  r.correct1 = !r.top5.empty() && r.top5[0] == label;
  r.correct5 = std::find(r.top5.begin(), r.top5.end(), label) != r.top5.end();
  return r;
}

void Accuracy::add(ImageResult r) {
  top1_ += r.correct1;
  top5_ += r.correct5;
  results_.push_back(std::move(r));
}

void Accuracy::add_skipped(std::string file) { skipped_.push_back(std::move(file)); }

double Accuracy::top1() const { return scored() ? double(top1_) / scored() : 0.0; }
double Accuracy::top5() const { return scored() ? double(top5_) / scored() : 0.0; }

std::string summary_line(const Accuracy& acc, double seconds) {
  const int64_t n = acc.scored();
  return fmt::format("Top-1 {:.2f} % ({}/{})  Top-5 {:.2f} % ({}/{})  skipped {}  {} images in "
                     "{:.1f} s ({:.1f} img/s)",
                     100 * acc.top1(), acc.top1_correct(), n, 100 * acc.top5(),
                     acc.top5_correct(), n, acc.skipped(), n, seconds,
                     seconds > 0 ? n / seconds : 0.0);
}

double json_float(float v) { return std::stod(fmt::format("{}", v)); }

nlohmann::json report_json(const RunInfo& info, const Accuracy& acc) {
  using nlohmann::json;
  json images = json::array();
  for (const ImageResult& r : acc.results()) {
    std::vector<double> scores;
    for (float v : r.top5_scores) scores.push_back(json_float(v));
    images.push_back({{"file", r.file},
                      {"label", r.label},
                      {"top5", r.top5},
                      {"top5_scores", std::move(scores)},
                      {"correct1", r.correct1},
                      {"correct5", r.correct5}});
  }
  const double eval = info.eval_seconds;
  return json{
      {"model", {{"path", info.model_path}, {"metadata", info.model_metadata}}},
      {"options", info.options},
      {"dataset", info.dataset},
      {"quantization", info.quantization},
      {"counts",
       {{"selected", info.images_selected},
        {"scored", acc.scored()},
        {"skipped", acc.skipped()},
        {"top1_correct", acc.top1_correct()},
        {"top5_correct", acc.top5_correct()}}},
      {"top1", acc.top1()},
      {"top5", acc.top5()},
      {"timing",
       {{"load_s", info.load_seconds},
        {"quantize_s", info.quantize_seconds},
        {"eval_s", eval},
        {"images_per_s", eval > 0 ? acc.scored() / eval : 0.0}}},
      {"interrupted", info.interrupted},
      {"skipped_files", acc.skipped_files()},
      {"images", std::move(images)},
  };
}

ImageResult image_result_from_json(const nlohmann::json& j) {
  ImageResult r;
  r.file = j.at("file").get<std::string>();
  r.label = j.at("label").get<int>();
  r.top5 = j.at("top5").get<std::vector<int>>();
  // json_float wrote the float's shortest decimal form, which reads back as the same float.
  for (double v : j.at("top5_scores").get<std::vector<double>>())
    r.top5_scores.push_back(static_cast<float>(v));
  r.correct1 = j.at("correct1").get<bool>();
  r.correct5 = j.at("correct5").get<bool>();
  return r;
}

void write_json_atomic(const std::string& path, const nlohmann::json& j) {
  // File names need not be UTF-8: replace bad bytes rather than throw.
  write_file_atomic(path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + '\n');
}

}  // namespace fgq
