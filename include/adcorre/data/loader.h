// The loader: decodes a Dataset once into an in-memory cache of model-size
// 8-bit pixels (multi-threaded), then serves shuffled, seeded batches.
// FER-2013 (28,709 48x48 images) is 66 MB in this cache and decodes in seconds;
// batches are then an index_select plus batch augmentation, so the loader is
// never the bottleneck of CPU training.
//
// Bad files are skipped with a count and the first paths named (strict:
// an adcorre::Error naming the file). An empty result is an error.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "adcorre/data/dataset.h"
#include "adcorre/models/model_config.h"

namespace adcorre::data {

struct CacheOptions {
  int threads = 0;       // 0: all cores
  bool strict = false;
  bool quiet = false;
};

struct ImageCache {
  at::Tensor pixels;     // uint8 [N, C, H, W]
  at::Tensor labels;     // int64 [N]
  at::Tensor soft;       // float [N, C] or undefined
  std::vector<std::string> keys;   // sample keys, same order
  std::vector<std::string> classes;
  std::vector<std::string> skipped;  // "path: reason"
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

// Decodes every sample to the config's input size and channels.
ImageCache build_cache(const Dataset& ds, const models::ModelConfig& cfg, const CacheOptions& opts = {});

// Epoch order: a seeded permutation (or class-balanced sampling with
// replacement), optionally the shard of one rank (disjoint, every rank the
// same number of batches).
struct EpochPlan {
  uint64_t seed = 0;
  int64_t epoch = 0;
  bool shuffle = true;
  bool balanced = false;
  int rank = 0, world = 1;
};
std::vector<int64_t> epoch_indices(const ImageCache& cache, const EpochPlan& plan);

}  // namespace adcorre::data
