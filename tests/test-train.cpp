// Training: a tiny synthetic set trains to high accuracy with both losses;
// resume is exact; the NaN guard stops a diverging run and keeps the last
// checkpoint; evaluation on the trained model reproduces its validation score;
// export writes a checkpoint's raw or EMA weights; distillation from a
// teacher (--teacher) learns the teacher's answers and resumes exactly.
#include <filesystem>
#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/data/preprocess.h"
#include "adcorre/eval/evaluate.h"
#include "adcorre/models/ensemble_model.h"
#include "adcorre/models/model_file.h"
#include "adcorre/train/distill.h"
#include "adcorre/train/trainer.h"
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"
#include "synthetic_faces.h"
#include "test_util.h"

using namespace adcorre;
namespace sfs = std::filesystem;

namespace {

const std::vector<std::string> kClasses{"angry", "happy", "sad"};

struct Fixture {
  test::TempDir tmp;
  std::string train_dir = tmp / "train", val_dir = tmp / "val";
  Fixture() {
    test::write_synthetic_folders(train_dir, kClasses, 64, 1);
    test::write_synthetic_folders(val_dir, kClasses, 20, 2);
  }
  train::TrainConfig config(const std::string& out) const {
    train::TrainConfig c;
    c.train_data = train_dir;
    c.val_data = val_dir;
    c.preset = "fer-tiny";
    c.epochs = 12;
    c.batch_size = 16;
    c.lr = 3e-3;
    c.augment = "light";
    c.threads = 1;
    c.seed = 5;
    c.out = tmp / out;
    return c;
  }
};

double last_val_accuracy(const std::string& run_dir) {
  std::ifstream in(sfs::path(run_dir) / "metrics.jsonl");
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return nlohmann::json::parse(last)["val_accuracy"].get<double>();
}

}  // namespace

TEST(Train, SyntheticSetLearnsWithAdCorreAndCe) {
  log::set_level(log::Level::quiet);
  Fixture f;
  for (std::string loss : {"adcorre", "ce"}) {
    SCOPED_TRACE(loss);
    auto c = f.config("run_" + loss);
    c.loss = loss;
    auto r = train::train(c);
    EXPECT_GE(r.best_val_accuracy, 0.9);
    EXPECT_TRUE(sfs::exists(sfs::path(c.out) / "best.pt"));
    EXPECT_TRUE(sfs::exists(sfs::path(c.out) / "last.pt"));
    EXPECT_TRUE(sfs::exists(sfs::path(c.out) / "config.json"));
    // The saved model scores the same on the validation set when evaluated afresh.
    auto m = models::load_model(c.out + "/last.pt");
    auto ds = eval::match_classes(data::read_class_folders(f.val_dir), m.config.class_names);
    auto cache = data::build_cache(ds, m.config);
    auto res = eval::evaluate_cache(*m.net, m.config, cache);
    EXPECT_NEAR(res.metrics.accuracy, last_val_accuracy(c.out), 1e-9);
    EXPECT_EQ(m.config.class_names, kClasses);
  }
}

