// Learning-rate schedules, as a pure function of the global step, so a resumed
// run recomputes exactly the rate it would have had.
#pragma once
#include <cstdint>

#include "adcorre/train/train_config.h"

namespace adcorre::train {

// The learning rate at `step` (0-based) of `total_steps`, for `steps_per_epoch`.
double lr_at(const TrainConfig& cfg, int64_t step, int64_t total_steps, int64_t steps_per_epoch);

}  // namespace adcorre::train
