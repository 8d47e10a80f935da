// Writes the inputs of the Slurm job-array test (slurm_array_test.sh):
//   make_cluster_inputs DIR
//   DIR/colour.onnx   fgq::test::colour_classifier_model (8 x 8, 6 classes, the red + green
//                     channel): class = the image's dominant colour
//                     (0 red, 1 green, 2 blue), so it quantizes like a CNN;
//   DIR/val/          11 solid-colour images + val_labels.txt (some labels wrong, so Top-1 is not
//                     100 %, and one file that is not an image, so a shard has a skipped file);
//   DIR/calib/        4 images for the quantized sweep configuration.
// 11 images over 4 shards: shards of 3, 3, 3 and 2.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "support/sample_models.h"

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

  fgq::test::colour_classifier_model(8, 6, true).save((dir / "colour.onnx").string());

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
