// Classifies one image with an FGQ-quantized model, through the installed fgq package.
// usage: fgq-classify MODEL.onnx IMAGE.jpg [CALIB_IMAGE ...]
#include <fgq/fgq.h>

#include <iostream>

int main(int argc, char** argv) try {
  if (argc < 3) return std::cerr << "usage: fgq-classify MODEL.onnx IMAGE.jpg [CALIB_IMAGE ...]\n", 2;
  fgq::Model model = fgq::Model::load(argv[1]);
  if (argc > 3) model.quantize(fgq::QuantOptions{}, {argv + 3, argv + argc});  // FGQ N=4, 8-bit
  fgq::Session session(model);
  for (const fgq::Prediction& p : session.classify({argv[2]})[0])
    std::cout << p.class_index << ' ' << p.score << '\n';
} catch (const fgq::Error& e) {
  std::cerr << "fgq-classify: " << e.what() << '\n';
  return 1;
}
