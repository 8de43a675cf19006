#include "adcorre/train/trainer.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "adcorre/data/augment.h"
#include "adcorre/data/class_names.h"
#ifdef ADCORRE_HAVE_OPENCV  // decoded datasets and the run's pictures; the minimal build trains from packed data
#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/eval/plots.h"
#endif
#include "adcorre/data/normalize.h"
#include "adcorre/data/packed.h"
#include "adcorre/eval/evaluate.h"
#include "adcorre/loss/adcorre_loss.h"
#include "adcorre/models/model_file.h"
#include "adcorre/train/amp.h"
#include "adcorre/train/data_parallel.h"
#include "adcorre/train/distill.h"
#include "adcorre/train/lr_schedule.h"
#include "adcorre/train/optimizer_factory.h"
#include "adcorre/train/progress.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/torch_archive.h"
#include "adcorre/util/log.h"
#include "adcorre/util/runtime.h"

namespace adcorre::train {
namespace sfs = std::filesystem;

namespace {

models::ModelConfig model_config_for(const TrainConfig& c, const std::vector<std::string>& classes) {
  auto m = models::preset(c.preset);
  if (c.k > 0) m.k = c.k;
  if (c.d > 0) m.d = c.d;
  if (c.width > 0) m.width = c.width;
  if (c.middle_blocks >= 0) m.middle_blocks = c.middle_blocks;
  if (c.input_size > 0) m.input_size = c.input_size;
  if (c.dropout >= 0) m.dropout = c.dropout;
  m.class_names = classes;
  m.validate();
  return m;
}

// Exponential moving average of the weights (evaluated and saved instead of
// the raw weights when enabled).
struct Ema {
  models::FerModel net;
  double decay = 0;
  // The decay warms up as (1 + step) / (10 + step) so the random initial
  // weights fade out quickly (with a fixed 0.998 they would still weigh 41%
  // after 450 steps).
  void update(models::FerModelImpl& src, int64_t step) {
    torch::NoGradGuard ng;
    const double d = std::min(decay, (1.0 + step) / (10.0 + step));
    auto dst_p = net->parameters();
    auto src_p = src.parameters();
    for (size_t i = 0; i < dst_p.size(); ++i) dst_p[i].mul_(d).add_(src_p[i].detach(), 1 - d);
    auto dst_b = net->buffers();
    auto src_b = src.buffers();
    for (size_t i = 0; i < dst_b.size(); ++i) dst_b[i].copy_(src_b[i]);
  }
};

void copy_weights(models::FerModelImpl& dst, models::FerModelImpl& src) {
  torch::NoGradGuard ng;
  auto dp = dst.parameters();
  auto sp = src.parameters();
  for (size_t i = 0; i < dp.size(); ++i) dp[i].copy_(sp[i]);
  auto db = dst.buffers();
  auto sb = src.buffers();
  for (size_t i = 0; i < db.size(); ++i) db[i].copy_(sb[i]);
}

// Writes a module's parameters and buffers under their full dotted names.
void save_module_state(torch::serialize::OutputArchive& archive, torch::nn::Module& module) {
  torch::NoGradGuard ng;
  for (auto& p : module.named_parameters()) archive.write(p.key(), p.value().detach().contiguous(), false);
  for (auto& b : module.named_buffers()) archive.write(b.key(), b.value().contiguous(), true);
}

// Reads "a.b.c" from nested archives (the layout of Module::save, which
// checkpoints of adcorre 0.1.0 before the flat layout used).
bool read_nested(torch::serialize::InputArchive& archive, const std::string& key, torch::Tensor& out, bool buffer) {
  std::vector<std::string> parts;
  size_t start = 0, dot;
  while ((dot = key.find('.', start)) != std::string::npos) {
    parts.push_back(key.substr(start, dot - start));
    start = dot + 1;
  }
  std::vector<torch::serialize::InputArchive> chain(parts.size());
  torch::serialize::InputArchive* cur = &archive;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!cur->try_read(parts[i], chain[i])) return false;
    cur = &chain[i];
  }
  return cur->try_read(key.substr(start), out, buffer);
}

// Reads what save_module_state wrote by copying into the existing tensors
// (Module::load's set_() fails on channels_last parameters: "Trying to resize
// storage that is not resizable").
void load_module_state(torch::serialize::InputArchive& archive, torch::nn::Module& module, const std::string& what) {
  torch::NoGradGuard ng;
  auto load_one = [&](const std::string& key, torch::Tensor& dst, bool buffer) {
    torch::Tensor src;
    if (!archive.try_read(key, src, buffer) && !read_nested(archive, key, src, buffer))
      throw Error("checkpoint: " + what + " has no tensor '" + key + "'");
    if (src.sizes() != dst.sizes()) throw Error("checkpoint: " + what + " tensor '" + key + "' has another shape");
    dst.copy_(src);
  };
  for (auto& p : module.named_parameters()) load_one(p.key(), p.value(), false);
  for (auto& b : module.named_buffers()) load_one(b.key(), b.value(), true);
}

struct RunState {
  int epoch = 0;               // epoch in progress
  int64_t step_in_epoch = 0;   // next step to run within it
  int64_t global_step = 0;
  double best_acc = -1;
  int best_epoch = -1;
  // Training seconds of the run before this process started (from the
  // checkpoint), so metrics.jsonl's `seconds` counts the whole run across
  // resumes; the work lost after the last checkpoint is not counted.
  double seconds_before = 0;
};

