// TrainConfig: every option of `adcorre train`, loadable from and saved as
// JSON (the run folder keeps the effective config as config.json).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace adcorre::train {

struct TrainConfig {
  // Data.
  std::string train_data, train_kind = "auto", train_split = "train";
  std::string val_data, val_kind = "auto", val_split = "val";
  std::string data_options;          // format-specific reader options
  bool soft_labels = false;          // use the dataset's soft labels (FER+ votes) in CE

  // Model: a preset plus overrides (<= 0 / empty: keep the preset's).
  std::string preset = "fer-compact";
  int k = 0, d = 0, middle_blocks = -1, input_size = 0;
  double width = 0, dropout = -1;
  std::string init;                  // initial weights (model file or Keras .h5)

  // Loss.
  std::string loss = "adcorre";      // adcorre | ce
  double lambda_ce = -1, lambda_fd = 1, lambda_md = 1, lambda_ed = 1;
  bool adaptive = true;
  int window = 1000;
  double label_smoothing = 0.0;

  // Knowledge distillation (train/distill.h): a teacher model file (empty:
  // none), its test-time augmentation, the temperature T and the weight W of
  // the distillation term: loss = (1 - W) task + W T^2 KL(teacher || student).
  std::string teacher;
  std::string teacher_tta = "none";  // none | flip
  // Which images the teacher scores: "batch", the augmented batch the student
  // sees (each step); "clean", every training image once, un-augmented, at
  // the start of the run, looked up by sample index (the target for a
  // degraded view is then the teacher's answer on the clean face, and steps
  // cost no teacher forward).
  std::string teacher_targets = "batch";
  double kd_temperature = 4.0;
  double kd_weight = 0.7;

  // Optimisation.
  std::string optimizer = "adam";    // adam | adamw | sgd
  double lr = 1e-3, weight_decay = 0.0, momentum = 0.9;
  std::string schedule = "constant"; // constant | step | cosine | onecycle | inverse
  double warmup = 0.0;               // fraction of all steps (linear warm-up)
  int step_epochs = 10;              // step schedule: every N epochs
  double step_gamma = 0.1;
  double decay = 1e-5;               // inverse schedule: lr / (1 + decay * step) (Keras' `decay`)
  double ema = 0.0;                  // weight averaging (EMA decay, e.g. 0.999); 0 = off
  double grad_clip = 0.0;            // max gradient norm; 0 = off
  std::string amp = "none";          // mixed precision: none | bf16 | fp16 (CUDA only), see train/amp.h

  int epochs = 30;
  int batch_size = 128;
  std::string augment = "strong";    // none | light | strong
  bool balanced = false;             // class-balanced sampling
  bool class_weighted = false;       // class-weighted CE

  uint64_t seed = 1;
  int threads = 0;
  std::string device = "cpu";
  std::string out = "runs/run";
  int checkpoint_every = 0;          // also checkpoint every N steps (0: per epoch only)
  int log_every = 50;                // steps between plain log lines (non-tty)
  int max_steps_per_epoch = 0;       // cap (smoke runs); 0 = whole epoch
  std::string command;               // the command line, for provenance

  nlohmann::json to_json() const;
  static TrainConfig from_json(const nlohmann::json& j);  // unknown keys are errors naming them
  void validate() const;
};

}  // namespace adcorre::train
