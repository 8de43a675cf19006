// Evaluating a model on a dataset: class matching by name, batched inference
// with optional test-time augmentation, and the paper's metrics.
#pragma once
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "adcorre/data/image_cache.h"
#ifdef ADCORRE_HAVE_OPENCV
#include "adcorre/data/dataset.h"  // match_classes: decoded datasets exist only in a build with OpenCV
#include "adcorre/data/loader.h"
#endif
#include "adcorre/eval/metrics.h"
#include "adcorre/models/fer_model.h"

namespace adcorre::eval {

// Class probabilities [N, C] for model-size uint8 pixels [N, C, H, W].
// tta: "none", "flip" (mean of the image and its mirror), "tencrop" (four
// corner and a centre crop of 90% of the side, resized back, each with its
// mirror: ten views).
at::Tensor predict_probs(models::FerModelImpl& net, const models::ModelConfig& cfg, const at::Tensor& pixels_u8,
                         const std::string& tta = "none", int batch = 256, const std::string& device = "cpu");

// Maps a dataset's classes onto the model's by name. Dataset classes the model
// lacks are reported (warning) and their samples left out, never mislabelled.
#ifdef ADCORRE_HAVE_OPENCV
data::Dataset match_classes(const data::Dataset& ds, const std::vector<std::string>& model_classes);
#endif

struct EvalResult {
  Metrics metrics;
  std::vector<std::string> dropped_classes;
  int64_t skipped_images = 0;
  at::Tensor probs;  // [N, C] class probabilities of the scored images, in the cache's order
  nlohmann::json to_json() const;
};

// Evaluates on an already-built cache whose classes are the model's.
EvalResult evaluate_cache(models::FerModelImpl& net, const models::ModelConfig& cfg, const data::ImageCache& cache,
                          const std::string& tta = "none", const std::string& device = "cpu");

}  // namespace adcorre::eval