// This rank's running sums of the epoch in progress. They are checkpointed
// with the rest, so the metrics line of an epoch resumed mid-way covers all of
// its steps, not only those after the resume.
struct EpochSums {
  double total = 0, ce = 0, fd = 0, md = 0, ed = 0;
  int64_t correct = 0, seen = 0, steps = 0;
  double kd = 0;  // the distillation term (train/distill.h); 0 without a teacher
  static constexpr int64_t kFields = 9;
  static constexpr int64_t kFieldsBeforeKd = 8;  // checkpoints of adcorre before --teacher
  at::Tensor to_tensor() const {
    return torch::tensor({total, ce, fd, md, ed, static_cast<double>(correct), static_cast<double>(seen),
                          static_cast<double>(steps), kd}, torch::kDouble);
  }
  static EpochSums from_tensor(const at::Tensor& t) {
    auto v = t.contiguous();
    const double* d = v.data_ptr<double>();
    EpochSums e;
    e.total = d[0], e.ce = d[1], e.fd = d[2], e.md = d[3], e.ed = d[4];
    e.correct = static_cast<int64_t>(d[5]), e.seen = static_cast<int64_t>(d[6]), e.steps = static_cast<int64_t>(d[7]);
    if (v.numel() > kFieldsBeforeKd) e.kd = d[8];
    return e;
  }
};

class Run {
 public:
  Run(TrainConfig cfg, std::shared_ptr<Collective> coll) : cfg_(std::move(cfg)), coll_(std::move(coll)) {
    if (!coll_) coll_ = std::make_shared<Collective>();
  }

  void setup(bool resuming) {
    runtime::set_threads(cfg_.threads);
    device_ = runtime::resolve_device(cfg_.device);
    cuda_ = torch::Device(device_).is_cuda();
    amp_ = parse_amp(cfg_.amp);
    check_amp_device(amp_, device_);
    // fp16's range needs loss scaling; bf16 has float32's exponent and does not.
    scaler_ = GradScaler(amp_ == AmpMode::fp16);
    // Fixed input sizes: let cuDNN time its algorithms once per shape and keep the fastest.
    if (cuda_) at::globalContext().setBenchmarkCuDNN(true);
    run_dir_ = cfg_.out;
    if (coll_->is_main()) sfs::create_directories(run_dir_);
    if (!resuming && sfs::exists(sfs::path(run_dir_) / "checkpoint.pt"))
      throw Error("run folder " + run_dir_ + " already holds a checkpoint; use --resume " + run_dir_ +
                  " to continue it, or another --out");

    // Data: classes come from the training set; the validation set is matched by name.
    // A packed file (adcorre pack) is the decoded cache already: no image is decoded.
#ifdef ADCORRE_HAVE_OPENCV
    data::Dataset train_ds;  // stays empty for a packed file
#endif
    if (data::is_packed_path(cfg_.train_data)) {
      auto packed = data::read_packed(cfg_.train_data);
      mcfg_ = model_config_for(cfg_, packed.classes);
      train_ = data::fit_packed(packed, mcfg_, cfg_.train_data);
      log::info("training data " + cfg_.train_data + " (packed): " + std::to_string(train_.size()) + " images, " +
                std::to_string(train_.classes.size()) + " classes");
    } else {
#ifndef ADCORRE_HAVE_OPENCV
      throw Error(not_packed_message("training data", cfg_.train_data));
#else
      train_ds = data::read_dataset(cfg_.train_data, cfg_.train_kind, cfg_.train_split, cfg_.data_options);
      mcfg_ = model_config_for(cfg_, train_ds.classes);
      log::info("training data " + cfg_.train_data + ": " + std::to_string(train_ds.samples.size()) + " images, " +
                std::to_string(train_ds.classes.size()) + " classes");
      refuse_classes_without_images(train_ds, cfg_.train_data);
      train_ = data::build_cache(train_ds, mcfg_, {cfg_.threads, false, !coll_->is_main()});
#endif
    }
    if (data::is_packed_path(cfg_.val_data)) {
      val_ = data::fit_packed(data::read_packed(cfg_.val_data), mcfg_, cfg_.val_data);
      log::info("validation data " + cfg_.val_data + " (packed): " + std::to_string(val_.size()) + " images");
    } else if (!cfg_.val_data.empty()) {
#ifndef ADCORRE_HAVE_OPENCV
      throw Error(not_packed_message("validation data", cfg_.val_data));
#else
      auto val_ds = eval::match_classes(
          data::read_dataset(cfg_.val_data, cfg_.val_kind, cfg_.val_split, cfg_.data_options), mcfg_.class_names);
      if (!train_ds.samples.empty()) refuse_same_images(train_ds, val_ds);
      val_ = data::build_cache(val_ds, mcfg_, {cfg_.threads, false, !coll_->is_main()});
      log::info("validation data " + cfg_.val_data + ": " + std::to_string(val_.size()) + " images");
#endif
    }
    if (cfg_.class_weighted) {
      auto counts = torch::bincount(train_.labels, {}, mcfg_.num_classes()).to(torch::kFloat).clamp_min(1);
      class_weights_ = (counts.sum() / counts / mcfg_.num_classes()).to(torch::Device(device_));
    }

    // The run's seed decides the initial weights (rank 0's; the others get
    // them by broadcast), so the same command gives the same run.
    torch::manual_seed(cfg_.seed);
    net_ = models::create_model(mcfg_);
    if (!cfg_.init.empty() && !resuming) {
      auto r = models::init_from(*net_, cfg_.init);
      log::info("initialised from " + cfg_.init + ": " + std::to_string(r.matched) + " tensors matched, " +
                std::to_string(r.missing.size()) + " missing, " + std::to_string(r.shape_mismatch.size()) +
                " with another shape, " + std::to_string(r.unexpected.size()) + " unused");
    }
    net_->to(torch::Device(device_));
    if (device_ == "cpu") models::to_channels_last(*net_);
    // Every rank starts from rank 0's weights.
    {
      std::vector<at::Tensor> ts;
      for (auto& p : net_->parameters()) ts.push_back(p.data());
      for (auto& b : net_->buffers()) ts.push_back(b);
      coll_->broadcast(ts);
    }
    if (cfg_.ema > 0) {
      ema_.net = models::create_model(mcfg_);
      ema_.net->to(torch::Device(device_));
      if (device_ == "cpu") models::to_channels_last(*ema_.net);
      copy_weights(*ema_.net, *net_);
      ema_.decay = cfg_.ema;
      ema_.net->eval();
    }
    opt_ = make_optimizer(cfg_, *net_);
    if (!cfg_.teacher.empty()) {
      teacher_ = std::make_unique<Teacher>(cfg_.teacher, cfg_.teacher_tta, mcfg_, device_);
      log::info("distilling from teacher " + cfg_.teacher + " (" + teacher_->checksum() + "), tta " +
                cfg_.teacher_tta + ", targets " + cfg_.teacher_targets + ", temperature " +
                std::to_string(cfg_.kd_temperature) + ", weight " + std::to_string(cfg_.kd_weight));
      if (cfg_.teacher_targets == "clean") {
        // Every training image once, un-augmented, normalised as each step
        // does; the steps then look their rows up by sample index.
        const auto t0 = std::chrono::steady_clock::now();
        const torch::Device dev(device_);
        const int64_t n = train_.pixels.size(0);
        std::vector<at::Tensor> parts;
        for (int64_t i = 0; i < n; i += 256) {
          auto x = data::normalize(train_.pixels.slice(0, i, std::min(n, i + 256)).to(dev), mcfg_);
          if (dev.is_cpu()) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
          parts.push_back(teacher_->log_probs(x).to(torch::kCPU, torch::kFloat));
        }
        teacher_cache_ = parts.empty() ? at::Tensor() : torch::cat(parts);
        log::info("teacher scored the " + std::to_string(n) + " training images in " +
                  std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()) + " s");
      }
    }

