// Preprocessing numerics on synthetic images with known pixels. Images are written as 24-bit BMP
// by hand (lossless, decoded by OpenCV like PNG); the damaged-file cases encode JPEGs and PNGs
// with OpenCV.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "graph/error.h"
#include "runtime/dataset.h"
#include "runtime/preprocess.h"
#include "support/test_util.h"

using fgq::Preprocess;

namespace {

struct Rgb {
  uint8_t r, g, b;
};

// Writes a w x h 24-bit BMP; px(x, y) gives the colour.
template <class F>
std::string write_bmp(int w, int h, F px) {
  const std::string path = fgq::test::temp_path(".bmp");
  const int row = (3 * w + 3) / 4 * 4;
  const uint32_t data = uint32_t(row) * h, size = 54 + data;
  std::vector<uint8_t> f(size, 0);
  auto u32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) f[at + i] = uint8_t(v >> (8 * i));
  };
  f[0] = 'B', f[1] = 'M';
  u32(2, size), u32(10, 54), u32(14, 40), u32(18, w), u32(22, h);
  f[26] = 1, f[28] = 24;
  u32(34, data);
  for (int y = 0; y < h; ++y)  // rows bottom-up, pixels B,G,R
    for (int x = 0; x < w; ++x) {
      const Rgb c = px(x, y);
      uint8_t* p = &f[54 + size_t(h - 1 - y) * row + 3 * x];
      p[0] = c.b, p[1] = c.g, p[2] = c.r;
    }
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(f.data()), f.size());
  return path;
}

Preprocess raw(int size, const std::string& order = "RGB") {
  Preprocess p;  // pixels as they are: scale 1, mean 0, std 1
  p.channel_order = order;
  p.input_size = size;
  return p;
}

std::vector<float> load(const std::string& path, const Preprocess& p) {
  std::vector<float> out(size_t(3) * p.input_size * p.input_size);
  fgq::load_image(path, p, out.data());
  return out;
}

float at(const std::vector<float>& chw, int s, int c, int y, int x) {
  return chw[(size_t(c) * s + y) * s + x];
}

// Pixel (x, y) of a 3x3 test image: every channel of every pixel distinct.
Rgb distinct(int x, int y) { return {uint8_t(10 + x + 3 * y), uint8_t(100 + x + 3 * y), uint8_t(200 + x + 3 * y)}; }

}  // namespace

TEST_CASE("preprocess: RGB order gives CHW planes R, G, B with exact pixel values") {
  const std::string path = write_bmp(3, 3, distinct);
  Preprocess p = raw(3);
  p.plain_resize = true;  // same size: no interpolation
  const std::vector<float> v = load(path, p);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 3; ++x) {
      const Rgb c = distinct(x, y);
      CHECK(at(v, 3, 0, y, x) == c.r);
      CHECK(at(v, 3, 1, y, x) == c.g);
      CHECK(at(v, 3, 2, y, x) == c.b);
    }
  std::remove(path.c_str());
}

TEST_CASE("preprocess: BGR order swaps the first and last planes") {
  const std::string path = write_bmp(3, 3, distinct);
  Preprocess p = raw(3, "BGR");
  p.plain_resize = true;
  const std::vector<float> v = load(path, p);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 3; ++x) {
      const Rgb c = distinct(x, y);
      CHECK(at(v, 3, 0, y, x) == c.b);
      CHECK(at(v, 3, 1, y, x) == c.g);
      CHECK(at(v, 3, 2, y, x) == c.r);
    }
  std::remove(path.c_str());
}

