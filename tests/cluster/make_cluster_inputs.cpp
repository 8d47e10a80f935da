// Writes the inputs of the Slurm job-array test (slurm_array_test.sh):
//   make_cluster_inputs DIR
//   DIR/colour.onnx   a tiny classifier with fgq.* preprocessing metadata: class = the image's
//                     dominant colour (Conv 1x1 -> Relu -> GlobalAveragePool -> Flatten -> Gemm;
//                     0 = red, 1 = green, 2 = blue, 3..5 = nothing), so it quantizes like a CNN;
//   DIR/val/          11 solid-colour images + val_labels.txt (some labels wrong, so Top-1 is not
//                     100 %, and one file that is not an image, so a shard has a skipped file);
//   DIR/calib/        4 images for the quantized sweep configuration.
// 11 images over 4 shards: shards of 3, 3, 3 and 2.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "support/onnx_builder.h"

namespace fs = std::filesystem;

namespace {

bool solid(const fs::path& path, int r, int g, int b) {
  cv::Mat m(12, 14, CV_8UC3, cv::Scalar(b, g, r));  // OpenCV is BGR
  m.at<cv::Vec3b>(3, 4) = cv::Vec3b(200, 10, 90);  // a little texture
  return cv::imwrite(path.string(), m);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: make_cluster_inputs DIR\n"), 2;
  const fs::path dir = argv[1];
  fs::create_directories(dir / "val");
  fs::create_directories(dir / "calib");

  std::vector<float> conv(4 * 3, 0.f), fc(6 * 4, 0.f);
  for (int c = 0; c < 3; ++c) conv[c * 3 + c] = fc[c * 4 + c] = 1.f;
  conv[3 * 3 + 0] = conv[3 * 3 + 1] = 0.5f;  // a 4th channel: red + green
  fc[3 * 4 + 3] = 0.25f;
  fgq::test::OnnxBuilder b;
  b.input("image", {-1, 3, 8, 8})
      .init_f32("conv_w", {4, 3, 1, 1}, conv)
      .init_f32("fc_w", {6, 4}, fc)
      .init_f32("fc_b", {6}, std::vector<float>(6, 0.f))
      .metadata("fgq.channel_order", "RGB")
      .metadata("fgq.pixel_scale", "0.00392156862745098")
      .metadata("fgq.mean", "0,0,0")
      .metadata("fgq.std", "1,1,1")
      .metadata("fgq.input_size", "8");
  b.node("Conv", {"image", "conv_w"}, {"c"});
  b.node("Relu", {"c"}, {"r"});
  b.node("GlobalAveragePool", {"r"}, {"p"});
  b.node("Flatten", {"p"}, {"f"}).i("axis", 1);
  b.node("Gemm", {"f", "fc_w", "fc_b"}, {"logits"}).i("transB", 1);
  b.output("logits");
  b.save((dir / "colour.onnx").string());

  // name, colour, label (the true class is the dominant colour: 0 red, 1 green, 2 blue).
  struct Img {
    const char* name;
    int r, g, b, label;
  };
  const Img val[] = {{"img_01.png", 220, 30, 20, 0},  {"img_02.png", 20, 210, 40, 1},
                     {"img_03.JPEG", 30, 20, 230, 2}, {"img_04.png", 240, 40, 40, 1},  // wrong
                     {"img_05.png", 60, 200, 50, 1},  {"img_06.JPEG", 200, 180, 20, 0},
                     {"img_07.png", 10, 10, 250, 2},  {"img_08.png", 90, 80, 200, 0},  // wrong
                     {"img_09.png", 30, 240, 30, 1},  {"img_11.png", 250, 20, 20, 0}};
  std::ofstream labels(dir / "val" / "val_labels.txt");
  for (const Img& i : val) {
    if (!solid(dir / "val" / i.name, i.r, i.g, i.b)) return std::fprintf(stderr, "cannot write %s\n", i.name), 1;
    labels << i.name << ' ' << i.label << '\n';
  }
  std::ofstream(dir / "val" / "img_10.JPEG") << "not a JPEG at all";  // skipped, with a warning
  labels << "img_10.JPEG 2\n";
  const int calib[][3] = {{230, 20, 20}, {20, 230, 20}, {20, 20, 230}, {120, 120, 120}};
  for (int k = 0; k < 4; ++k)
    if (!solid(dir / "calib" / ("c" + std::to_string(k) + ".png"), calib[k][0], calib[k][1], calib[k][2]))
      return 1;
  return labels.good() ? 0 : 1;
}
