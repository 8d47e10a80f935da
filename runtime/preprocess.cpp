// Image decoding and preprocessing: OpenCV decode (BGR uint8), bilinear resize, centre crop,
// then per-channel (x * pixel_scale - mean) / std written as CHW floats in the network's order.
#include "runtime/preprocess.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
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
    const float s = parse_float(*v, source, "fgq.input_size");
    if (s < 1 || s > kMaxImageSide || s != std::floor(s))
      fail(source, "metadata fgq.input_size='" + *v + "' must be an integer from 1 to " +
                       std::to_string(kMaxImageSide));
    p.input_size = static_cast<int>(s);
  }
  if (!missing.empty())
    std::fprintf(stderr,
                 "warning: %s: no %s in the model metadata; using torchvision defaults "
                 "(RGB, pixels/255, ImageNet mean/std, 224)\n",
                 source.c_str(), missing.c_str());
  return p;
}

namespace {

// Width and height from the header of a JPEG (first frame header), PNG or BMP; {0, 0} if unknown.
std::pair<int64_t, int64_t> header_size(const std::vector<uint8_t>& d) {
  const size_t n = d.size();
  auto be16 = [&](size_t at) { return int64_t(d[at]) << 8 | d[at + 1]; };
  auto be32 = [&](size_t at) { return int64_t(be16(at)) << 16 | be16(at + 2); };
  auto le32 = [&](size_t at) {
    return int64_t(int32_t(uint32_t(d[at]) | uint32_t(d[at + 1]) << 8 | uint32_t(d[at + 2]) << 16 |
                           uint32_t(d[at + 3]) << 24));
  };
  if (n >= 24 && d[0] == 0x89 && d[1] == 'P' && d[2] == 'N' && d[3] == 'G') return {be32(16), be32(20)};
  if (n >= 26 && d[0] == 'B' && d[1] == 'M') return {std::llabs(le32(18)), std::llabs(le32(22))};
  if (n >= 4 && d[0] == 0xFF && d[1] == 0xD8) {
    for (size_t i = 2; i + 4 <= n;) {
      if (d[i] != 0xFF) return {0, 0};
      const uint8_t m = d[i + 1];
      if (m == 0xFF) {
        ++i;
        continue;
      }
      if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
        i += 2;
        continue;
      }
      const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
      if (sof && i + 9 <= n) return {be16(i + 7), be16(i + 5)};
      if (m == 0xDA || m == 0xD9) return {0, 0};
      i += 2 + size_t(be16(i + 2));
    }
  }
  return {0, 0};
}

constexpr std::streamoff kMaxFileBytes = std::streamoff(1) << 30;

std::string dims(int64_t w, int64_t h) { return std::to_string(w) + "x" + std::to_string(h); }

}  // namespace

// Shorter side to `shorter` (the longer one truncated like torchvision's Resize), then a
// centre crop whose offset rounds half to even like torchvision's CenterCrop.
static cv::Mat resize_and_crop(const cv::Mat& img, const Preprocess& p, const std::string& path) {
  const int s = p.input_size;
  if (s < 1 || s > kMaxImageSide)
    fail(path, "crop " + std::to_string(s) + " is outside 1.." + std::to_string(kMaxImageSide));
  cv::Mat out;
  if (p.plain_resize) {
    cv::resize(img, out, cv::Size(s, s), 0, 0, cv::INTER_LINEAR);
    return out;
  }
  if (p.resize_shorter > kMaxImageSide)
    fail(path, "resize " + std::to_string(p.resize_shorter) + " is larger than " +
                   std::to_string(kMaxImageSide) + " (--resize)");
  if (p.resize_shorter < s)
    fail(path, "resize " + std::to_string(p.resize_shorter) + " is smaller than the crop " +
                   std::to_string(s));
  const int w = img.cols, h = img.rows;
  const int64_t r = p.resize_shorter;
  const int64_t nw64 = w <= h ? r : r * w / h;
  const int64_t nh64 = w <= h ? r * h / w : r;
  if (nw64 * nh64 > kMaxResizedPixels)
    fail(path, "image " + dims(w, h) + " would be resized to " + dims(nw64, nh64) + ", more than " +
                   std::to_string(kMaxResizedPixels) + " pixels (--resize " + std::to_string(r) + ")");
  const int nw = static_cast<int>(nw64), nh = static_cast<int>(nh64);
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
  std::vector<uint8_t> bytes;
  {
    // Read to the end rather than trusting a size: pipes and FIFOs have none, and a file may
    // grow while it is read. The cap bounds the memory whatever the source.
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, "cannot decode image");
    constexpr size_t kChunk = size_t(1) << 20;
    for (;;) {
      const size_t have = bytes.size();
      bytes.resize(have + kChunk);
      in.read(reinterpret_cast<char*>(bytes.data() + have), std::streamsize(kChunk));
      bytes.resize(have + static_cast<size_t>(in.gcount()));
      if (bytes.size() > size_t(kMaxFileBytes))
        fail(path, "file is larger than " + std::to_string(kMaxFileBytes) + " bytes");
      if (!in) break;
    }
    if (in.bad()) fail(path, "cannot decode image");
  }
  if (std::string why = jpeg_damage(bytes.data(), bytes.size()); !why.empty()) fail(path, why);
  const auto [hw, hh] = header_size(bytes);
  if (hw * hh > kMaxSourcePixels)
    fail(path, "image " + dims(hw, hh) + " is larger than " + std::to_string(kMaxSourcePixels) + " pixels");
  // PIL (the reference pipelines) ignores EXIF orientation; so do we.
  cv::Mat img;
  if (!bytes.empty()) img = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, bytes.data()),
                                         cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
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
