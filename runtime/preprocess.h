#pragma once
// Image decoding and preprocessing (OpenCV), driven by the model's metadata_props.
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace fgq {

// Bounds on what preprocessing allocates per image, whatever the flags, the model or the file
// say: the crop and resize targets (fgq.input_size, --crop, --resize) ...
constexpr int kMaxImageSide = 4096;
// ... the decoded image (a JPEG header may declare 65535 x 65535) ...
constexpr int64_t kMaxSourcePixels = int64_t(1) << 27;
// ... and the resized image before the crop (a 10000 x 10 strip resized to 256 on its short side).
constexpr int64_t kMaxResizedPixels = int64_t(1) << 26;

struct Preprocess {
  std::string channel_order = "RGB";  // order the network expects: RGB | BGR
  float pixel_scale = 1.f;            // 0..255 pixels are multiplied by this first
  std::array<float, 3> mean{0, 0, 0};  // then (x - mean) / std, in the network's channel order
  std::array<float, 3> std{1, 1, 1};
  int input_size = 224;               // square crop fed to the network
  int resize_shorter = 256;           // resize shorter side to this, then centre-crop
  bool plain_resize = false;          // instead: resize straight to input_size x input_size

  // Keys: fgq.channel_order, fgq.pixel_scale, fgq.mean, fgq.std, fgq.input_size.
  static Preprocess from_metadata(const std::map<std::string, std::string>& md,
                                  const std::string& source);
};

// Decode `path` and write 3 x input_size x input_size floats (CHW) to out.
// Throws fgq::Error "<path>: <reason>" for files that are not scored:
//   "cannot decode image" (missing, unreadable, not an image OpenCV decodes),
//   "truncated JPEG (...)" / "corrupt JPEG (...)" (decoders would fill the rest with grey),
//   "image WxH is larger than ... pixels" / "... would be resized to ..." (memory bounds above).
void load_image(const std::string& path, const Preprocess& p, float* out);

// Why the JPEG in data[0..size) is damaged ("truncated JPEG (...)", "corrupt JPEG (...)"), or ""
// if it is whole: its marker structure (segments of consistent lengths, entropy-coded scans, the
// end-of-image marker 0xFFD9; bytes after it are ignored), then every scan entropy-decoded by
// libjpeg without a warning (bad Huffman codes, extraneous bytes, premature end of data).
// Not a JPEG (no 0xFFD8 start): "". libjpeg decodes such files with only a warning on stderr and
// grey or garbled pixels; this refuses them instead (runtime/jpeg_damage.cpp).
std::string jpeg_damage(const uint8_t* data, size_t size);

}  // namespace fgq