// export writes the checkpoint's EMA weights (the run's last.pt) or its raw
// weights, in float32 or float16, and names what is missing otherwise.
TEST(Train, ExportWritesTheRawOrEmaWeightsOfTheCheckpoint) {
  log::set_level(log::Level::quiet);
  Fixture f;
  auto c = f.config("run_ema");
  c.epochs = 2;
  c.ema = 0.9;
  train::train(c);
  const std::string ema = f.tmp / "ema.pt", raw = f.tmp / "raw.pt", half = f.tmp / "half.pt";
  train::export_checkpoint(c.out, ema, true);
  train::export_checkpoint(c.out, raw, false);
  auto last = models::load_model(c.out + "/last.pt");
  auto e = models::load_model(ema), r = models::load_model(raw);
  EXPECT_EQ(e.config.provenance.value("weights", ""), "ema");
  EXPECT_EQ(r.config.provenance.value("weights", ""), "raw");
  EXPECT_EQ(r.config.provenance.value("epochs", 0), 2);
  auto last_params = last.net->named_parameters();
  auto raw_params = r.net->named_parameters();
  bool raw_differs = false;
  for (auto& p : e.net->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value().contiguous(), last_params[p.key()].contiguous())) << p.key();
    raw_differs |= !torch::equal(p.value().contiguous(), raw_params[p.key()].contiguous());
  }
  EXPECT_TRUE(raw_differs) << "the raw export holds the EMA weights";
  // The command line: --raw --half gives the raw weights rounded to float16.
  std::string out;
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " export " + c.out + " --raw --half --out " + half, &out, true), 0)
      << out;
  EXPECT_LT(sfs::file_size(half), sfs::file_size(raw) * 0.6);
  auto h = models::load_model(half);
  EXPECT_EQ(h.config.provenance.value("weights", ""), "raw");
  for (auto& p : h.net->named_parameters()) {
    auto want = raw_params[p.key()].to(torch::kHalf).to(torch::kFloat);
    EXPECT_TRUE(torch::equal(p.value().contiguous(), want.contiguous())) << p.key();
  }
  // A run without --ema has no EMA weights; a folder without a checkpoint has nothing.
  auto plain = f.config("run_plain");
  plain.epochs = 1;
  train::train(plain);
  auto message = [](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { train::export_checkpoint(plain.out, f.tmp / "x.pt", true); }).find("trained without --ema"),
            std::string::npos);
  EXPECT_NE(message([&] { train::export_checkpoint(f.train_dir, f.tmp / "y.pt", false); }).find("no checkpoint"),
            std::string::npos);
  EXPECT_FALSE(sfs::exists(f.tmp / "x.pt"));
  EXPECT_FALSE(sfs::exists(f.tmp / "y.pt"));
}

// Resume continues a run from its checkpoint to the requested end (a longer
// run than the one saved; bit-exactness is KilledRunResumesFromItsLastCheckpoint's).
TEST(Train, ResumeContinuesToTheEnd) {
  log::set_level(log::Level::quiet);
  Fixture f;
  auto b = f.config("resumed");
  b.epochs = 1;
  b.ema = 0.9;
  b.checkpoint_every = 5;
  train::train(b);
  EXPECT_THROW(train::train(b), Error);  // a second fresh run into the same folder is refused
  auto r = train::resume(b.out, 3);
  EXPECT_EQ(r.epochs_done, 3);
  std::ifstream in(sfs::path(b.out) / "metrics.jsonl");
  std::string line;
  std::vector<int> epochs;
  std::vector<double> losses;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    epochs.push_back(j["epoch"].get<int>());
    losses.push_back(j["train_loss"].get<double>());
  }
  EXPECT_EQ(epochs, (std::vector<int>{1, 2, 3}));
  // The resumed run kept learning from where it was (not from scratch).
  ASSERT_EQ(losses.size(), 3u);
  EXPECT_LT(losses[2], losses[0]);
  EXPECT_THROW(train::resume(f.tmp / "no-such-run"), Error);
}

