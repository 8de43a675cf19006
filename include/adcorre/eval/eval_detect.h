// Evaluation on uncropped photos: detect the largest face first, then crop
// and preprocess it as `predict` does. Images with no face are skipped with a
// count (reported), never scored as a guess.
#pragma once
#include <string>

#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/models/model_config.h"

namespace adcorre::eval {

data::ImageCache cache_with_detection(const data::Dataset& ds, const models::ModelConfig& cfg,
                                      const std::string& detector);

}  // namespace adcorre::eval
