// adcorre train: train a model (options or --config JSON), or --resume a run.
#include <fstream>
#include <iostream>

#include "adcorre/train/distributed.h"
#include "adcorre/train/trainer.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/log.h"
#include "cli.h"

namespace {
namespace cli = adcorre::cli;  // the option checks; unqualified, it depended on the unity batch

struct TrainCli {
  adcorre::train::TrainConfig c;
  std::string config_file, resume_dir;
  bool no_adaptive = false;
  bool distributed = false;
  adcorre::train::DistributedOptions dist;
  std::string argv_line;
};

int run_train(TrainCli& o, CLI::App& app) {
  using namespace adcorre;
  auto& g = cli::globals();
  train::TrainConfig c = o.c;
  if (!o.config_file.empty()) {
    // The file gives the base; options given on the command line win.
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(fs::read_file(o.config_file));
    } catch (const nlohmann::json::exception& e) {
      throw Error("config file " + o.config_file + " is not valid JSON: " + e.what());
    }
    auto base = train::TrainConfig::from_json(j).to_json();
    auto cli_json = o.c.to_json();
    auto defaults = train::TrainConfig{}.to_json();
    for (auto& [k, v] : cli_json.items())
      if (v != defaults[k]) base[k] = v;
    c = train::TrainConfig::from_json(base);
  }
  if (o.no_adaptive) c.adaptive = false;
  if (app.get_option("--threads")->count() == 0 && g.threads) c.threads = g.threads;
  if (g.device != "cpu") c.device = g.device;
  if (g.seed) c.seed = g.seed;
  c.command = o.argv_line;
  std::shared_ptr<train::Collective> coll;
  if (o.distributed) {
    coll = train::make_distributed_collective_from_env(c.device, o.dist);
    // Rank 0 speaks for the group; the others only warn and fail.
    if (!coll->is_main() && !g.verbose) log::set_level(log::Level::quiet);
  }
  train::TrainResult r;
  if (!o.resume_dir.empty()) {
    // Only what the user asked for now overrides the saved config.
    const int threads = app.get_option("--threads")->count() ? c.threads : g.threads;
    r = train::resume(o.resume_dir, app.get_option("--epochs")->count() ? c.epochs : 0, coll, threads,
                      app.get_option("--teacher")->count() ? c.teacher : "");
  } else {
    r = train::train(c, coll);
  }
  if (!coll || coll->is_main())
    std::cout << nlohmann::json{{"run_dir", r.run_dir}, {"best_val_accuracy", r.best_val_accuracy},
                                {"best_epoch", r.best_epoch}, {"epochs", r.epochs_done}, {"seconds", r.seconds}}
                     .dump()
              << "\n";
  return 0;
}

