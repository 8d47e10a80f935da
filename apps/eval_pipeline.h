#pragma once
// fgq-run's evaluation loop: decoding overlaps inference in a tbb::parallel_pipeline
//   serial reader (next batch of image indices) -> parallel decode + preprocess into the batch
//   buffer -> serial inference + scoring, in order
// with a few batches in flight. Images that cannot be decoded (or are damaged: truncated or
// corrupt JPEGs, see load_image) are skipped with one warning line naming the file and the
// reason, and counted in acc with the reason.
#include <atomic>
#include <functional>
#include <vector>

#include "runtime/dataset.h"
#include "runtime/executor.h"
#include "runtime/preprocess.h"
#include "runtime/progress.h"
#include "runtime/report.h"

namespace fgq::app {

struct EvalSetup {
  const std::vector<LabeledImage>* images = nullptr;
  const Preprocess* pre = nullptr;
  Executor* exec = nullptr;           // max_batch() images per batch
  bool output_is_probability = false;  // the graph ends in Softmax
  int tokens = 4;                     // batches in flight
  // Called for every decoded image in order, with its preprocessed pixels (C x S x S).
  std::function<void(const LabeledImage& image, const float* pixels)> on_input;
};

// Scores every image into acc, in order, until done or `stop` becomes true (checked before
// each new batch; batches already in flight are finished). Returns true if stopped early.
bool evaluate(const EvalSetup& setup, const std::atomic<bool>& stop, Accuracy& acc,
              Progress& progress);

}  // namespace fgq::app
