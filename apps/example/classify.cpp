// Classifies one image with fgq, built against the installed package (find_package(fgq)).
// usage: fgq-classify MODEL.onnx IMAGE.jpg [CALIB_IMAGE ...]  (calibration images: FGQ first)
#include <fgq/fgq.h>

#include <iostream>

int main(int argc, char** argv) try {
  if (argc < 3) return std::cerr << "usage: fgq-classify MODEL.onnx IMAGE.jpg [CALIB_IMAGE ...]\n", 2;
  fgq::Model model = fgq::Model::load(argv[1]);
  if (argc > 3) model.quantize(fgq::QuantOptions{}, {argv + 3, argv + argc});  // FGQ N=4, 8-bit
  fgq::Session session(model);
  // Copied out: the batch result is a temporary, a range-for over its [0] would dangle.
  const std::vector<fgq::Prediction> top5 = session.classify({argv[2]}, 5)[0];
  for (const fgq::Prediction& p : top5) std::cout << p.class_index << ' ' << p.score << '\n';
} catch (const fgq::Error& e) {
  std::cerr << "fgq-classify: " << e.what() << '\n';
  return 1;
}
