// The trainer's data-parallel glue: the few places where ranks must agree
// beyond the gradients. Each function is a no-op (or the single-process
// computation) when the collective has one rank, and every rank must call it
// at the same point of the run (they are collectives).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include "adcorre/data/image_cache.h"
#include "adcorre/eval/metrics.h"
#include "adcorre/loss/confusion_window.h"
#include "adcorre/models/fer_model.h"
#include "adcorre/train/collective.h"

namespace torch::serialize {
class InputArchive;
}

namespace adcorre::train {

// Validation split over the ranks: rank r evaluates the r-th contiguous slice
// of the cache and the confusion counts are summed, so every rank gets the
// metrics of the whole set (identical to a single-process evaluation) in
// 1/world of the time, and no rank waits at a barrier for a long evaluation.
eval::Metrics evaluate_sharded(models::FerModelImpl& net, const models::ModelConfig& cfg,
                               const data::ImageCache& cache, const std::string& device, Collective& coll);

// Batch-norm running statistics: each rank normalises its batches with its
// own batch statistics (as PyTorch DDP without SyncBatchNorm), so the running
// mean/var drift apart; this replaces them by their mean over ranks (every
// floating-point buffer of `net`), and copies them into `ema` when given.
void average_running_stats(Collective& coll, torch::nn::Module& net, torch::nn::Module* ema = nullptr);

// Sums (or averages) scalars over ranks in place, in one collective.
void sum_over_ranks(Collective& coll, const std::vector<double*>& values);
void sum_counts_over_ranks(Collective& coll, const std::vector<int64_t*>& values);
void mean_over_ranks(Collective& coll, const std::vector<double*>& values);

// Per-rank state that differs between ranks: the augmentation generator,
// LibTorch's global generator (dropout) and the confusion window. Gathered to
// every rank as int64 [world, L] so rank 0 can put all rows in its checkpoint
// and a resumed group continues each rank exactly.
at::Tensor gather_rank_states(Collective& coll, const loss::ConfusionWindow& window, at::Generator& aug_gen);

// Throws adcorre::Error when the checkpoint was written by a group of another
// size (its data shards, window length and positions would not match).
void check_group_size(torch::serialize::InputArchive& checkpoint, const std::string& path, Collective& coll);

// Restores this rank's row of the checkpoint's rank states (no-op for
// checkpoints without them: single-process runs).
void restore_rank_state(torch::serialize::InputArchive& checkpoint, Collective& coll, loss::ConfusionWindow& window,
                        at::Generator& aug_gen);

}  // namespace adcorre::train