    loss::AdCorreOptions lo;
    lo.num_classes = mcfg_.num_classes();
    lo.lambda_ce = cfg_.lambda_ce;
    if (cfg_.loss == "ce") {
      lo.lambda_fd = lo.lambda_md = lo.lambda_ed = 0;
    } else {
      lo.lambda_fd = cfg_.lambda_fd;
      lo.lambda_md = cfg_.lambda_md;
      lo.lambda_ed = cfg_.lambda_ed;
    }
    lo.adaptive = cfg_.adaptive;
    // Each rank keeps 1/world of the window: the summed counts cover the last
    // `window` samples of the group, as in a single process.
    lo.window = (cfg_.window + coll_->world_size() - 1) / coll_->world_size();
    lo.label_smoothing = cfg_.label_smoothing;
    loss_ = std::make_unique<loss::AdCorreLoss>(lo);
    if (coll_->world_size() > 1) {
      auto coll = coll_;
      loss_->set_counts_reducer([coll](const at::Tensor& counts) {
        auto c = counts.clone();
        coll->sum(c);
        return c;
      });
    }
    aug_ = data::augment_preset(cfg_.augment);
    gen_ = at::make_generator<at::CPUGeneratorImpl>(cfg_.seed * 2654435761ULL + 12345 + coll_->rank());
    torch::manual_seed(cfg_.seed + 7919ULL * coll_->rank());

    data::EpochPlan probe;
    probe.seed = cfg_.seed;
    probe.balanced = cfg_.balanced;
    probe.rank = coll_->rank();
    probe.world = coll_->world_size();
    steps_per_epoch_ = static_cast<int64_t>(data::epoch_indices(train_, probe).size()) / cfg_.batch_size;
    if (cfg_.max_steps_per_epoch > 0) steps_per_epoch_ = std::min<int64_t>(steps_per_epoch_, cfg_.max_steps_per_epoch);
    if (steps_per_epoch_ < 1)
      throw Error("training set (" + std::to_string(train_.size()) + " images) is smaller than one batch of " +
                  std::to_string(cfg_.batch_size * coll_->world_size()));

    if (coll_->is_main() && !resuming) {
      fs::write_file_atomic((sfs::path(run_dir_) / "config.json").string(), cfg_.to_json().dump(2) + "\n");
      std::ofstream(sfs::path(run_dir_) / "metrics.jsonl", std::ios::trunc);
    }
    log::info("model " + mcfg_.preset + ": " + std::to_string(models::count_parameters(*net_)) + " parameters; " +
              std::to_string(steps_per_epoch_) + " steps of " + std::to_string(cfg_.batch_size) + " per epoch; loss " +
              cfg_.loss + "; " + std::to_string(runtime::threads()) + " threads on " + device_ +
              (amp_ == AmpMode::none ? "" : "; mixed precision " + amp_name(amp_)));
  }

