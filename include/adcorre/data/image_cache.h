// The decoded form of a dataset every training and evaluation step works on:
// model-size 8-bit pixels, labels, optional soft labels, keys and class names,
// plus the seeded epoch order over it. Only LibTorch: no image decoding here
// (data/loader.h decodes a Dataset into one; data/packed.h reads one from a
// packed file), so the dependency-light build (ADCORRE_MINIMAL) has it too.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace adcorre::data {

struct ImageCache {
  at::Tensor pixels;     // uint8 [N, C, H, W]
  at::Tensor labels;     // int64 [N]
  at::Tensor soft;       // float [N, C] or undefined
  std::vector<std::string> keys;   // sample keys, same order
  std::vector<std::string> classes;
  std::vector<std::string> skipped;  // "path: reason"
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

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
