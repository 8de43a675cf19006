// The training loop of `adcorre train`.
//
// Each epoch: train on shuffled, augmented batches (Ad-Corre or CE loss),
// then evaluate on the validation set; write metrics.jsonl, last.pt and
// best.pt (by validation accuracy) model files, and checkpoint.pt.
//
// The checkpoint (written atomically: temp file + rename) holds the model,
// the EMA weights, the optimizer, the confusion window, both RNG states and
// the position (epoch, step), so `resume` continues exactly where the run
// stopped: with one thread and a fixed seed, 2 epochs straight and
// 1 epoch + resume + 1 epoch give identical weights. A run killed with
// SIGKILL loses at most the work since the last checkpoint.
// A NaN/Inf loss throws adcorre::Error and leaves the last checkpoint intact.
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "adcorre/models/weight_storage.h"
#include "adcorre/train/collective.h"
#include "adcorre/train/train_config.h"

namespace adcorre::train {

struct TrainResult {
  double best_val_accuracy = 0;
  int best_epoch = -1;
  int epochs_done = 0;
  std::string run_dir;
  double seconds = 0;  // this process's training time (metrics.jsonl's `seconds` spans resumes)
};

// Starts a new run in cfg.out (created; an existing checkpoint there is an
// error unless resume is used).
TrainResult train(const TrainConfig& cfg, std::shared_ptr<Collective> collective = nullptr);

// Resumes the run in `run_dir` from its checkpoint, with its saved config.
// `epochs` > 0 changes the total number of epochs.
// `threads` > 0 replaces the saved thread count (a run started on an idle
// machine may have to continue on a busy one, or the other way round).
// `teacher` non-empty replaces the saved --teacher path (a teacher file that
// moved); its contents must be the model the run started with, else
// adcorre::Error names both files. A run distilling from a teacher resumes
// as exactly as one without (the teacher draws no random numbers).
TrainResult resume(const std::string& run_dir, int epochs = 0, std::shared_ptr<Collective> collective = nullptr,
                   int threads = 0, const std::string& teacher = "");

// Writes a model file from a run's checkpoint: its current raw weights, or
// its EMA weights when `ema` (and the run used --ema). Provenance names the
// checkpoint and its position. `storage` Float16 halves the file (written once).
void export_checkpoint(const std::string& run_dir, const std::string& out, bool ema,
                       models::WeightStorage storage = models::WeightStorage::Float32);

}  // namespace adcorre::train
