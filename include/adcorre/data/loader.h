// The loader: decodes a Dataset once into an in-memory cache of model-size
// 8-bit pixels (multi-threaded), then serves shuffled, seeded batches.
// FER-2013 (28,709 48x48 images) is 66 MB in this cache and decodes in seconds;
// batches are then an index_select plus batch augmentation, so the loader is
// never the bottleneck of CPU training.
//
// Bad files are skipped with a count and the first paths named (strict:
// an adcorre::Error naming the file). An empty result is an error.
#pragma once
#include <string>

#include "adcorre/data/dataset.h"
#include "adcorre/data/image_cache.h"
#include "adcorre/models/model_config.h"

namespace adcorre::data {

struct CacheOptions {
  int threads = 0;       // 0: all cores
  bool strict = false;
  bool quiet = false;
};

// Decodes every sample to the config's input size and channels.
ImageCache build_cache(const Dataset& ds, const models::ModelConfig& cfg, const CacheOptions& opts = {});

}  // namespace adcorre::data
