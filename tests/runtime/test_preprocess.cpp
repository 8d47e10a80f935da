// Preprocessing numerics on synthetic images with known pixels. Images are written as 24-bit BMP
// by hand (lossless, decoded by OpenCV like PNG) so this suite needs no OpenCV headers.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "graph/error.h"
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
