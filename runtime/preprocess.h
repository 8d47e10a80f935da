#pragma once
// Image decoding and preprocessing (OpenCV), driven by the model's metadata_props.
#include <array>
#include <map>
#include <string>

namespace fgq {

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
// Throws fgq::Error "<path>: cannot decode image" for unreadable files.
void load_image(const std::string& path, const Preprocess& p, float* out);

}  // namespace fgq