TEST_CASE("preprocess: pixel_scale, mean and std apply per network channel") {
  const std::string path = write_bmp(2, 2, [](int, int) { return Rgb{255, 128, 0}; });
  Preprocess p = raw(2, "BGR");
  p.plain_resize = true;
  p.pixel_scale = 1.f / 255;
  p.mean = {0.5f, 0.25f, 0.125f};  // B, G, R
  p.std = {0.5f, 2.f, 0.25f};
  const std::vector<float> v = load(path, p);
  for (int i = 0; i < 4; ++i) {
    CHECK(v[0 * 4 + i] == Approx((0.f - 0.5f) / 0.5f));
    CHECK(v[1 * 4 + i] == Approx((128.f / 255 - 0.25f) / 2.f));
    CHECK(v[2 * 4 + i] == Approx((1.f - 0.125f) / 0.25f));
  }
  std::remove(path.c_str());
}

TEST_CASE("preprocess: Caffe-style BGR mean subtraction without scaling") {
  const std::string path = write_bmp(1, 1, [](int, int) { return Rgb{200, 150, 100}; });
  Preprocess p = raw(1, "BGR");
  p.plain_resize = true;
  p.mean = {103.939f, 116.779f, 123.68f};
  const std::vector<float> v = load(path, p);
  CHECK(v[0] == Approx(100 - 103.939f));
  CHECK(v[1] == Approx(150 - 116.779f));
  CHECK(v[2] == Approx(200 - 123.68f));
  std::remove(path.c_str());
}

// 12x6: left half red, right half blue.
static Rgb halves(int x, int) { return x < 6 ? Rgb{255, 0, 0} : Rgb{0, 0, 255}; }

TEST_CASE("preprocess: shorter side resize then centre crop") {
  const std::string path = write_bmp(12, 6, halves);
  Preprocess p = raw(3);
  p.resize_shorter = 3;  // -> 6x3 (red red red blue blue blue), crop x0 = round(1.5) = 2
  const std::vector<float> v = load(path, p);
  for (int y = 0; y < 3; ++y) {
    CHECK(at(v, 3, 0, y, 0) == 255);
    CHECK(at(v, 3, 2, y, 0) == 0);
    for (int x = 1; x < 3; ++x) {
      CHECK(at(v, 3, 0, y, x) == 0);
      CHECK(at(v, 3, 2, y, x) == 255);
    }
  }
  std::remove(path.c_str());
}

TEST_CASE("preprocess: centre crop without resize takes the middle columns") {
  // 7x4, resize_shorter 4 = no resize; crop 4 starts at round-half-even(1.5) = 2.
  const std::string path = write_bmp(7, 4, [](int x, int) { return Rgb{uint8_t(10 * x), 0, 0}; });
  Preprocess p = raw(4);
  p.resize_shorter = 4;
  const std::vector<float> v = load(path, p);
  for (int x = 0; x < 4; ++x) CHECK(at(v, 4, 0, 1, x) == 10 * (x + 2));
  std::remove(path.c_str());
}

TEST_CASE("preprocess: plain resize squeezes the whole image, no crop") {
  const std::string path = write_bmp(12, 6, halves);
  Preprocess p = raw(3);
  p.plain_resize = true;  // x scale 4: columns sample src x 1.5 (red), 5.5 (edge), 9.5 (blue)
  const std::vector<float> v = load(path, p);
  for (int y = 0; y < 3; ++y) {
    CHECK(at(v, 3, 0, y, 0) == 255);
    CHECK(at(v, 3, 2, y, 2) == 255);
    CHECK(at(v, 3, 0, y, 2) == 0);
    CHECK(at(v, 3, 0, y, 1) == Approx(127.5).margin(1));  // half red, half blue
    CHECK(at(v, 3, 2, y, 1) == Approx(127.5).margin(1));
  }
  std::remove(path.c_str());
}

TEST_CASE("preprocess: resize smaller than the crop is an error") {
  const std::string path = write_bmp(4, 4, distinct);
  Preprocess p = raw(4);
  p.resize_shorter = 3;
  std::vector<float> out(3 * 16);
  CHECK_THROWS_WITH(fgq::load_image(path, p, out.data()), Catch::Contains("smaller than the crop"));
  std::remove(path.c_str());
}