adcorre::cli::Registrar register_train({"train", "train a model (Ad-Corre or CE loss) with checkpoints and resume", [](CLI::App& app) {
  auto o = std::make_shared<TrainCli>();
  auto& c = o->c;
  app.add_option("--config", o->config_file, "JSON file with any of the options below (command-line options win)");
  app.add_option("--resume", o->resume_dir, "continue the run in this folder from its checkpoint");
  app.add_option("--train", c.train_data, "training data (folder, CSV, ...)");
  app.add_option("--train-kind", c.train_kind, "dataset kind of --train")->capture_default_str();
  app.add_option("--train-split", c.train_split, "split of --train where the format holds several")->capture_default_str();
  app.add_option("--val", c.val_data, "validation data");
  app.add_option("--val-kind", c.val_kind, "dataset kind of --val")->capture_default_str();
  app.add_option("--val-split", c.val_split, "split of --val")->capture_default_str();
  app.add_option("--data-options", c.data_options, "reader options, e.g. affectnet-classes=8");
  app.add_flag("--soft-labels", c.soft_labels, "train CE on the dataset's soft labels (FER+ votes)");
  app.add_option("--preset", c.preset, "model preset (xception, fer-compact, fer-tiny)")->capture_default_str();
  app.add_option("--k", c.k, "number of embeddings k (0: preset's)")->check(cli::at_least(0));
  app.add_option("--d", c.d, "embedding size d (0: preset's)")->check(cli::at_least(0));
  app.add_option("--width", c.width, "width multiplier (0: preset's)")->check(cli::at_least(0));
  app.add_option("--middle-blocks", c.middle_blocks, "Xception middle blocks (-1: preset's)");
  app.add_option("--input-size", c.input_size, "input size (0: preset's)")->check(cli::at_least(0));
  app.add_option("--dropout", c.dropout, "head dropout (-1: preset's)");
  app.add_option("--init", c.init, "initial weights (adcorre model file or Keras .h5)");
  app.add_option("--loss", c.loss, "adcorre | ce")->capture_default_str();
  app.add_option("--lambda-ce", c.lambda_ce, "CE weight (-1: 50/C as the released code)")->capture_default_str();
  app.add_option("--lambda-fd", c.lambda_fd, "FD weight")->check(cli::at_least(0))->capture_default_str();
  app.add_option("--lambda-md", c.lambda_md, "MD weight")->check(cli::at_least(0))->capture_default_str();
  app.add_option("--lambda-ed", c.lambda_ed, "ED weight")->check(cli::at_least(0))->capture_default_str();
  app.add_flag("--no-adaptive", o->no_adaptive, "FD without the confusion-matrix weights");
  app.add_option("--window", c.window, "confusion window length N")->check(cli::at_least(1))->capture_default_str();
  app.add_option("--label-smoothing", c.label_smoothing, "CE label smoothing")->capture_default_str();
  app.add_option("--teacher", c.teacher,
                 "distil from this model file (ensembles too): its soft targets on each augmented batch; with "
                 "--resume, the same teacher moved elsewhere");
  app.add_option("--teacher-tta", c.teacher_tta, "--teacher: none | flip (the teacher averages the mirror image)")
      ->capture_default_str();
  app.add_option("--teacher-targets", c.teacher_targets,
                 "--teacher: batch (the teacher scores each augmented batch) | clean (every training image once, "
                 "un-augmented, at the start; steps cost no teacher forward)")
      ->capture_default_str();
  app.add_option("--kd-temperature", c.kd_temperature, "--teacher: softmax temperature T (> 0)")->capture_default_str();
  app.add_option("--kd-weight", c.kd_weight,
                 "--teacher: weight W in [0, 1]: loss = (1-W) task + W T^2 KL(teacher || student)")
      ->capture_default_str();
  app.add_option("--optimizer", c.optimizer, "adam | adamw | sgd")->capture_default_str();
  app.add_option("--lr", c.lr, "learning rate")->capture_default_str();
  app.add_option("--weight-decay", c.weight_decay, "weight decay (not on BN/biases)")->capture_default_str();
  app.add_option("--momentum", c.momentum, "SGD momentum")->capture_default_str();
  app.add_option("--schedule", c.schedule, "constant | step | cosine | onecycle | inverse")->capture_default_str();
  app.add_option("--warmup", c.warmup, "warm-up fraction of all steps")->capture_default_str();
  app.add_option("--step-epochs", c.step_epochs, "step schedule: epochs per step")->capture_default_str();
  app.add_option("--step-gamma", c.step_gamma, "step schedule: factor")->capture_default_str();
  app.add_option("--decay", c.decay, "inverse schedule: lr/(1+decay*step), Keras' decay")->capture_default_str();
  app.add_option("--ema", c.ema, "weight averaging decay (0: off), e.g. 0.999")->capture_default_str();
  app.add_option("--grad-clip", c.grad_clip, "max gradient norm (0: off)")->check(cli::at_least(0))->capture_default_str();
  app.add_option("--amp", c.amp, "mixed precision of the forward pass: none | bf16 (CPU or CUDA) | fp16 (CUDA; with gradient scaling)")
      ->capture_default_str();
  app.add_option("--epochs", c.epochs, "epochs")->check(cli::at_least(1))->capture_default_str();
  app.add_option("--batch-size", c.batch_size, "batch size (per process)")->check(cli::at_least(2))->capture_default_str();
  app.add_option("--augment", c.augment, "none | light | strong | photo (strong + detector-crop variation, blur, JPEG)")->capture_default_str();
  app.add_flag("--balanced", c.balanced, "class-balanced sampling");
  app.add_flag("--class-weighted", c.class_weighted, "class-weighted CE");
  app.add_option("--run-seed", c.seed, "seed of the run (data order, augmentation, init)")->capture_default_str();
  app.add_option("--threads", c.threads, "threads (0: all cores)")->check(cli::at_least(0))->capture_default_str();
  app.add_option("--out", c.out, "run folder")->capture_default_str();
  app.add_option("--checkpoint-every", c.checkpoint_every, "also checkpoint every N steps")->check(cli::at_least(0))->capture_default_str();
  app.add_option("--log-every", c.log_every, "steps between log lines when not on a terminal")->check(cli::at_least(0))->capture_default_str();
  app.add_option("--max-steps-per-epoch", c.max_steps_per_epoch, "cap steps per epoch (smoke runs)")->check(cli::at_least(0))->capture_default_str();
  app.add_flag("--distributed", o->distributed, "data-parallel over the ranks given by RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT");
  app.add_option("--dist-timeout", o->dist.timeout_s, "--distributed: seconds before a stalled collective or rendezvous fails")
      ->capture_default_str();
  app.add_option("--dist-backend", o->dist.backend, "--distributed: auto | gloo | nccl")->capture_default_str();
  return [o, &app] {
    o->argv_line = "adcorre train";
    for (auto& opt : app.get_options())
      if (opt->count() > 0) {
        o->argv_line += " " + opt->get_name();
        for (auto& r : opt->results()) o->argv_line += " " + r;
      }
    if (o->resume_dir.empty() && o->c.train_data.empty() && o->config_file.empty())
      throw adcorre::Error("train needs --train DATA (or --config FILE, or --resume RUN_DIR)");
    return run_train(*o, app);
  };
}});

}  // namespace
