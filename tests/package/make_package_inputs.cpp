// Writes the inputs of the installed-package test: a small colour classifier with the fgq.*
// preprocessing metadata (Conv 1x1 -> Relu -> GlobalAveragePool -> Flatten -> Gemm; class 0 =
// red, 1 = green, 2 = blue, 3 and 4 = nothing) and a solid red JPEG.
//   make_package_inputs MODEL.onnx IMAGE.jpg
#include <cstdio>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "support/onnx_builder.h"

int main(int argc, char** argv) {
  if (argc != 3) return std::fprintf(stderr, "usage: make_package_inputs MODEL.onnx IMAGE.jpg\n"), 2;
  std::vector<float> conv(4 * 3, 0.f), fc(5 * 4, 0.f);
  for (int c = 0; c < 3; ++c) conv[c * 3 + c] = fc[c * 4 + c] = 1.f;
  fgq::test::OnnxBuilder b;
  b.input("image", {-1, 3, 16, 16})
      .init_f32("conv_w", {4, 3, 1, 1}, conv)
      .init_f32("fc_w", {5, 4}, fc)
      .init_f32("fc_b", {5}, std::vector<float>(5, 0.f))
      .metadata("fgq.channel_order", "RGB")
      .metadata("fgq.pixel_scale", "0.00392156862745098")
      .metadata("fgq.mean", "0,0,0")
      .metadata("fgq.std", "1,1,1")
      .metadata("fgq.input_size", "16");
  b.node("Conv", {"image", "conv_w"}, {"c"});
  b.node("Relu", {"c"}, {"r"});
  b.node("GlobalAveragePool", {"r"}, {"p"});
  b.node("Flatten", {"p"}, {"f"}).i("axis", 1);
  b.node("Gemm", {"f", "fc_w", "fc_b"}, {"logits"}).i("transB", 1);
  b.output("logits");
  b.save(argv[1]);
  const cv::Mat red(30, 40, CV_8UC3, cv::Scalar(0, 0, 255));  // OpenCV is BGR
  return cv::imwrite(argv[2], red) ? 0 : 1;
}