TEST_CASE("preprocess: unreadable files throw '<path>: cannot decode image'") {
  const std::string garbage = fgq::test::temp_path(".JPEG");
  std::ofstream(garbage) << "this is not a JPEG";
  const std::string empty = fgq::test::temp_path(".JPEG");
  std::ofstream{empty};
  const std::string missing = fgq::test::temp_path(".JPEG");
  std::vector<float> out(3 * 4);
  for (const std::string& path : {garbage, empty, missing})
    CHECK_THROWS_WITH(fgq::load_image(path, raw(2), out.data()), path + ": cannot decode image");
  std::remove(garbage.c_str());
  std::remove(empty.c_str());
}

TEST_CASE("preprocess: from_metadata reads every key") {
  const Preprocess p = Preprocess::from_metadata({{"fgq.channel_order", "BGR"},
                                                  {"fgq.pixel_scale", "1"},
                                                  {"fgq.mean", "103.939, 116.779,123.68"},
                                                  {"fgq.std", "1,1,1"},
                                                  {"fgq.input_size", "227"}},
                                                 "m.onnx");
  CHECK(p.channel_order == "BGR");
  CHECK(p.pixel_scale == 1.f);
  CHECK(p.mean[0] == Approx(103.939f));
  CHECK(p.mean[2] == Approx(123.68f));
  CHECK(p.std[1] == 1.f);
  CHECK(p.input_size == 227);
}

TEST_CASE("preprocess: missing metadata falls back to torchvision defaults") {
  const Preprocess rgb = Preprocess::from_metadata({}, "m.onnx");
  CHECK(rgb.channel_order == "RGB");
  CHECK(rgb.pixel_scale == Approx(1 / 255.f));
  CHECK(rgb.mean[0] == Approx(0.485f));
  CHECK(rgb.std[2] == Approx(0.225f));
  CHECK(rgb.input_size == 224);
  // Defaults follow a declared BGR order.
  const Preprocess bgr = Preprocess::from_metadata({{"fgq.channel_order", "BGR"}}, "m.onnx");
  CHECK(bgr.mean[0] == Approx(0.406f));
  CHECK(bgr.mean[2] == Approx(0.485f));
}

TEST_CASE("preprocess: bad metadata values name the model and the key") {
  using M = std::map<std::string, std::string>;
  CHECK_THROWS_WITH(Preprocess::from_metadata(M{{"fgq.channel_order", "RBG"}}, "m.onnx"),
                    Catch::StartsWith("m.onnx: metadata fgq.channel_order"));
  CHECK_THROWS_WITH(Preprocess::from_metadata(M{{"fgq.mean", "1,2"}}, "m.onnx"),
                    Catch::Contains("fgq.mean='1,2' must be 3 comma-separated numbers"));
  CHECK_THROWS_WITH(Preprocess::from_metadata(M{{"fgq.std", "1,0,1"}}, "m.onnx"),
                    Catch::Contains("fgq.std values must be > 0"));
  CHECK_THROWS_WITH(Preprocess::from_metadata(M{{"fgq.input_size", "22x"}}, "m.onnx"),
                    Catch::Contains("fgq.input_size"));
  // Found by fuzzing: 8e9 used to reach an out-of-range float -> int conversion.
  CHECK_THROWS_WITH(Preprocess::from_metadata(M{{"fgq.input_size", "8e9"}}, "m.onnx"),
                    "m.onnx: metadata fgq.input_size='8e9' must be an integer from 1 to 4096");
  CHECK_THROWS_AS(Preprocess::from_metadata(M{{"fgq.pixel_scale", "abc"}}, "m.onnx"), fgq::Error);
}

