#include "adcorre/train/train_config.h"

#include <set>

#include "adcorre/util/error.h"

namespace adcorre::train {

#define ADCORRE_TRAIN_FIELDS(X)                                                                                   \
  X(train_data) X(train_kind) X(train_split) X(val_data) X(val_kind) X(val_split) X(data_options) X(soft_labels)   \
  X(preset) X(k) X(d) X(middle_blocks) X(input_size) X(width) X(dropout) X(init) X(loss) X(lambda_ce) X(lambda_fd)  \
  X(lambda_md) X(lambda_ed) X(adaptive) X(window) X(label_smoothing) X(optimizer) X(lr) X(weight_decay) X(momentum) \
  X(schedule) X(warmup) X(step_epochs) X(step_gamma) X(decay) X(ema) X(grad_clip) X(epochs) X(batch_size)          \
  X(augment) X(balanced) X(class_weighted) X(seed) X(threads) X(device) X(out) X(checkpoint_every) X(log_every)     \
  X(max_steps_per_epoch) X(command)

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
  if (train_data.empty()) bad("train_data", "is required");
}

}  // namespace adcorre::train