#ifndef ADCORRE_HAVE_OPENCV
  static std::string not_packed_message(const std::string& what, const std::string& path) {
    return what + " " + path + " is not packed data (a .pack file): this adcorre was built with ADCORRE_MINIMAL "
           "(no OpenCV) and reads no images; write it with `adcorre pack` in a full build";
  }
#endif

  // A class that no training image has would still be an output class.
#ifdef ADCORRE_HAVE_OPENCV
  static void refuse_classes_without_images(const data::Dataset& ds, const std::string& where) {
    std::vector<int64_t> counts(ds.classes.size(), 0);
    for (auto& s : ds.samples)
      if (s.label >= 0 && s.label < static_cast<int>(counts.size())) ++counts[s.label];
    for (size_t c = 0; c < counts.size(); ++c)
      if (counts[c] == 0)
        throw Error("training data " + where + ": class '" + ds.classes[c] +
                    "' has no images, so the model could never learn it; remove the class or add its images");
  }

  // Validation on the training images (e.g. one FER-2013 CSV without a Usage
  // column given as both --train and --val) would report training accuracy.
  static void refuse_same_images(const data::Dataset& train, const data::Dataset& val) {
    if (train.samples.size() != val.samples.size() || train.samples.empty()) return;
    std::error_code ec1, ec2;
    if (sfs::weakly_canonical(train.root, ec1) != sfs::weakly_canonical(val.root, ec2)) return;
    for (size_t i = 0; i < train.samples.size(); ++i)
      if (train.samples[i].key != val.samples[i].key) return;
    throw Error("the validation data " + val.root + " holds exactly the " + std::to_string(train.samples.size()) +
                " training images" +
                (train.kind == "fer2013-csv" ? " (a FER-2013 CSV without a Usage column cannot be split)" : "") +
                ", so validation would report training accuracy; give a separate --val, or none");
  }