namespace {

// A 64x48 JPEG with some structure (a gradient), as bytes.
std::vector<uint8_t> jpeg_bytes(bool progressive = false) {
  cv::Mat m(48, 64, CV_8UC3);
  for (int y = 0; y < m.rows; ++y)
    for (int x = 0; x < m.cols; ++x) m.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(4 * x), uchar(5 * y), uchar(x * y));
  std::vector<uint8_t> out;
  REQUIRE(cv::imencode(".jpg", m, out, {cv::IMWRITE_JPEG_PROGRESSIVE, progressive ? 1 : 0}));
  return out;
}

std::string write_bytes(const std::vector<uint8_t>& b, const std::string& ext) {
  const std::string path = fgq::test::temp_path(ext);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), b.size());
  return path;
}

std::string damage(std::vector<uint8_t> b) { return fgq::jpeg_damage(b.data(), b.size()); }

std::string load_error(const std::string& path, const Preprocess& p) {
  std::vector<float> out(size_t(3) * p.input_size * p.input_size);
  try {
    fgq::load_image(path, p, out.data());
  } catch (const fgq::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("preprocess: jpeg_damage accepts whole JPEGs, finds truncated and corrupt ones") {
  for (bool progressive : {false, true}) {
    INFO((progressive ? "progressive" : "baseline"));
    const std::vector<uint8_t> whole = jpeg_bytes(progressive);
    CHECK(damage(whole) == "");
    std::vector<uint8_t> trailing = whole;  // bytes after the end-of-image marker are ignored
    trailing.insert(trailing.end(), {0x00, 0x12, 0xFF});
    CHECK(damage(trailing) == "");
    // Cut anywhere: in the headers, in the scan data, just before or inside the EOI marker.
    for (size_t keep : {size_t(3), size_t(100), whole.size() / 2, whole.size() - 2, whole.size() - 1}) {
      INFO("keep " << keep);
      const std::vector<uint8_t> cut(whole.begin(), whole.begin() + keep);
      CHECK_THAT(damage(cut), Catch::StartsWith("truncated JPEG (" + std::to_string(keep) + " bytes"));
    }
  }
  std::vector<uint8_t> stray = jpeg_bytes();
  stray.insert(stray.begin() + 2, {0x12, 0x34});  // garbage between SOI and the first segment
  CHECK(damage(stray) == "corrupt JPEG (2 stray bytes before the marker at byte 4)");
  std::vector<uint8_t> bad_len = jpeg_bytes();
  bad_len[4] = 0, bad_len[5] = 1;  // first segment's length: 1 < 2
  CHECK(damage(bad_len) == "corrupt JPEG (segment length 1 at byte 4)");
  CHECK(damage({'B', 'M', 0, 0}) == "");  // not a JPEG: the decoder decides
  CHECK(damage({}) == "");
  CHECK(damage({0xFF, 0xD8}) == "truncated JPEG (2 bytes, no end-of-image marker; decoders fill the rest with grey)");
}

TEST_CASE("preprocess: jpeg_damage finds corrupt entropy-coded data in a whole structure") {
  cv::Mat m(96, 128, CV_8UC3);
  cv::randu(m, cv::Scalar::all(0), cv::Scalar::all(255));
  std::vector<uint8_t> whole;
  REQUIRE(cv::imencode(".jpg", m, whole));
  REQUIRE(damage(whole) == "");
  // The scan data: after the start-of-scan segment, up to the end-of-image marker.
  size_t sos = 2;
  while (!(whole[sos] == 0xFF && whole[sos + 1] == 0xDA)) sos += 2 + (size_t(whole[sos + 2]) << 8 | whole[sos + 3]);
  const size_t begin = sos + 2 + (size_t(whole[sos + 2]) << 8 | whole[sos + 3]), end = whole.size() - 2;
  REQUIRE(end > begin + 100);
  // Bytes changed inside the scan, no marker made or broken: the structure stays whole, which
  // the marker scan alone accepted (OpenCV then decoded garbled pixels with a warning).
  std::vector<uint8_t> bad = whole;
  for (size_t i = begin + 20; i < end - 20; i += (end - begin) / 12)
    if (bad[i] != 0xFF && bad[i - 1] != 0xFF && (bad[i] ^ 0x5A) != 0xFF) bad[i] ^= 0x5A;
  CHECK_THAT(damage(bad), Catch::StartsWith("corrupt JPEG (libjpeg: "));
  Preprocess p = raw(32);
  p.resize_shorter = 32;
  const std::string path = write_bytes(bad, ".JPEG");
  CHECK_THAT(load_error(path, p), Catch::StartsWith(path + ": corrupt JPEG (libjpeg: "));
  std::remove(path.c_str());
}

TEST_CASE("preprocess: jpeg_damage accepts every shared ImageNet image") {
  for (const char* dir : {"data/imagenet/val", "data/imagenet/calib"}) {
    const auto folder = fgq::test::shared_data(dir);
    if (!folder) continue;
    int checked = 0;
    for (const std::string& f : fgq::list_image_files(*folder)) {
      std::ifstream in(f, std::ios::binary);
      const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      INFO(f);
      CHECK(damage(bytes) == "");
      ++checked;
    }
    CHECK(checked > 0);
  }
}

TEST_CASE("preprocess: a truncated JPEG is not decoded with a grey tail, the reason is the error") {
  const std::vector<uint8_t> whole = jpeg_bytes();
  const std::string ok = write_bytes(whole, ".JPEG");
  const std::string cut = write_bytes(std::vector<uint8_t>(whole.begin(), whole.begin() + whole.size() * 2 / 3), ".JPEG");
  Preprocess p = raw(32);
  p.resize_shorter = 32;
  CHECK(load_error(ok, p) == "(no error)");
  // Before: OpenCV decoded it (libjpeg: "Premature end of JPEG file" on stderr, no file name).
  CHECK_THAT(load_error(cut, p), Catch::StartsWith(cut + ": truncated JPEG ("));
  // A truncated PNG: libpng refuses it, OpenCV returns nothing.
  std::vector<uint8_t> png;
  REQUIRE(cv::imencode(".png", cv::Mat(40, 40, CV_8UC3, cv::Scalar(1, 2, 3)), png));
  const std::string png_cut = write_bytes(std::vector<uint8_t>(png.begin(), png.begin() + png.size() - 20), ".png");
  CHECK(load_error(png_cut, p) == png_cut + ": cannot decode image");
  for (const std::string& f : {ok, cut, png_cut}) std::remove(f.c_str());
}

TEST_CASE("preprocess: memory per image is bounded whatever the file or the flags say") {
  // A PNG header declaring 60000 x 60000 (10.8 GB decoded), refused before decoding.
  std::vector<uint8_t> png;
  REQUIRE(cv::imencode(".png", cv::Mat(2, 2, CV_8UC3, cv::Scalar(0, 0, 0)), png));
  for (int at : {16, 20}) png[at] = 0, png[at + 1] = 0, png[at + 2] = 0xEA, png[at + 3] = 0x60;
  const std::string bomb = write_bytes(png, ".png");
  CHECK(load_error(bomb, raw(2)) == bomb + ": image 60000x60000 is larger than 134217728 pixels");
  // A 2000 x 1 strip resized to 256 on its short side would be 512000 x 256.
  const std::string strip = write_bmp(2000, 1, [](int, int) { return Rgb{1, 2, 3}; });
  Preprocess p = raw(224);
  CHECK(load_error(strip, p) == strip + ": image 2000x1 would be resized to 512000x256, more than "
                                        "67108864 pixels (--resize 256)");
  p.plain_resize = true;  // straight to 224 x 224: fine
  CHECK(load_error(strip, p) == "(no error)");
  const std::string small = write_bmp(4, 4, distinct);
  Preprocess q = raw(4);
  q.resize_shorter = 100000;
  CHECK(load_error(small, q) == small + ": resize 100000 is larger than 4096 (--resize)");
  for (const std::string& f : {bomb, strip, small}) std::remove(f.c_str());
}
