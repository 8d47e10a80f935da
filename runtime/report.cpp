#include "runtime/report.h"

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "graph/error.h"
#include "graph/file_write.h"

namespace fgq {

std::vector<int> top_k(const float* scores, int n, int k) {
  if (n <= 0) return {};
  k = std::clamp(k, 0, n);
  std::vector<int> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  // A strict weak order even with NaN (which compares false with everything and would make
  // partial_sort's behaviour undefined): numbers first, larger first, then the lower index.
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    const float x = scores[a], y = scores[b];
    const bool xn = std::isnan(x), yn = std::isnan(y);
    if (xn != yn) return yn;
    if (!xn && x != y) return x > y;
    return a < b;
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

TopK rank_row(const float* row, int n, int k, bool row_is_probability) {
  TopK t;
  t.classes = top_k(row, n, k);
  if (t.classes.empty()) return t;
  std::vector<float> prob;
  const float* p = row;
  if (!row_is_probability) {
    prob.resize(static_cast<size_t>(n));
    softmax(row, n, prob.data());
    p = prob.data();
  }
  for (int c : t.classes) t.scores.push_back(p[c]);
  return t;
}

ImageResult score_image(std::string file, int label, const float* row, int classes,
                        bool row_is_probability) {
  ImageResult r;
  r.file = std::move(file);
  r.label = label;
  TopK t = rank_row(row, classes, 5, row_is_probability);
  r.top5 = std::move(t.classes);
  r.top5_scores = std::move(t.scores);
  r.correct1 = !r.top5.empty() && r.top5[0] == label;
  r.correct5 = std::find(r.top5.begin(), r.top5.end(), label) != r.top5.end();
  return r;
}

void Accuracy::add(ImageResult r) {
  top1_ += r.correct1;
  top5_ += r.correct5;
  results_.push_back(std::move(r));
}

void Accuracy::add_skipped(std::string file, std::string reason) {
  skipped_.push_back(std::move(file));
  skipped_reasons_.push_back(std::move(reason));
}

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

float float_from_json(double d) {
  // (float)d is f unless the decimal rounded twice (to double, then to float) across a float
  // midpoint; then f is a neighbour, and the one json_float maps to d is the float written.
  const float f = static_cast<float>(d);
  if (!std::isfinite(f) || json_float(f) == d) return f;
  for (float g : {std::nextafter(f, -INFINITY), std::nextafter(f, INFINITY)})
    if (json_float(g) == d) return g;
  return f;
}

bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    int len = 0;
    unsigned cp = 0, min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (n - i < size_t(len)) return false;
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

namespace {

// Each byte of s that is not part of a valid UTF-8 sequence becomes U+FFFD.
std::string replace_invalid_utf8(const std::string& s) {
  if (valid_utf8(s)) return s;
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    const unsigned c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (c < 0x80) {
      out += s[i];
    } else if (len > 0 && i + len <= s.size() && valid_utf8(s.substr(i, len))) {
      out += s.substr(i, len);
    } else {
      out += "\xEF\xBF\xBD";
      len = 1;
    }
    i += len;
  }
  return out;
}

std::string to_hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string h;
  for (unsigned char c : s) {
    h += digits[c >> 4];
    h += digits[c & 15];
  }
  return h;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Every string (and object key) valid UTF-8, so that any dump() of the report works.
nlohmann::json sanitized(const nlohmann::json& j) {
  using nlohmann::json;
  if (j.is_string()) return replace_invalid_utf8(j.get_ref<const std::string&>());
  if (j.is_array()) {
    json a = json::array();
    for (const json& v : j) a.push_back(sanitized(v));
    return a;
  }
  if (j.is_object()) {
    json o = json::object();
    for (const auto& it : j.items()) o[replace_invalid_utf8(it.key())] = sanitized(it.value());
    return o;
  }
  return j;
}

// {"file": name}, plus "file_hex" with the exact bytes when the name is not UTF-8.
void set_file(nlohmann::json& record, const std::string& name) {
  record["file"] = replace_invalid_utf8(name);
  if (!valid_utf8(name)) record["file_hex"] = to_hex(name);
}

}  // namespace

int64_t json_int(const nlohmann::json& j, int64_t lo, int64_t hi, const std::string& what) {
  const std::string range = "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  if (j.is_number_unsigned()) {
    const uint64_t v = j.get<uint64_t>();
    if (hi >= 0 && v <= uint64_t(hi) && int64_t(v) >= lo) return static_cast<int64_t>(v);
  } else if (j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    if (v >= lo && v <= hi) return v;
  } else {
    fail(what, range + ", got " + sanitized(j).dump());
  }
  fail(what, range + ", got " + j.dump());
}