#endif

  std::string checkpoint_path() const { return (sfs::path(run_dir_) / "checkpoint.pt").string(); }

  void save_checkpoint() {
    // Ranks differ in RNG streams and confusion windows: rank 0 keeps them all.
    const at::Tensor rank_states = gather_rank_states(*coll_, loss_->window(), gen_);
    auto rank_sums = torch::zeros({coll_->world_size(), EpochSums::kFields}, torch::kDouble);
    rank_sums[coll_->rank()].copy_(sums_.to_tensor());
    coll_->sum(rank_sums);  // an all-gather: every other row is zero on each rank
    if (!coll_->is_main()) return;
    torch::serialize::OutputArchive a;
    a.write("config_json", c10::IValue(cfg_.to_json().dump()));
    a.write("model_config_json", c10::IValue(mcfg_.to_json().dump()));
    torch::serialize::OutputArchive m, o;
    save_module_state(m, *net_);
    a.write("model", m);
    save_optimizer_state(o, *opt_, net_->parameters());
    a.write("optimizer", o);
    if (ema_.net) {
      torch::serialize::OutputArchive e;
      save_module_state(e, *ema_.net);
      a.write("ema", e);
    }
    a.write("window", loss_->window().state());
    a.write("aug_rng", gen_.get_state());
    at::Generator global_gen = at::detail::getDefaultCPUGenerator();
    a.write("torch_rng", global_gen.get_state());
    a.write("position", torch::tensor({static_cast<int64_t>(st_.epoch), st_.step_in_epoch, st_.global_step,
                                       static_cast<int64_t>(st_.best_epoch)}));
    a.write("best_acc", torch::tensor({st_.best_acc}, torch::kDouble));
    a.write("elapsed_seconds", torch::tensor({run_seconds()}, torch::kDouble));
    a.write("rank_states", rank_states);
    a.write("epoch_sums", rank_sums);
    if (scaler_.enabled()) a.write("grad_scaler", scaler_.state());
    // Which teacher the run distils from: resume refuses another model.
    if (teacher_) a.write("teacher_checksum", c10::IValue(teacher_->checksum()));
    fs::save_archive_atomic(a, checkpoint_path(), "checkpoint");
  }

  // A diverged step can leave NaN/Inf weights with a finite loss (the loss is
  // checked before the step); saving them would replace the last good
  // checkpoint and models, so the run stops here instead.
  void refuse_non_finite_weights(int64_t step) {
    std::string bad = models::first_non_finite_tensor(*net_);
    if (bad.empty() && ema_.net) bad = models::first_non_finite_tensor(*ema_.net);
    if (bad.empty()) return;
    throw Error("weights became NaN or infinite (tensor '" + bad + "') at epoch " + std::to_string(st_.epoch + 1) +
                " step " + std::to_string(step) + " (diverged: lower --lr?); nothing was saved, the last good checkpoint " +
                checkpoint_path() + " is kept");
  }

  // The teacher of a resumed run must be the model the run started with
  // (the same file contents, wherever it lies now); `started_with` is the
  // teacher path in the checkpoint's config.
  void check_same_teacher(torch::serialize::InputArchive& a, const std::string& started_with) {
    c10::IValue saved;
    const bool had = a.try_read("teacher_checksum", saved) && saved.isString();
    if (!teacher_ && !had) return;
    if (!teacher_)
      throw Error("checkpoint " + checkpoint_path() + " was written by a run distilling from teacher " + started_with +
                  ", but no teacher is given now");
    if (!had)
      throw Error("checkpoint " + checkpoint_path() + " was written by a run without a teacher; it cannot resume with teacher " +
                  teacher_->path());
    if (saved.toStringRef() != teacher_->checksum())
      throw Error("teacher " + teacher_->path() + " (checksum " + teacher_->checksum() +
                  ") is not the model the run in " + run_dir_ + " started with: teacher " + started_with + " (checksum " +
                  saved.toStringRef() + ")" + (teacher_->path() == started_with ? ", the file has changed since" : ""));
  }

  void load_checkpoint(const std::string& teacher_started_with) {
    torch::serialize::InputArchive a;
    fs::load_archive_verified(a, checkpoint_path(), "checkpoint");
    check_group_size(a, checkpoint_path(), *coll_);
    check_same_teacher(a, teacher_started_with);
    torch::serialize::InputArchive m, o;
    a.read("model", m);
    load_module_state(m, *net_, "model");
    a.read("optimizer", o);
    load_optimizer_state(o, *opt_, net_->parameters());
    if (ema_.net) {
      torch::serialize::InputArchive e;
      if (a.try_read("ema", e)) {
        load_module_state(e, *ema_.net, "ema");
      }
    }
    // A fresh tensor per read: InputArchive::read into a defined tensor calls
    // set_(), which fails on storage that came from the archive.
    auto read_tensor = [&](const char* key) {
      at::Tensor t;
      a.read(key, t);
      return t;
    };
    loss_->window().load_state(read_tensor("window"));
    gen_.set_state(read_tensor("aug_rng"));
    at::Generator global_gen = at::detail::getDefaultCPUGenerator();
    global_gen.set_state(read_tensor("torch_rng"));
    at::Tensor pos = read_tensor("position");
    st_.epoch = static_cast<int>(pos[0].item<int64_t>());
    st_.step_in_epoch = pos[1].item<int64_t>();
    st_.global_step = pos[2].item<int64_t>();
    st_.best_epoch = static_cast<int>(pos[3].item<int64_t>());
    st_.best_acc = read_tensor("best_acc")[0].item<double>();
    at::Tensor elapsed;  // absent in checkpoints of adcorre before 2026-11-28: seconds restart at the resume
    if (a.try_read("elapsed_seconds", elapsed) && elapsed.numel() == 1) st_.seconds_before = elapsed.item<double>();
    restore_rank_state(a, *coll_, loss_->window(), gen_);  // this rank's RNGs and window
    at::Tensor scaler_state;  // only fp16 runs have one
    if (scaler_.enabled() && a.try_read("grad_scaler", scaler_state)) scaler_.load_state(scaler_state);
    at::Tensor rank_sums;  // absent in checkpoints of adcorre before 2026-11-28: the epoch's sums restart
    if (a.try_read("epoch_sums", rank_sums) && st_.step_in_epoch > 0) {
      check(rank_sums.dim() == 2 && rank_sums.size(0) == coll_->world_size() &&
                (rank_sums.size(1) == EpochSums::kFields || rank_sums.size(1) == EpochSums::kFieldsBeforeKd),
            "checkpoint " + checkpoint_path() + ": epoch_sums has the wrong shape");
      sums_ = EpochSums::from_tensor(rank_sums[coll_->rank()].to(torch::kDouble));
    }
    if (coll_->is_main()) drop_metrics_after_checkpoint();
    log::info("resumed " + run_dir_ + " at epoch " + std::to_string(st_.epoch + 1) + ", step " +
              std::to_string(st_.step_in_epoch));
  }

  // A run killed after writing an epoch's metrics line but before that
  // epoch's final checkpoint redoes the epoch's last steps on resume; its line
  // is dropped here so that the epoch is reported once.
  void drop_metrics_after_checkpoint() {
    const auto path = (sfs::path(run_dir_) / "metrics.jsonl").string();
    std::ifstream in(path);
    std::string line, kept;
    int dropped = 0;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
        ++dropped;  // a line cut short by the kill
        continue;
      }
      if (j.value("epoch", 0) > st_.epoch) {
        ++dropped;
        continue;
      }
      kept += line + "\n";
    }
    in.close();
    if (dropped == 0) return;
    fs::write_file_atomic(path, kept);
    log::info("metrics.jsonl: dropped " + std::to_string(dropped) + " line(s) written after the checkpoint");
  }

  void save_model_file(const std::string& name, models::FerModelImpl& net, const nlohmann::json& metrics) {
    if (!coll_->is_main()) return;
    auto cfg = mcfg_;
    cfg.provenance = {{"dataset", cfg_.train_data}, {"val_dataset", cfg_.val_data}, {"epochs", st_.epoch + 1},
                      {"metrics", metrics}, {"command", cfg_.command}, {"loss", cfg_.loss},
                      {"seed", cfg_.seed}, {"date", now_iso()}, {"adcorre_version", ADCORRE_VERSION},
                      {"ema", cfg_.ema}};
    if (teacher_)
      cfg.provenance["teacher"] = {{"path", cfg_.teacher}, {"checksum", teacher_->checksum()},
                                   {"tta", cfg_.teacher_tta}, {"targets", cfg_.teacher_targets},
                                   {"temperature", cfg_.kd_temperature},
                                   {"weight", cfg_.kd_weight}};
    models::save_model((sfs::path(run_dir_) / name).string(), cfg, net);
  }

  static std::string now_iso() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
  }

  // Seconds of training of the whole run: before this process, then in it.
  double run_seconds() const {
    return st_.seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

  TrainResult loop() {
    t0_ = std::chrono::steady_clock::now();
    Progress progress(coll_->is_main(), cfg_.log_every);
    const int64_t total_steps = steps_per_epoch_ * cfg_.epochs;
    const auto dev = torch::Device(device_);
    std::vector<at::Tensor> params = net_->parameters();
    for (; st_.epoch < cfg_.epochs; ++st_.epoch, st_.step_in_epoch = 0) {
      data::EpochPlan plan;
      plan.seed = cfg_.seed;
      plan.epoch = st_.epoch;
      plan.balanced = cfg_.balanced;
      plan.rank = coll_->rank();
      plan.world = coll_->world_size();
      auto order = data::epoch_indices(train_, plan);
      auto order_t = torch::tensor(order, torch::kLong);
      net_->train();
      progress.start_epoch(st_.epoch, cfg_.epochs, steps_per_epoch_, st_.step_in_epoch);
      if (st_.step_in_epoch == 0) sums_ = EpochSums{};
      double &sum_total = sums_.total, &sum_ce = sums_.ce, &sum_fd = sums_.fd, &sum_md = sums_.md, &sum_ed = sums_.ed;
      int64_t &correct = sums_.correct, &seen = sums_.seen, &n_steps = sums_.steps;
      double& sum_kd = sums_.kd;
      const int64_t seen_before = seen;  // images of this epoch done before a resume (not in img/s)
      // The running sums live on the device (total, ce, fd, md, ed, correct,
      // kd, float64): adding a step's values there needs no host sync. They are
      // read back (a copy, so the additions are the same as on the host) at
      // log lines, checkpoints and the epoch's end.
      at::Tensor dev_sums =
          torch::tensor({sum_total, sum_ce, sum_fd, sum_md, sum_ed, static_cast<double>(correct), sum_kd}, torch::kDouble)
              .to(dev);
      auto read_sums = [&] {
        auto h = dev_sums.cpu();
        const double* v = h.data_ptr<double>();
        sum_total = v[0], sum_ce = v[1], sum_fd = v[2], sum_md = v[3], sum_ed = v[4];
        correct = static_cast<int64_t>(v[5]);
        sum_kd = v[6];
      };
      auto diverged = [&](double tv, int64_t step) {
        return Error("loss became " + std::to_string(tv) + " at epoch " + std::to_string(st_.epoch + 1) + " step " +
                     std::to_string(step) + " (diverged: lower --lr?); the last good checkpoint " + checkpoint_path() +
                     " is intact");
      };
      for (int64_t s = st_.step_in_epoch; s < steps_per_epoch_; ++s) {
        auto idx = order_t.slice(0, s * cfg_.batch_size, (s + 1) * cfg_.batch_size);
        auto x = next_batch_to(train_.pixels.index_select(0, idx), dev);
        x = data::augment_batch(data::normalize(x, mcfg_), aug_, gen_);
        if (!cuda_) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
        auto y = next_batch_to(train_.labels.index_select(0, idx), dev);
        at::Tensor soft;
        if (cfg_.soft_labels && train_.soft.defined()) soft = next_batch_to(train_.soft.index_select(0, idx), dev);

        set_learning_rate(*opt_, lr_at(cfg_, st_.global_step, total_steps, steps_per_epoch_));
        models::FerOutput out;
        {
          AutocastScope autocast(amp_, device_);  // the forward pass only: the loss is in float32
          out = net_->forward(x);
        }
        at::Tensor logits = out.logits, embeddings = out.embeddings;
        if (amp_ != AmpMode::none) {
          logits = logits.to(torch::kFloat);
          if (embeddings.defined()) embeddings = embeddings.to(torch::kFloat);
        }
        loss::AdCorreTerms terms;
        try {
          terms = loss_->forward(logits, embeddings, y, soft);
        } catch (const Error& e) {
          throw Error(std::string(e.what()) + " at epoch " + std::to_string(st_.epoch + 1) + " step " +
                      std::to_string(s + 1) + "; the last good checkpoint " + checkpoint_path() + " is intact");
        }
        at::Tensor total = terms.total;
        if (class_weights_.defined()) {
          // Class-weighted CE replaces the plain CE term.
          auto wce = torch::nn::functional::cross_entropy(
              logits, y, torch::nn::functional::CrossEntropyFuncOptions().weight(class_weights_).label_smoothing(cfg_.label_smoothing));
          total = total + loss_->options().ce_weight() * (wce - terms.ce);
        }
        at::Tensor kd;
        if (teacher_) {
          // The teacher scores the very batch (augmentation included) the student sees.
          kd = distillation_loss(logits,
                                 teacher_cache_.defined() ? next_batch_to(teacher_cache_.index_select(0, idx), dev)
                                                          : teacher_->log_probs(x),
                                 cfg_.kd_temperature);
          total = (1 - cfg_.kd_weight) * total + cfg_.kd_weight * kd;
        }
        // On the CPU the check costs nothing and names the step; on a GPU it
        // would stall the queue every step, so there the sums are checked
        // where they are read (a NaN/Inf loss makes them NaN/Inf).
        if (!cuda_) {
          const double tv = total.item<double>();
          if (!std::isfinite(tv)) throw diverged(tv, s + 1);
        }
        opt_->zero_grad();
        scaler_.scale_loss(total).backward();
        if (coll_->world_size() > 1) {
          std::vector<at::Tensor> grads;
          for (auto& p : params)
            if (p.grad().defined()) grads.push_back(p.grad());
          coll_->average_gradients(grads);
        }
        // fp16: back to true gradients before clipping; an overflowed step is skipped.
        const bool grads_finite = scaler_.unscale_and_check(params);
        if (grads_finite) {
          if (cfg_.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, cfg_.grad_clip);
          opt_->step();
          if (ema_.net) ema_.update(*net_, st_.global_step);
        }
        scaler_.update(grads_finite);

        dev_sums.add_(torch::stack({total.detach().to(torch::kDouble), terms.ce.detach().to(torch::kDouble),
                                    terms.fd.detach().to(torch::kDouble), terms.md.detach().to(torch::kDouble),
                                    terms.ed.detach().to(torch::kDouble),
                                    logits.argmax(1).eq(y).sum().to(torch::kDouble),
                                    kd.defined() ? kd.detach().to(torch::kDouble) : torch::zeros({}, dev_sums.options())}));
        seen += y.size(0);
        n_steps++;
        st_.global_step++;
        st_.step_in_epoch = s + 1;
        const bool checkpoint_now =
            cfg_.checkpoint_every > 0 && st_.global_step % cfg_.checkpoint_every == 0 && s + 1 < steps_per_epoch_;
        if (progress.due(s) || checkpoint_now) {
          read_sums();
          if (!std::isfinite(sum_total)) throw diverged(sum_total, s + 1);
        }
        if (progress.due(s)) {
          char fields[240];
          const int len = std::snprintf(fields, sizeof fields, "loss %.3f ce %.3f fd %.3f md %.3f ed %.3f acc %.3f",
                                        sum_total / n_steps, sum_ce / n_steps, sum_fd / n_steps, sum_md / n_steps,
                                        sum_ed / n_steps, static_cast<double>(correct) / seen);
          if (teacher_ && len > 0 && len < static_cast<int>(sizeof fields))
            std::snprintf(fields + len, sizeof fields - len, " kd %.3f", sum_kd / n_steps);
          progress.update(s, (seen - seen_before) * coll_->world_size(), fields);
        }
        if (checkpoint_now) {
          refuse_non_finite_weights(s + 1);
          save_checkpoint();
        }
      }
      read_sums();
      if (!std::isfinite(sum_total)) throw diverged(sum_total, steps_per_epoch_);
      // Group-wide training metrics and batch-norm running statistics (the
      // mean over ranks, see docs/distributed.md).
      mean_over_ranks(*coll_, {&sum_total, &sum_ce, &sum_fd, &sum_md, &sum_ed, &sum_kd});
      sum_counts_over_ranks(*coll_, {&correct, &seen});
      average_running_stats(*coll_, *net_, ema_.net.get());
      refuse_non_finite_weights(steps_per_epoch_);
      // Validation (on the EMA weights when enabled), split over the ranks.
      models::FerModelImpl& eval_net = ema_.net ? *ema_.net : *net_;
      nlohmann::json rec = {{"epoch", st_.epoch + 1}, {"step", st_.global_step},
                            {"lr", lr_at(cfg_, std::max<int64_t>(st_.global_step - 1, 0), total_steps, steps_per_epoch_)},
                            {"train_loss", n_steps ? sum_total / n_steps : 0}, {"train_ce", n_steps ? sum_ce / n_steps : 0},
                            {"train_fd", n_steps ? sum_fd / n_steps : 0}, {"train_md", n_steps ? sum_md / n_steps : 0},
                            {"train_ed", n_steps ? sum_ed / n_steps : 0},
                            {"train_accuracy", seen ? static_cast<double>(correct) / seen : 0},
                            {"seconds", run_seconds()}};
      if (teacher_) rec["train_kd"] = n_steps ? sum_kd / n_steps : 0;
      double val_acc = rec["train_accuracy"];
      if (val_.size() > 0) {
        auto m = evaluate_sharded(eval_net, mcfg_, val_, device_, *coll_);
        val_acc = m.accuracy;
        rec["val_accuracy"] = m.accuracy;
        rec["val_mean_class_accuracy"] = m.mean_class_accuracy;
        rec["val_confusion"] = m.confusion();
      }
      char summary[200];
      std::snprintf(summary, sizeof summary, "epoch %d/%d: loss %.4f train acc %.4f val acc %.4f (%.0f s)",
                    st_.epoch + 1, cfg_.epochs, rec["train_loss"].get<double>(), rec["train_accuracy"].get<double>(),
                    val_acc, rec["seconds"].get<double>());
      progress.end_epoch(summary);
      if (coll_->is_main()) {
        std::ofstream(sfs::path(run_dir_) / "metrics.jsonl", std::ios::app) << rec.dump() << "\n";
#ifdef ADCORRE_HAVE_OPENCV
        try {  // pictures are a convenience: failing to draw them must not stop training
          eval::draw_run_pictures(run_dir_, mcfg_.class_names);
        } catch (const std::exception& e) { log::warn(std::string("drawing the run's pictures: ") + e.what()); }
#endif
        save_model_file("last.pt", eval_net, rec);
        if (val_acc > st_.best_acc) {
          st_.best_acc = val_acc;
          st_.best_epoch = st_.epoch + 1;
          save_model_file("best.pt", eval_net, rec);
        }
      }
      // Position after this epoch: the checkpoint says "next epoch, step 0".
      st_.epoch++;
      st_.step_in_epoch = 0;
      save_checkpoint();
      st_.epoch--;
      coll_->barrier();
    }
    TrainResult r;
    r.best_val_accuracy = st_.best_acc;
    r.best_epoch = st_.best_epoch;
    r.epochs_done = st_.epoch;
    r.run_dir = run_dir_;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    return r;
  }

  // A host batch on its way to `dev`: on CUDA from pinned memory without
  // waiting (the copy overlaps the previous step's kernels); on the CPU the
  // tensor itself.
  at::Tensor next_batch_to(const at::Tensor& host, const torch::Device& dev) const {
    if (!cuda_) return host;
    return host.pin_memory().to(dev, /*non_blocking=*/true);
  }

  TrainConfig cfg_;
  std::shared_ptr<Collective> coll_;
  std::string device_, run_dir_;
  bool cuda_ = false;
  AmpMode amp_ = AmpMode::none;
  GradScaler scaler_{false};
  models::ModelConfig mcfg_;
  data::ImageCache train_, val_;
  models::FerModel net_;
  Ema ema_;
  std::unique_ptr<torch::optim::Optimizer> opt_;
  std::unique_ptr<loss::AdCorreLoss> loss_;
  std::unique_ptr<Teacher> teacher_;  // --teacher, else null
  at::Tensor teacher_cache_;  // --teacher-targets clean: log-probabilities [N, K] of every training image (CPU)
  data::AugmentOptions aug_;
  at::Generator gen_;
  at::Tensor class_weights_;
  int64_t steps_per_epoch_ = 0;
  RunState st_;
  EpochSums sums_;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();  // this process's start of training
};

}  // namespace

