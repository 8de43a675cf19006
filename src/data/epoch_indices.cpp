#include <algorithm>
#include <numeric>
#include <random>

#include <torch/torch.h>

#include "adcorre/data/image_cache.h"

namespace adcorre::data {

std::vector<int64_t> epoch_indices(const ImageCache& cache, const EpochPlan& plan) {
  const int64_t N = cache.size();
  std::mt19937_64 rng(plan.seed * 1000003ULL + static_cast<uint64_t>(plan.epoch) * 7919ULL + 17);
  std::vector<int64_t> idx(N);
  if (plan.balanced) {
    // Class-balanced sampling with replacement: each class equally likely.
    auto counts = torch::bincount(cache.labels);
    auto cnt = counts.accessor<int64_t, 1>();
    auto lab = cache.labels.accessor<int64_t, 1>();
    std::vector<double> w(N);
    for (int64_t i = 0; i < N; ++i) w[i] = 1.0 / static_cast<double>(cnt[lab[i]]);
    std::discrete_distribution<int64_t> dist(w.begin(), w.end());
    for (auto& v : idx) v = dist(rng);
  } else {
    std::iota(idx.begin(), idx.end(), 0);
    if (plan.shuffle) std::shuffle(idx.begin(), idx.end(), rng);
  }
  if (plan.world > 1) {
    // Disjoint shards of equal length (the tail that does not divide is dropped).
    const int64_t per = N / plan.world;
    std::vector<int64_t> shard;
    shard.reserve(per);
    for (int64_t i = 0; i < per; ++i) shard.push_back(idx[i * plan.world + plan.rank]);
    return shard;
  }
  return idx;
}

}  // namespace adcorre::data
