// Image decoding and preprocessing: OpenCV decode (BGR uint8), bilinear resize, centre crop,
// then per-channel (x * pixel_scale - mean) / std written as CHW floats in the network's order.
#include "runtime/preprocess.h"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "graph/error.h"

namespace fgq {

namespace {

float parse_float(const std::string& text, const std::string& source, const std::string& key) {
  try {
    size_t used = 0;
    const float v = std::stof(text, &used);
    if (used == text.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  fail(source, "metadata " + key + "='" + text + "' is not a number");
}

std::array<float, 3> parse_triple(const std::string& text, const std::string& source,
                                  const std::string& key) {
  std::array<float, 3> out{};
  std::stringstream ss(text);
  std::string item;
  int n = 0;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (n == 3 || b == std::string::npos)
      fail(source, "metadata " + key + "='" + text + "' must be 3 comma-separated numbers");
    out[n++] = parse_float(item.substr(b, e - b + 1), source, key);
  }
  if (n != 3) fail(source, "metadata " + key + "='" + text + "' must be 3 comma-separated numbers");
  return out;
}

// torchvision's ImageNet normalisation, given in RGB order.
constexpr std::array<float, 3> kTorchMeanRGB{0.485f, 0.456f, 0.406f};
constexpr std::array<float, 3> kTorchStdRGB{0.229f, 0.224f, 0.225f};

std::array<float, 3> reversed(std::array<float, 3> a) { return {a[2], a[1], a[0]}; }

}  // namespace

Preprocess Preprocess::from_metadata(const std::map<std::string, std::string>& md,
                                     const std::string& source) {
  Preprocess p;
  std::string missing;
  auto get = [&](const char* key) -> const std::string* {
    auto it = md.find(key);
    if (it != md.end()) return &it->second;
    missing += missing.empty() ? key : std::string(", ") + key;
    return nullptr;
  };

  if (const std::string* v = get("fgq.channel_order")) {
    if (*v != "RGB" && *v != "BGR")
      fail(source, "metadata fgq.channel_order='" + *v + "' must be RGB or BGR");
    p.channel_order = *v;
  }
  const bool bgr = p.channel_order == "BGR";
  p.pixel_scale = 1.f / 255.f;
  if (const std::string* v = get("fgq.pixel_scale")) {
    p.pixel_scale = parse_float(*v, source, "fgq.pixel_scale");
    if (p.pixel_scale <= 0) fail(source, "metadata fgq.pixel_scale must be > 0");
  }
  // The defaults are given in RGB; follow the channel order the network declares.
  p.mean = bgr ? reversed(kTorchMeanRGB) : kTorchMeanRGB;
  if (const std::string* v = get("fgq.mean")) p.mean = parse_triple(*v, source, "fgq.mean");
  p.std = bgr ? reversed(kTorchStdRGB) : kTorchStdRGB;
  if (const std::string* v = get("fgq.std")) {
    p.std = parse_triple(*v, source, "fgq.std");
    for (float s : p.std)
      if (s <= 0) fail(source, "metadata fgq.std values must be > 0");
  }
  if (const std::string* v = get("fgq.input_size")) {
    // Bounded before the int conversion (UB for 8e9) and before anyone allocates s*s pixels.
    constexpr float kMaxInputSize = 4096;
    const float s = parse_float(*v, source, "fgq.input_size");
    if (s < 1 || s > kMaxInputSize || s != std::floor(s))
      fail(source, "metadata fgq.input_size='" + *v + "' must be an integer from 1 to 4096");
    p.input_size = static_cast<int>(s);
  }
  if (!missing.empty())
    std::fprintf(stderr,
                 "warning: %s: no %s in the model metadata; using torchvision defaults "
                 "(RGB, pixels/255, ImageNet mean/std, 224)\n",
                 source.c_str(), missing.c_str());
  return p;
}

// Shorter side to `shorter` (the longer one truncated like torchvision's Resize), then a
// centre crop whose offset rounds half to even like torchvision's CenterCrop.
static cv::Mat resize_and_crop(const cv::Mat& img, const Preprocess& p, const std::string& path) {
  const int s = p.input_size;
  cv::Mat out;
  if (p.plain_resize) {
    cv::resize(img, out, cv::Size(s, s), 0, 0, cv::INTER_LINEAR);
    return out;
  }
  if (p.resize_shorter < s)
    fail(path, "resize " + std::to_string(p.resize_shorter) + " is smaller than the crop " +
                   std::to_string(s));
  const int w = img.cols, h = img.rows;
  const int r = p.resize_shorter;
  const int nw = w <= h ? r : static_cast<int>(int64_t(r) * w / h);
  const int nh = w <= h ? static_cast<int>(int64_t(r) * h / w) : r;
  cv::Mat resized;
  if (nw == w && nh == h)
    resized = img;
  else
    cv::resize(img, resized, cv::Size(nw, nh), 0, 0, cv::INTER_LINEAR);
  const int x0 = static_cast<int>(std::nearbyint((nw - s) / 2.0));
  const int y0 = static_cast<int>(std::nearbyint((nh - s) / 2.0));
  return resized(cv::Rect(x0, y0, s, s));
}

void load_image(const std::string& path, const Preprocess& p, float* out) {
  // PIL (the reference pipelines) ignores EXIF orientation; so do we.
  cv::Mat img = cv::imread(path, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  if (img.empty() || img.type() != CV_8UC3) fail(path, "cannot decode image");
  const cv::Mat crop = resize_and_crop(img, p, path);

  const int s = p.input_size;
  const size_t plane = size_t(s) * s;
  // OpenCV pixels are B,G,R: network channel c reads BGR index src[c].
  const int src[3] = {p.channel_order == "BGR" ? 0 : 2, 1, p.channel_order == "BGR" ? 2 : 0};
  float mul[3], add[3];
  for (int c = 0; c < 3; ++c) {
    mul[c] = p.pixel_scale / p.std[c];
    add[c] = -p.mean[c] / p.std[c];
  }
  for (int y = 0; y < s; ++y) {
    const uint8_t* row = crop.ptr<uint8_t>(y);
    for (int x = 0; x < s; ++x)
      for (int c = 0; c < 3; ++c)
        out[c * plane + size_t(y) * s + x] = row[3 * x + src[c]] * mul[c] + add[c];
  }
}

}  // namespace fgq
