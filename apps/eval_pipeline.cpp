#include "eval_pipeline.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>

#include "graph/error.h"

namespace fgq::app {

namespace {

struct Batch {
  size_t first = 0;  // index of the first image
  int count = 0;
  std::vector<float> pixels;        // count x C x S x S
  std::vector<std::string> errors;  // per image: decode error, "" if decoded
};

// Batch buffers are reused: at most `tokens` are in flight, so the pool stays that small.
class BatchPool {
 public:
  explicit BatchPool(size_t floats) : floats_(floats) {}
  Batch* acquire() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) {
      all_.push_back(std::make_unique<Batch>());
      all_.back()->pixels.resize(floats_);
      return all_.back().get();
    }
    Batch* b = free_.back();
    free_.pop_back();
    return b;
  }
  void release(Batch* b) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(b);
  }

 private:
  size_t floats_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Batch>> all_;
  std::vector<Batch*> free_;
};

}  // namespace

bool evaluate(const EvalSetup& s, const std::atomic<bool>& stop, Accuracy& acc,
              Progress& progress) {
  const std::vector<LabeledImage>& images = *s.images;
  const int max_batch = s.exec->max_batch();
  const size_t per_image = size_t(3) * s.pre->input_size * s.pre->input_size;
  const int classes = static_cast<int>(numel(s.exec->output_shape(0, 1)));
  BatchPool pool(per_image * max_batch);
  size_t next = 0;
  bool stopped = false;
  int64_t done = 0;

  auto read = [&](tbb::flow_control& fc) -> Batch* {
    if (next >= images.size() || stop.load()) {
      stopped = next < images.size();
      fc.stop();
      return nullptr;
    }
    Batch* b = pool.acquire();
    b->first = next;
    b->count = static_cast<int>(std::min<size_t>(max_batch, images.size() - next));
    next += b->count;
    return b;
  };

  auto decode = [&](Batch* b) -> Batch* {
    b->errors.assign(b->count, std::string());
    tbb::parallel_for(0, b->count, [&](int i) {
      try {
        load_image(images[b->first + i].path, *s.pre, b->pixels.data() + i * per_image);
      } catch (const Error& e) {
        b->errors[i] = e.what();
      } catch (const std::exception& e) {  // OpenCV or allocation failure on this one image
        std::string what = e.what();
        what = what.substr(0, what.find('\n'));
        b->errors[i] = images[b->first + i].path + ": cannot decode image (" + what + ")";
      }
    });
    return b;
  };

  auto infer = [&](Batch* b) {
    // Close the gaps left by skipped images so the executor sees one dense batch.
    std::vector<size_t> kept;
    for (int i = 0; i < b->count; ++i) {
      const LabeledImage& img = images[b->first + i];
      if (!b->errors[i].empty()) {
        progress.message("warning: " + b->errors[i] + ", skipped");
        // The report keeps the reason without the path (the record names the file).
        const std::string& e = b->errors[i];
        const std::string prefix = img.path + ": ";
        acc.add_skipped(img.name, e.compare(0, prefix.size(), prefix) == 0 ? e.substr(prefix.size()) : e);
        continue;
      }
      if (kept.size() != size_t(i))
        std::memcpy(b->pixels.data() + kept.size() * per_image, b->pixels.data() + i * per_image,
                    per_image * sizeof(float));
      kept.push_back(b->first + i);
      if (s.on_input) s.on_input(img, b->pixels.data() + (kept.size() - 1) * per_image);
    }
    if (!kept.empty()) {
      s.exec->run(b->pixels.data(), static_cast<int>(kept.size()));
      const float* out = s.exec->output(0);
      for (size_t k = 0; k < kept.size(); ++k) {
        const LabeledImage& img = images[kept[k]];
        acc.add(score_image(img.name, img.label, out + k * classes, classes,
                            s.output_is_probability));
      }
    }
    done += b->count;
    progress.update(done);
    pool.release(b);
  };

  tbb::parallel_pipeline(
      static_cast<size_t>(std::max(2, s.tokens)),
      tbb::make_filter<void, Batch*>(tbb::filter_mode::serial_in_order, read) &
          tbb::make_filter<Batch*, Batch*>(tbb::filter_mode::parallel, decode) &
          tbb::make_filter<Batch*, void>(tbb::filter_mode::serial_in_order, infer));
  return stopped;
}

}  // namespace fgq::app
