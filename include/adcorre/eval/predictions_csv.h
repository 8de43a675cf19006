// Per-image predictions of an evaluation, as CSV: what researchers need for
// error analysis, paired tests between two models (McNemar) or their own
// ensembles, which the aggregate metrics cannot give.
//
// Represents: one header row `key,label,predicted,p_<class>...` (the model's
//   class names, in its order), then one row per scored image in the cache's
//   order: the sample's key (its path relative to the dataset root, or
//   `fer2013:ROW` for inline pixels), its true class, the predicted class (the
//   most probable) and every class probability (%.6f). Images the evaluation
//   skipped (unreadable, no face with --detect) have no row.
// Requires: probs is [cache.size(), class_names.size()]; cache.labels index
//   class_names.
// Ensures: the file is written atomically (temp file + rename), or not at all
//   (adcorre::Error naming the path). Fields holding a comma, quote or line
//   break are quoted as RFC 4180 says.
#pragma once
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "adcorre/data/image_cache.h"

namespace adcorre::eval {

std::string predictions_csv(const data::ImageCache& cache, const at::Tensor& probs,
                            const std::vector<std::string>& class_names);

void write_predictions_csv(const std::string& path, const data::ImageCache& cache, const at::Tensor& probs,
                           const std::vector<std::string>& class_names);

}  // namespace adcorre::eval
