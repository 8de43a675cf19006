#include "adcorre/train/train_config.h"

#include <set>

#include "adcorre/train/amp.h"
#include "adcorre/util/error.h"

namespace adcorre::train {

#define ADCORRE_TRAIN_FIELDS(X)                                                                                   \
  X(train_data) X(train_kind) X(train_split) X(val_data) X(val_kind) X(val_split) X(data_options) X(soft_labels)   \
  X(preset) X(k) X(d) X(middle_blocks) X(input_size) X(width) X(dropout) X(init) X(loss) X(lambda_ce) X(lambda_fd)  \
  X(lambda_md) X(lambda_ed) X(adaptive) X(window) X(label_smoothing) X(teacher) X(teacher_tta) X(teacher_targets) X(kd_temperature)    \
  X(kd_weight) X(optimizer) X(lr) X(weight_decay) X(momentum) \
  X(schedule) X(warmup) X(step_epochs) X(step_gamma) X(decay) X(ema) X(grad_clip) X(epochs) X(batch_size)          \
  X(augment) X(balanced) X(class_weighted) X(seed) X(threads) X(device) X(out) X(checkpoint_every) X(log_every)     \
  X(max_steps_per_epoch) X(command) X(amp)

nlohmann::json TrainConfig::to_json() const {
  nlohmann::json j;
#define X(f) j[#f] = f;
  ADCORRE_TRAIN_FIELDS(X)
#undef X
  return j;
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("train config: not a JSON object");
  TrainConfig c;
  std::set<std::string> known;
#define X(f)                                                                                      \
  known.insert(#f);                                                                               \
  if (j.contains(#f)) try {                                                                       \
      j.at(#f).get_to(c.f);                                                                       \
    } catch (const std::exception& e) {                                                           \
      throw Error(std::string("train config: field '") + #f + "' has the wrong type (" + e.what() + ")"); \
    }
  ADCORRE_TRAIN_FIELDS(X)
#undef X
  for (auto& [key, value] : j.items())
    if (!known.count(key)) throw Error("train config: unknown field '" + key + "'");
  c.validate();
  return c;
}

void TrainConfig::validate() const {
  auto bad = [](const std::string& f, const std::string& why) { throw Error("train option '" + f + "' " + why); };
  if (loss != "adcorre" && loss != "ce") bad("loss", "must be adcorre or ce");
  if (optimizer != "adam" && optimizer != "adamw" && optimizer != "sgd") bad("optimizer", "must be adam, adamw or sgd");
  if (schedule != "constant" && schedule != "step" && schedule != "cosine" && schedule != "onecycle" &&
      schedule != "inverse")
    bad("schedule", "must be constant, step, cosine, onecycle or inverse");
  if (lr <= 0) bad("lr", "must be > 0");
  if (epochs < 1) bad("epochs", "must be >= 1");
  if (batch_size < 2) bad("batch_size", "must be >= 2");
  if (warmup < 0 || warmup >= 1) bad("warmup", "must be in [0, 1)");
  if (ema < 0 || ema >= 1) bad("ema", "must be in [0, 1)");
  if (window < 1) bad("window", "must be >= 1");
  if (label_smoothing < 0 || label_smoothing >= 1) bad("label_smoothing", "must be in [0, 1)");
  if (teacher_tta != "none" && teacher_tta != "flip") bad("teacher_tta", "must be none or flip");
  if (teacher_targets != "batch" && teacher_targets != "clean") bad("teacher_targets", "must be batch or clean");
  if (!(kd_temperature > 0)) bad("kd_temperature", "must be > 0");
  if (!(kd_weight >= 0 && kd_weight <= 1)) bad("kd_weight", "must be in [0, 1]");
  if (train_data.empty()) bad("train_data", "is required");
  // Sizes where 0 means "the preset's" and -1 "the preset's" respectively.
  if (k < 0) bad("k", "must be >= 1 (0: the preset's)");
  if (d < 0) bad("d", "must be >= 1 (0: the preset's)");
  if (width < 0) bad("width", "must be > 0 (0: the preset's)");
  if (input_size < 0) bad("input_size", "must be > 0 (0: the preset's)");
  if (middle_blocks < -1) bad("middle_blocks", "must be >= 0 (-1: the preset's)");
  if (dropout != -1 && (dropout < 0 || dropout >= 1)) bad("dropout", "must be in [0, 1) (-1: the preset's)");
  if (lambda_ce < 0 && lambda_ce != -1) bad("lambda_ce", "must be >= 0 (-1: 50/C as the released code)");
  if (lambda_fd < 0) bad("lambda_fd", "must be >= 0");
  if (lambda_md < 0) bad("lambda_md", "must be >= 0");
  if (lambda_ed < 0) bad("lambda_ed", "must be >= 0");
  if (weight_decay < 0) bad("weight_decay", "must be >= 0");
  if (momentum < 0 || momentum >= 1) bad("momentum", "must be in [0, 1)");
  if (grad_clip < 0) bad("grad_clip", "must be >= 0 (0: off)");
  if (checkpoint_every < 0) bad("checkpoint_every", "must be >= 0 (0: only at epoch ends)");
  if (log_every < 0) bad("log_every", "must be >= 0");
  if (max_steps_per_epoch < 0) bad("max_steps_per_epoch", "must be >= 0 (0: no cap)");
  if (threads < 0) bad("threads", "must be >= 0 (0: all cores)");
  if (step_epochs < 0) bad("step_epochs", "must be >= 0");
  if (step_gamma <= 0) bad("step_gamma", "must be > 0");
  if (decay < 0) bad("decay", "must be >= 0");
  parse_amp(amp);  // the device check (fp16 needs CUDA) is the trainer's: --device may come after the config file
}

}  // namespace adcorre::train
