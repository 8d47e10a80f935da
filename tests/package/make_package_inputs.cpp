// Writes the inputs of the installed-package test: a small colour classifier
// (fgq::test::colour_classifier_model, 16 x 16, 5 classes: 0 red, 1 green, 2 blue, 3 and 4
// nothing) and a solid red JPEG.
//   make_package_inputs MODEL.onnx IMAGE.jpg
#include <cstdio>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "support/sample_models.h"

int main(int argc, char** argv) {
  if (argc != 3) return std::fprintf(stderr, "usage: make_package_inputs MODEL.onnx IMAGE.jpg\n"), 2;
  fgq::test::colour_classifier_model(16, 5, false).save(argv[1]);
  const cv::Mat red(30, 40, CV_8UC3, cv::Scalar(0, 0, 255));  // OpenCV is BGR
  return cv::imwrite(argv[2], red) ? 0 : 1;
}