TrainResult train(const TrainConfig& cfg, std::shared_ptr<Collective> collective) {
  cfg.validate();
  Run run(cfg, std::move(collective));
  run.setup(false);
  return run.loop();
}

// Opens RUN_DIR/checkpoint.pt into `a`; `missing` starts the error for a run
// folder without one. Returns the checkpoint's path.
static std::string open_run_checkpoint(const std::string& run_dir, torch::serialize::InputArchive& a,
                                       const std::string& missing) {
  const auto ckpt = (sfs::path(run_dir) / "checkpoint.pt").string();
  if (!sfs::exists(ckpt)) throw Error(missing + " in " + run_dir + " (expected " + ckpt + ")");
  fs::load_archive_verified(a, ckpt, "checkpoint");
  return ckpt;
}

TrainResult resume(const std::string& run_dir, int epochs, std::shared_ptr<Collective> collective, int threads,
                   const std::string& teacher) {
  torch::serialize::InputArchive a;
  open_run_checkpoint(run_dir, a, "no checkpoint to resume");
  c10::IValue v;
  a.read("config_json", v);
  auto cfg = TrainConfig::from_json(nlohmann::json::parse(v.toStringRef()));
  cfg.out = run_dir;
  if (epochs > 0) cfg.epochs = epochs;
  if (threads > 0) cfg.threads = threads;
  const std::string teacher_started_with = cfg.teacher;
  if (!teacher.empty()) cfg.teacher = teacher;  // the same model, moved (checked against the checkpoint)
  Run run(cfg, std::move(collective));
  run.setup(true);
  run.load_checkpoint(teacher_started_with);
  return run.loop();
}

