// Streaming mode of the loader, for datasets that do not fit in memory
// (AffectNet's 287k images at 224x224x3 would need 43 GB as an ImageCache).
// Instead of decoding everything once, a pool of threads decodes whole
// batches ahead of the consumer, at most `prefetch` batches in flight, and
// hands them out strictly in order.
//
// Requires a Dataset whose samples stay alive and unchanged while the stream
// runs, and an order of sample indices (epoch_indices below, or any other).
// Ensures: batch k holds exactly the readable samples of order[k*B, (k+1)*B),
// in that order, with pixels identical to build_cache's for the same config,
// whatever the thread count (deterministic). Unreadable images are left out
// of their batch and counted (strict: next() throws adcorre::Error naming the
// file); a batch with no readable image at all is skipped.
// Augmentation is not done here: apply augment_batch to the normalised batch,
// exactly as with the cache.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/models/model_config.h"

namespace adcorre::data {

struct StreamOptions {
  int64_t batch_size = 128;
  int threads = 0;        // decode threads; 0: all cores
  int prefetch = 0;       // batches decoded ahead; 0: 2 per thread
  bool strict = false;
  bool drop_last = false; // drop a final partial batch (of the order, before skipping)
};

struct Batch {
  at::Tensor pixels;               // uint8 [B, C, H, W] (channels-last storage, like the cache)
  at::Tensor labels;               // int64 [B]
  at::Tensor soft;                 // float [B, K], or undefined when no sample has a soft label
  std::vector<int64_t> indices;    // the dataset sample index of each row
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

class BatchStream {
 public:
  BatchStream(const Dataset& ds, const models::ModelConfig& cfg, std::vector<int64_t> order, StreamOptions opts = {});
  ~BatchStream();  // stops and joins the workers
  BatchStream(const BatchStream&) = delete;
  BatchStream& operator=(const BatchStream&) = delete;

  // The next batch in order; false after the last one.
  bool next(Batch& out);
  int64_t num_batches() const { return num_batches_; }
  // Unreadable images met so far ("path: reason").
  std::vector<std::string> skipped() const;

 private:
  struct Impl;  // threads, slots and locks live in stream.cpp
  std::unique_ptr<Impl> impl_;
  int64_t num_batches_ = 0;
};

// The epoch order epoch_indices(cache, plan) gives for a cache of the whole
// dataset (one that skipped nothing), computed from the dataset's labels
// alone: the same shuffle, class balance and rank shards.
std::vector<int64_t> epoch_indices(const Dataset& ds, const EpochPlan& plan);

}  // namespace adcorre::data