nlohmann::json report_json(const RunInfo& info, const Accuracy& acc) {
  using nlohmann::json;
  json images = json::array();
  for (const ImageResult& r : acc.results()) {
    std::vector<double> scores;
    for (float v : r.top5_scores) scores.push_back(json_float(v));
    json rec = {{"label", r.label},
                {"top5", r.top5},
                {"top5_scores", std::move(scores)},
                {"correct1", r.correct1},
                {"correct5", r.correct5}};
    set_file(rec, r.file);
    images.push_back(std::move(rec));
  }
  json skipped_images = json::array();
  json skipped_names = json::array();
  const std::vector<std::string>& names = acc.skipped_files();
  const std::vector<std::string>& reasons = acc.skipped_reasons();
  for (size_t i = 0; i < names.size(); ++i) {
    json rec = {{"reason", replace_invalid_utf8(i < reasons.size() ? reasons[i] : std::string())}};
    set_file(rec, names[i]);
    skipped_names.push_back(rec["file"]);
    skipped_images.push_back(std::move(rec));
  }
  const double eval = info.eval_seconds;
  json head = sanitized(json{
      {"model", {{"path", info.model_path}, {"metadata", info.model_metadata}}},
      {"options", info.options},
      {"dataset", info.dataset},
      {"quantization", info.quantization},
  });
  head["counts"] = {{"selected", info.images_selected},
                    {"scored", acc.scored()},
                    {"skipped", acc.skipped()},
                    {"top1_correct", acc.top1_correct()},
                    {"top5_correct", acc.top5_correct()}};
  head["top1"] = acc.top1();
  head["top5"] = acc.top5();
  head["timing"] = {{"load_s", info.load_seconds},
                    {"quantize_s", info.quantize_seconds},
                    {"eval_s", eval},
                    {"images_per_s", eval > 0 ? acc.scored() / eval : 0.0}};
  head["interrupted"] = info.interrupted;
  head["skipped_files"] = std::move(skipped_names);
  head["skipped_images"] = std::move(skipped_images);
  head["images"] = std::move(images);
  return head;
}

std::string file_name_from_json(const nlohmann::json& record) {
  const std::string shown = record.at("file").get<std::string>();
  const auto hex = record.find("file_hex");
  if (hex == record.end()) return shown;
  if (!hex->is_string()) fail("file_hex", "must be a string of hex digits");
  const std::string& h = hex->get_ref<const std::string&>();
  std::string raw;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    const int hi = hex_digit(h[i]), lo = hex_digit(h[i + 1]);
    if (hi < 0 || lo < 0) break;
    raw += static_cast<char>(hi * 16 + lo);
  }
  if (raw.size() * 2 != h.size()) fail("file_hex", "must be a string of hex digits");
  if (replace_invalid_utf8(raw) != shown)
    fail("file_hex", "does not spell the file name '" + shown + "'");
  return raw;
}

ImageResult image_result_from_json(const nlohmann::json& j) {
  using nlohmann::json;
  if (!j.is_object()) fail("image record", "must be an object");
  ImageResult r;
  r.file = file_name_from_json(j);
  r.label = static_cast<int>(json_int(j.at("label"), 0, INT_MAX, "label"));
  const json& top5 = j.at("top5");
  const json& scores = j.at("top5_scores");
  if (!top5.is_array() || top5.size() > 5) fail("top5", "must be a list of at most 5 classes");
  if (!scores.is_array() || scores.size() != top5.size())
    fail("top5_scores", "must be a list of one score per top5 class");
  for (size_t i = 0; i < top5.size(); ++i) {
    const int c = static_cast<int>(json_int(top5[i], 0, INT_MAX, "top5"));
    if (std::find(r.top5.begin(), r.top5.end(), c) != r.top5.end())
      fail("top5", "lists class " + std::to_string(c) + " twice");
    r.top5.push_back(c);
    // json_float wrote the float's shortest decimal form, which reads back as the same float;
    // null is how JSON writes a NaN score.
    const json& v = scores[i];
    if (v.is_null()) {
      r.top5_scores.push_back(std::nanf(""));
      continue;
    }
    if (!v.is_number()) fail("top5_scores", "must be numbers");
    const double d = v.get<double>();
    if (!(std::fabs(d) <= FLT_MAX)) fail("top5_scores", "must be finite floats");  // float cast
    r.top5_scores.push_back(float_from_json(d));
  }
  r.correct1 = j.at("correct1").get<bool>();
  r.correct5 = j.at("correct5").get<bool>();
  const bool hit1 = !r.top5.empty() && r.top5[0] == r.label;
  const bool hit5 = std::find(r.top5.begin(), r.top5.end(), r.label) != r.top5.end();
  if (r.correct1 != hit1 || r.correct5 != hit5)
    fail("correct1/correct5", "do not match label " + std::to_string(r.label) + " and top5");
  return r;
}

void write_json_atomic(const std::string& path, const nlohmann::json& j) {
  // Strings report_json did not sanitize need not be UTF-8: replace bad bytes rather than throw.
  write_file_atomic(path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + '\n');
}

}  // namespace fgq