void export_checkpoint(const std::string& run_dir, const std::string& out, bool ema, models::WeightStorage storage) {
  torch::serialize::InputArchive a;
  const std::string ckpt = open_run_checkpoint(run_dir, a, "no checkpoint");
  c10::IValue v;
  if (!a.try_read("model_config_json", v)) throw Error("checkpoint " + ckpt + " has no model config");
  auto cfg = models::ModelConfig::from_json(nlohmann::json::parse(v.toStringRef()));
  auto net = models::create_model(cfg);
  torch::serialize::InputArchive m;
  if (!a.try_read(ema ? "ema" : "model", m))
    throw Error("checkpoint " + ckpt + " has no " + std::string(ema ? "EMA weights (trained without --ema)" : "model"));
  load_module_state(m, *net, ema ? "ema" : "model");
  at::Tensor pos;
  a.read("position", pos);
  cfg.provenance = {{"checkpoint", ckpt}, {"weights", ema ? "ema" : "raw"},
                    {"epochs", pos[0].item<int64_t>()}, {"step", pos[2].item<int64_t>()}};
  if (a.try_read("config_json", v)) {
    auto tc = nlohmann::json::parse(v.toStringRef());
    cfg.provenance["dataset"] = tc.value("train_data", "");
    cfg.provenance["command"] = tc.value("command", "");
  }
  models::save_model(out, cfg, *net, storage);
}

}  // namespace adcorre::train
