#pragma once
// fgq: an inference runtime for ternary-weight CNNs (FGQ). The embedding API:
//
//   fgq::Model model = fgq::Model::load("models/resnet50.onnx");
//   model.quantize(fgq::QuantOptions{}, calibration_image_paths);   // optional: FGQ N=4, 8-bit
//   fgq::Session session(model);
//   std::vector<fgq::Prediction> top5 = session.classify({"cat.jpg"})[0];  // a copy, not a ref
//   for (auto& p : top5) std::cout << p.class_index << " " << p.score;
//
// Every failure is an fgq::Error whose message is one line naming the file and the problem.
// That includes misuse: null pointers, sizes that do not match, a k outside 1..classes, and
// calls on a moved-from Model or Session (only assignment and destruction are allowed there);
// none of them is undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fgq/error.h"
#include "fgq/quant_options.h"

namespace fgq {

struct Prediction {
  int class_index = -1;
  float score = 0;     // softmax probability
};

// What quantization did, over the whole network.
struct QuantSummary {
  int ternary_layers = 0;
  int int8_layers = 0;
  double weight_sparsity = 0;   // fraction of ternary weights that are zero
  double mults_removed = 0;     // 1 - 1/N over ternary weights
  int64_t zero_levels = 0;      // ternary groups whose scale folded to level 0 (of nonzero_groups)
  int64_t nonzero_groups = 0;
  bool integer = false;         // sessions run the integer pipeline (else the FP32 simulation)
  int integer_layers = 0;       // layers running as integer kernels
  std::vector<std::string> float_layers;  // quantized layers left on float kernels, and why
};

class Model {
 public:
  static Model load(const std::string& onnx_path);
  // `name` stands for the file name in error messages. data may be null only if size is 0.
  static Model load_from_memory(const void* data, size_t size, const std::string& name = "<memory>");

  // FGQ at load time: ternarize weights, calibrate activations and correct per-channel
  // statistics on the given images (file paths, preprocessed like inference images). Options
  // out of range are an fgq::Error (e.g. group outside 1..65536; a group larger than a layer's
  // input channels spans all of them).
  QuantSummary quantize(const QuantOptions& options, const std::vector<std::string>& calib_images);
  // The same with already preprocessed images: n x 3 x input_size x input_size floats (n >= 0;
  // calib may be null only if n is 0).
  QuantSummary quantize(const QuantOptions& options, const float* calib, int n);

  // Writes the model as sessions run it (ONNX; an integer model in fgq's own ops) so that load()
  // gets it back without calibration images.
  void save(const std::string& onnx_path) const;

  const std::map<std::string, std::string>& metadata() const;  // ONNX metadata_props
  int input_size() const;       // square input side the network expects
  bool quantized() const;
  bool integer() const;         // sessions run integer kernels
  // Bytes of weights resident for sessions: the constants they run on (2-bit ternary codes and
  // levels, int8, float) plus kernel-packed weights made so far, shared by all sessions.
  size_t weight_bytes() const;

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

 private:
  Model();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  friend class Session;
};

// Runs a model. A session owns its planned memory; use one per thread.
class Session {
 public:
  // max_batch: 1..65536 images per run() (the session plans memory for that many).
  explicit Session(const Model& model, int max_batch = 1);
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  ~Session();

  // input: `size` floats, which must be exactly batch x input_floats() (batch x 3 x S x S
  // preprocessed floats), batch in 1..max_batch(); returns batch x num_classes() logits.
  // Throws fgq::Error for a null input, a size that does not match, or a non-finite input value
  // (NaN or infinity; the message names the first one: "input[i] (image b, channel c, row y,
  // column x) is nan"): the network's integer quantization has no defined result for them.
  std::vector<float> run(const float* input, size_t size, int batch);
  std::vector<float> run(const std::vector<float>& input, int batch);  // size = input.size()
  // Trusts the caller that input holds batch x input_floats() floats: cannot check.
  [[deprecated("pass the input's size: run(input, size, batch) or run(vector, batch)")]]
  std::vector<float> run(const float* input, int batch);
  // Decodes and preprocesses image files the way the model's metadata says; the k best classes
  // per image, best first (ties to the lower class index), with softmax probabilities. k must
  // be in 1..num_classes() (fgq::Error otherwise, also for the default 5 with fewer classes).
  // The ranking is the one fgq-run's reports use.
  std::vector<std::vector<Prediction>> classify(const std::vector<std::string>& image_paths, int k = 5);
  // Preprocesses one image file into 3 x S x S floats (for run()).
  std::vector<float> preprocess(const std::string& image_path) const;

  size_t input_floats() const;  // floats of one input image, as the network takes it: 3 x S x S
  int num_classes() const;
  int max_batch() const;
  size_t activation_bytes() const;  // the session's planned activation memory and scratch

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fgq