TEST(Train, NanGuardStopsAndKeepsTheLastCheckpoint) {
  log::set_level(log::Level::quiet);
  Fixture f;
  auto c = f.config("nan");
  c.optimizer = "sgd";
  c.lr = 1e-2;
  c.schedule = "step";
  c.step_epochs = 1;
  c.step_gamma = 1e36;  // epoch 2 runs at lr 1e34: the weights overflow
  c.epochs = 3;
  try {
    train::train(c);
    FAIL() << "a diverging run did not stop";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_TRUE(msg.find("NaN") != std::string::npos || msg.find("loss became") != std::string::npos) << msg;
    EXPECT_NE(msg.find("checkpoint"), std::string::npos) << msg;
  }
  // The checkpoint of epoch 1 is intact and resumable state is readable;
  // load_model refuses NaN/Inf weights, so these also say they are finite.
  EXPECT_TRUE(sfs::exists(sfs::path(c.out) / "checkpoint.pt"));
  EXPECT_NO_THROW(models::load_model(c.out + "/last.pt"));
  EXPECT_NO_THROW(train::export_checkpoint(c.out, f.tmp / "from-checkpoint.pt", false));
  std::ifstream in(sfs::path(c.out) / "metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) lines += !line.empty();
  EXPECT_EQ(lines, 1);
}

// `train --lr 1e30` with one step per epoch: the step leaves NaN/Inf weights
// (or batch-norm statistics) while the loss it was computed from was finite.
// Nothing non-finite may be saved, and the message must say so.
TEST(Train, DivergedWeightsAreNeverSaved) {
  Fixture f;
  const std::string run = f.tmp / "lr1e30";
  std::string out;
  const int rc = test::run_command(test::adcorre_binary() + " --threads 1 train --train " + f.train_dir + " --val " +
                                       f.val_dir + " --preset fer-tiny --lr 1e30 --epochs 3 --max-steps-per-epoch 1 --out " +
                                       run, &out, true);
  EXPECT_NE(rc, 0) << out;
  EXPECT_TRUE(out.find("NaN") != std::string::npos || out.find("loss became") != std::string::npos) << out;
  for (const char* name : {"best.pt", "last.pt"})
    if (sfs::exists(sfs::path(run) / name)) EXPECT_NO_THROW(models::load_model(run + "/" + name)) << name;
  if (sfs::exists(sfs::path(run) / "checkpoint.pt"))
    EXPECT_NO_THROW(train::export_checkpoint(run, f.tmp / "x.pt", false));
}

// A checkpoint with one damaged byte is refused by resume and export (before,
// it was resumed or exported silently, export writing a fresh checksum).
TEST(Train, DamagedCheckpointIsRefused) {
  log::set_level(log::Level::quiet);
  Fixture f;
  auto c = f.config("damaged");
  c.epochs = 1;
  train::train(c);
  const std::string ckpt = c.out + "/checkpoint.pt";
  std::string bytes;
  {
    std::ifstream in(ckpt, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes[bytes.size() / 3] ^= 0x04;  // inside the tensor data
  std::ofstream(ckpt, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::string out;
  EXPECT_NE(test::run_command(test::adcorre_binary() + " export " + c.out + " --raw --out " + (f.tmp / "e.pt"), &out, true), 0);
  EXPECT_NE(out.find("checkpoint " + ckpt + " is corrupt"), std::string::npos) << out;
  EXPECT_FALSE(sfs::exists(f.tmp / "e.pt"));
  EXPECT_NE(test::run_command(test::adcorre_binary() + " train --resume " + c.out + " --epochs 2", &out, true), 0);
  EXPECT_NE(out.find("is corrupt"), std::string::npos) << out;
}

// Validation on the training images would report training accuracy.
TEST(Train, ValidationOnTheTrainingImagesIsRefused) {
  log::set_level(log::Level::quiet);
  Fixture f;
  auto c = f.config("same");
  c.val_data = c.train_data;
  c.epochs = 1;
  try {
    train::train(c);
    FAIL() << "trained with --val equal to --train";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("training images, so validation would report training accuracy"), std::string::npos) << e.what();
  }
}

// A run killed with SIGKILL resumes from its last (atomic) checkpoint and
// finishes with the same weights as the run left alone (AdamW + EMA: the
// shipped model's recipe; Adam's state goes through the same code).
TEST(Train, KilledRunResumesFromItsLastCheckpoint) {
  Fixture f;
  const std::string bin = test::adcorre_binary();
  auto cmd = [&](const std::string& out) {
    return bin + " --quiet --threads 1 train --train " + f.train_dir + " --val " + f.val_dir +
           " --preset fer-tiny --epochs 3 --batch-size 16 --lr 3e-3 --optimizer adamw --weight-decay 0.05 --ema 0.9"
           " --augment light --run-seed 9 --checkpoint-every 1 --out " +
           out;
  };
  const std::string straight = f.tmp / "straight", killed = f.tmp / "killed";
  // Start the same run in the background and kill it once it has checkpointed mid-run.
  const std::string pidfile = f.tmp / "pid";
  ASSERT_EQ(test::run_command("(" + cmd(killed) + " > /dev/null 2>&1 & echo $! > " + pidfile + ")"), 0);
  std::string pid;
  for (int i = 0; i < 100 && pid.empty(); ++i) {
    std::ifstream in(pidfile);
    std::getline(in, pid);
    if (pid.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(pid.empty());
  bool checkpointed = false;
  for (int i = 0; i < 600 && !checkpointed; ++i) {
    std::ifstream m(sfs::path(killed) / "metrics.jsonl");
    std::string line;
    int lines = 0;
    while (std::getline(m, line)) lines += !line.empty();
    checkpointed = lines >= 1;  // epoch 1 done; the run is somewhere in epoch 2
    if (!checkpointed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(checkpointed);
  test::run_command("kill -9 " + pid);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // No half-written checkpoint is left behind, and the run resumes to the end.
  ASSERT_TRUE(sfs::exists(sfs::path(killed) / "checkpoint.pt"));
  std::string out;
  ASSERT_EQ(test::run_command(bin + " --quiet --threads 1 train --resume " + killed, &out), 0) << out;
  // The resumed run finished all 3 epochs and wrote its models.
  std::ifstream m(sfs::path(killed) / "metrics.jsonl");
  std::string line, last;
  while (std::getline(m, line))
    if (!line.empty()) last = line;
  EXPECT_EQ(nlohmann::json::parse(last)["epoch"].get<int>(), 3);
  // Bit for bit the weights of the same run left alone: every piece of state
  // (weights, optimizer moments and steps, EMA, confusion window, RNG streams,
  // position) came back from the checkpoint.
  ASSERT_EQ(test::run_command(cmd(straight), &out), 0) << out;
  auto a = models::load_model(straight + "/last.pt");
  auto b = models::load_model(killed + "/last.pt");
  for (auto& p : a.net->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), b.net->named_parameters()[p.key()])) << p.key();
  for (auto& p : a.net->named_buffers())
    EXPECT_TRUE(torch::equal(p.value(), b.net->named_buffers()[p.key()])) << p.key();
  // The metrics lines agree too, the interrupted epoch's included: its running
  // sums came back from the checkpoint (only the wall-clock seconds differ).
  auto metric_lines = [](const std::string& run, std::vector<double>* seconds) {
    std::ifstream in(sfs::path(run) / "metrics.jsonl");
    std::vector<nlohmann::json> lines;
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) {
        auto j = nlohmann::json::parse(line);
        seconds->push_back(j["seconds"].get<double>());
        j.erase("seconds");
        lines.push_back(j);
      }
    return lines;
  };
  std::vector<double> straight_s, killed_s;
  auto straight_lines = metric_lines(straight, &straight_s), killed_lines = metric_lines(killed, &killed_s);
  ASSERT_EQ(straight_lines.size(), 3u);
  ASSERT_EQ(killed_lines.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(straight_lines[i], killed_lines[i]) << "epoch " << i + 1;
  // `seconds` spans the resume (the checkpoint carries the time before it):
  // it grows from epoch to epoch in the killed run as in the other.
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_GT(straight_s[i], straight_s[i - 1]) << "epoch " << i + 1;
    EXPECT_GT(killed_s[i], killed_s[i - 1]) << "epoch " << i + 1;
  }
}

namespace {

// A random (untrained) fer-tiny model file for kClasses: a fixed teacher
// whose answers have nothing to do with the labels.
std::string random_teacher(const std::string& path, int seed, std::vector<std::string> classes = kClasses) {
  torch::manual_seed(seed);
  auto cfg = models::preset("fer-tiny");
  cfg.class_names = std::move(classes);
  auto net = models::create_model(cfg);
  net->eval();
  models::save_model(path, cfg, *net);
  return path;
}

std::vector<nlohmann::json> metrics_of(const std::string& run_dir) {
  std::ifstream in(sfs::path(run_dir) / "metrics.jsonl");
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

// The distillation term is T^2 KL(teacher || student) at temperature T, zero
// when the student answers as the teacher; an ensemble teacher gives the log
// of its members' averaged probabilities, and flip TTA averages the mirror.
TEST(Distill, LossAndTeacherLogProbabilities) {
  auto t = torch::randn({5, 3}), s = torch::randn({5, 3}, torch::requires_grad());
  const double T = 3;
  auto pt = torch::softmax(t / T, 1), ps = torch::softmax(s / T, 1);
  auto want = (pt * (pt.log() - ps.log())).sum(1).mean() * T * T;
  auto got = train::distillation_loss(s, torch::log_softmax(t, 1), T);
  EXPECT_NEAR(got.item<double>(), want.item<double>(), 1e-6);
  got.backward();
  EXPECT_GT(s.grad().abs().sum().item<double>(), 0);  // it trains the student
  EXPECT_NEAR(train::distillation_loss(t + 2.5, torch::log_softmax(t, 1), T).item<double>(), 0, 1e-6);
  EXPECT_THROW(train::distillation_loss(s, t, 0), Error);

  test::TempDir tmp;
  const std::string a = random_teacher(tmp / "a.pt", 1), b = random_teacher(tmp / "b.pt", 2);
  auto ma = models::load_model(a), mb = models::load_model(b);
  auto ecfg = models::ensemble_config({ma.config, mb.config});
  auto ens = models::make_ensemble(ecfg, {ma.net, mb.net});
  models::save_model(tmp / "ab.pt", ecfg, *ens);
  auto x = torch::randn({6, 1, 48, 48}).contiguous(torch::MemoryFormat::ChannelsLast);
  torch::NoGradGuard ng;
  auto p = [&](models::FerModel& n, const torch::Tensor& in) { return torch::softmax(n->forward(in).logits, 1); };
  auto mirrored = x.flip({3}).contiguous(torch::MemoryFormat::ChannelsLast);
  auto student_cfg = ma.config;
  train::Teacher teacher(tmp / "ab.pt", "none", student_cfg, "cpu");
  EXPECT_LT((teacher.log_probs(x).exp() - (p(ma.net, x) + p(mb.net, x)) / 2).abs().max().item<double>(), 1e-5);
  train::Teacher flip(tmp / "ab.pt", "flip", student_cfg, "cpu");
  auto want_flip = (p(ma.net, x) + p(mb.net, x) + p(ma.net, mirrored) + p(mb.net, mirrored)) / 4;
  EXPECT_LT((flip.log_probs(x).exp() - want_flip).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(teacher.checksum(), models::load_model(tmp / "ab.pt").checksum);
  EXPECT_NE(teacher.checksum(), ma.checksum);
}

// A student distilled (weight 1: the labels play no part) from a fixed teacher
// whose answers are NOT the labels learns the teacher's answers: it agrees
// with the teacher's argmax on most validation images, and its KL to the
// teacher falls from epoch to epoch.
TEST(Distill, StudentLearnsAFixedTeachersAnswers) {
  log::set_level(log::Level::quiet);
  Fixture f;
  // The teacher: a trained network that calls each pattern by another class.
  const std::string swapped = f.tmp / "swapped";
  test::write_synthetic_folders(swapped, {"happy", "sad", "angry"}, 64, 3);
  auto tc = f.config("teacher");
  tc.train_data = swapped;
  tc.val_data = "";
  tc.loss = "ce";
  tc.epochs = 6;
  train::train(tc);
  const std::string teacher = tc.out + "/last.pt";

  // Both kinds of targets: the teacher on each augmented batch, and its
  // answers on the clean images, scored once.
  for (const std::string targets : {"batch", "clean"}) {
  SCOPED_TRACE("teacher targets " + targets);
  auto c = f.config("student-" + targets);
  c.loss = "ce";
  c.teacher = teacher;
  c.teacher_targets = targets;
  c.kd_weight = 1.0;
  c.kd_temperature = 2.0;
  c.epochs = 6;
  train::train(c);
  auto student = models::load_model(c.out + "/last.pt");
  auto t = models::load_model(teacher);
  auto ds = eval::match_classes(data::read_class_folders(f.val_dir), student.config.class_names);
  auto cache = data::build_cache(ds, student.config);
  auto x = data::normalize(cache.pixels, student.config).contiguous(torch::MemoryFormat::ChannelsLast);
  torch::NoGradGuard ng;
  auto student_answer = student.net->forward(x).logits.argmax(1), teacher_answer = t.net->forward(x).logits.argmax(1);
  const double agreement = student_answer.eq(teacher_answer).to(torch::kDouble).mean().item<double>();
  const double teacher_accuracy = teacher_answer.eq(cache.labels).to(torch::kDouble).mean().item<double>();
  EXPECT_LT(teacher_accuracy, 0.2) << "the teacher should answer the swapped classes";
  EXPECT_GE(agreement, 0.85);
  auto m = metrics_of(c.out);
  ASSERT_EQ(m.size(), 6u);
  ASSERT_TRUE(m.front().contains("train_kd"));
  EXPECT_LT(m.back()["train_kd"].get<double>(), 0.5 * m.front()["train_kd"].get<double>());
  EXPECT_EQ(student.config.provenance["teacher"]["path"], teacher);
  EXPECT_EQ(student.config.provenance["teacher"]["checksum"], t.checksum);
  EXPECT_EQ(student.config.provenance["teacher"]["targets"], targets);
  }
}

// A distilled run (Ad-Corre loss + teacher with flip TTA) stopped after one
// epoch and resumed ends with the weights of the uninterrupted run; resuming
// with another teacher is refused, naming both files.
TEST(Distill, ResumeIsExactAndRefusesAnotherTeacher) {
  log::set_level(log::Level::quiet);
  Fixture f;
  const std::string teacher = random_teacher(f.tmp / "teacher.pt", 4);
  std::string targets = "batch";
  auto config = [&](const std::string& out, int epochs) {
    auto c = f.config(out);
    c.teacher = teacher;
    c.teacher_tta = "flip";
    c.teacher_targets = targets;
    c.kd_weight = 0.5;
    c.epochs = epochs;
    c.max_steps_per_epoch = 6;
    return c;
  };
  // Stopped after one epoch, resumed to two: the weights of the straight run.
  auto stopped_and_resumed = [&](const std::string& name) {
    SCOPED_TRACE("teacher targets " + targets);
    train::train(config("straight-" + name, 2));
    auto b = config("resumed-" + name, 1);
    train::train(b);
    train::resume(b.out, 2);
    auto x = models::load_model(f.tmp / ("straight-" + name + "/last.pt")), y = models::load_model(b.out + "/last.pt");
    for (auto& p : x.net->named_parameters())
      EXPECT_TRUE(torch::equal(p.value(), y.net->named_parameters()[p.key()])) << p.key();
    EXPECT_EQ(metrics_of(f.tmp / ("straight-" + name))[1]["train_kd"], metrics_of(b.out)[1]["train_kd"]);
    return b;
  };
  const auto b = stopped_and_resumed("batch");
  // Targets scored once on the clean images: the resumed run scores them again, the same.
  targets = "clean";
  stopped_and_resumed("clean");
  // Another target kind makes another run.
  EXPECT_NE(metrics_of(f.tmp / "straight-clean")[1]["train_kd"], metrics_of(f.tmp / "straight-batch")[1]["train_kd"]);
  targets = "batch";
  // The same teacher moved elsewhere is accepted; another model is not.
  sfs::copy_file(teacher, f.tmp / "moved.pt");
  EXPECT_EQ(train::resume(b.out, 2, nullptr, 0, f.tmp / "moved.pt").epochs_done, 2);
  const std::string other = random_teacher(f.tmp / "other.pt", 5);
  const auto e = error_of([&] { train::resume(b.out, 3, nullptr, 0, other); });
  EXPECT_NE(e.find("other.pt"), std::string::npos) << e;
  EXPECT_NE(e.find("teacher.pt"), std::string::npos) << e;
}

// Bad distillation options and unusable teachers are refused before training.
TEST(Distill, BadOptionsAndTeachersAreRefused) {
  log::set_level(log::Level::quiet);
  Fixture f;
  auto base = f.config("bad");
  base.epochs = 1;
  base.teacher = random_teacher(f.tmp / "teacher.pt", 6);
  auto refused = [&](auto change, const std::string& needle) {
    auto c = base;
    change(c);
    const auto e = error_of([&] { train::train(c); });
    EXPECT_NE(e.find(needle), std::string::npos) << e;
  };
  refused([](train::TrainConfig& c) { c.kd_temperature = 0; }, "kd_temperature");
  refused([](train::TrainConfig& c) { c.kd_weight = 1.5; }, "kd_weight");
  refused([](train::TrainConfig& c) { c.kd_weight = -0.1; }, "kd_weight");
  refused([](train::TrainConfig& c) { c.teacher_targets = "augmented"; }, "teacher_targets");
  refused([](train::TrainConfig& c) { c.teacher_tta = "crop"; }, "teacher_tta");
  const std::string four = random_teacher(f.tmp / "four.pt", 7, {"angry", "happy", "sad", "neutral"});
  refused([&](train::TrainConfig& c) { c.teacher = four; }, "four.pt has classes");
  refused([&](train::TrainConfig& c) { c.teacher = f.tmp / "missing.pt"; }, "missing.pt");
  auto big = f.config("big");  // a 64x64 teacher cannot read 48x48 batches
  {
    auto cfg = models::preset("fer-tiny");
    cfg.class_names = kClasses;
    cfg.input_size = 64;
    auto net = models::create_model(cfg);
    models::save_model(f.tmp / "big.pt", cfg, *net);
  }
  refused([&](train::TrainConfig& c) { c.teacher = f.tmp / "big.pt"; }, "64x64");
  // The command line names the option too.
  std::string out;
  EXPECT_NE(test::run_command(test::adcorre_binary() + " --quiet train --train " + f.train_dir + " --teacher " +
                                  base.teacher + " --kd-weight 2 --out " + (f.tmp / "cli"),
                              &out, true),
            0);
  EXPECT_NE(out.find("kd_weight"), std::string::npos) << out;
}
