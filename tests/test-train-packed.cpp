// Training and evaluation from packed data alone (what the dependency-light
// ADCORRE_MINIMAL build does), in full and mixed precision (`--amp`), and the
// fp16 gradient scaler's rules (train/amp.h). Built in both configurations.
#include <filesystem>
#include <fstream>

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "adcorre/data/packed.h"
#include "adcorre/train/amp.h"
#include "adcorre/train/trainer.h"
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"
#include "test_util.h"

using namespace adcorre;
namespace sfs = std::filesystem;

namespace {

const std::vector<std::string> kClasses{"angry", "happy", "sad"};

// A learnable 48x48 gray set without any image library: noise plus a bright
// square whose corner depends on the class.
void write_synthetic_pack(const std::string& path, int per_class, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int64_t n = per_class * static_cast<int64_t>(kClasses.size()), S = 48;
  auto px = torch::randint(40, 120, {n, 1, S, S}, gen, torch::kFloat);
  std::vector<int64_t> labels;
  std::vector<std::string> keys;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % static_cast<int64_t>(kClasses.size());
    const int64_t y0 = c == 1 ? 26 : 6, x0 = c == 2 ? 26 : 6;
    px[i].slice(1, y0, y0 + 16).slice(2, x0, x0 + 16).add_(110);
    labels.push_back(c);
    keys.push_back(kClasses[c] + "/" + std::to_string(i) + ".png");
  }
  data::ImageCache cache;
  cache.pixels = px.clamp(0, 255).to(torch::kUInt8);
  cache.labels = torch::tensor(labels, torch::kLong);
  cache.keys = keys;
  cache.classes = kClasses;
  data::write_packed(path, cache, "synthetic");
}

std::vector<nlohmann::json> metrics_lines(const std::string& run_dir) {
  std::ifstream in(sfs::path(run_dir) / "metrics.jsonl");
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

struct PackedFixture {
  test::TempDir tmp;
  std::string train_pack = tmp / "train.pack", val_pack = tmp / "val.pack";
  PackedFixture() {
    write_synthetic_pack(train_pack, 32, 1);
    write_synthetic_pack(val_pack, 10, 2);
  }
  train::TrainConfig config(const std::string& out) const {
    train::TrainConfig c;
    c.train_data = train_pack;
    c.val_data = val_pack;
    c.preset = "fer-tiny";
    c.epochs = 4;
    c.batch_size = 16;
    c.lr = 3e-3;
    c.augment = "none";
    c.threads = 1;
    c.seed = 3;
    c.out = tmp / out;
    return c;
  }
};

at::Tensor param_with_grad(const at::Tensor& grad) {
  auto p = torch::zeros_like(grad).requires_grad_(true);
  p.mutable_grad() = grad.clone();
  return p;
}

}  // namespace

TEST(GradScaler, InfOrNanGradientsSkipTheStepAndHalveTheScale) {
  train::GradScaler s(true, {1024.0, 2.0, 0.5, 3});
  auto good = param_with_grad(torch::full({4}, 2048.0f));
  auto bad = param_with_grad(torch::tensor({1.0f, std::numeric_limits<float>::infinity()}));
  EXPECT_FALSE(s.unscale_and_check({good, bad}));
  s.update(false);
  EXPECT_EQ(s.scale(), 512.0);
  EXPECT_EQ(s.good_steps(), 0);
  auto nan = param_with_grad(torch::tensor({std::numeric_limits<float>::quiet_NaN()}));
  EXPECT_FALSE(s.unscale_and_check({nan}));
  s.update(false);
  EXPECT_EQ(s.scale(), 256.0);
}

TEST(GradScaler, GoodStepsGrowTheScaleAndUnscaleRestoresTheGradients) {
  train::GradScaler s(true, {1024.0, 2.0, 0.5, 3});
  auto loss = torch::tensor(0.25f);
  EXPECT_FLOAT_EQ(s.scale_loss(loss).item<float>(), 256.0f);
  auto p = param_with_grad(torch::tensor({1024.0f, -3072.0f}));
  auto no_grad = torch::zeros({2}).requires_grad_(true);  // a parameter without a gradient is left alone
  EXPECT_TRUE(s.unscale_and_check({p, no_grad}));
  EXPECT_TRUE(torch::equal(p.grad(), torch::tensor({1.0f, -3.0f})));
  for (int i = 0; i < 2; ++i) s.update(true);
  EXPECT_EQ(s.scale(), 1024.0);  // not yet: 2 of 3 good steps
  s.update(true);
  EXPECT_EQ(s.scale(), 2048.0);
  EXPECT_EQ(s.good_steps(), 0);
  s.update(true);
  s.update(false);  // an overflow resets the run of good steps
  for (int i = 0; i < 2; ++i) s.update(true);
  EXPECT_EQ(s.scale(), 1024.0);
  s.update(true);
  EXPECT_EQ(s.scale(), 2048.0);

  // The checkpointed state restores scale and count; a malformed one is refused.
  train::GradScaler r(true);
  s.update(true);
  r.load_state(s.state());
  EXPECT_EQ(r.scale(), 2048.0);
  EXPECT_EQ(r.good_steps(), 1);
  EXPECT_THROW(r.load_state(torch::tensor({1.0})), Error);
  EXPECT_THROW(r.load_state(torch::tensor({-1.0, 0.0}, torch::kDouble)), Error);
}

TEST(GradScaler, DisabledScalerChangesNothing) {
  train::GradScaler s(false);
  auto loss = torch::tensor(0.5f);
  EXPECT_TRUE(torch::equal(s.scale_loss(loss), loss));
  auto p = param_with_grad(torch::tensor({std::numeric_limits<float>::infinity(), 3.0f}));
  EXPECT_TRUE(s.unscale_and_check({p}));  // bf16/fp32 never skip: the loss check is the trainer's
  EXPECT_EQ(p.grad()[1].item<float>(), 3.0f);
  s.update(false);
  EXPECT_EQ(s.scale(), 65536.0);
}

TEST(Amp, BadModesAndFp16OnTheCpuAreRefusedNamingTheOption) {
  EXPECT_EQ(train::parse_amp("bf16"), train::AmpMode::bf16);
  try {
    train::parse_amp("fp8");
    FAIL() << "fp8 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'amp'"), std::string::npos) << e.what();
  }
  PackedFixture f;
  auto c = f.config("fp16");
  c.amp = "fp16";
  try {
    train::train(c);
    FAIL() << "fp16 on the CPU accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("fp16"), std::string::npos) << msg;
    EXPECT_NE(msg.find("CUDA"), std::string::npos) << msg;
  }
  std::string out;
  EXPECT_NE(test::run_command(test::adcorre_binary() + " train --train " + f.train_pack + " --amp fp16 --out " +
                                  (f.tmp / "cli-fp16"),
                              &out, true),
            0);
  EXPECT_NE(out.find("fp16 needs a CUDA device"), std::string::npos) << out;
  EXPECT_NE(test::run_command(test::adcorre_binary() + " train --train " + f.train_pack + " --amp half --out " +
                                  (f.tmp / "cli-half"),
                              &out, true),
            0);
  EXPECT_NE(out.find("'amp' must be none, bf16 or fp16"), std::string::npos) << out;
}

TEST(Amp, AutocastScopeRunsMatmulsInBf16OnTheCpuAndRestoresTheState) {
  auto a = torch::randn({4, 8}), b = torch::randn({8, 3});
  {
    train::AutocastScope scope(train::AmpMode::bf16, "cpu");
    EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kBFloat16);
    {
      train::AutocastScope inner(train::AmpMode::none, "cpu");  // none changes nothing
      EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kBFloat16);
    }
  }
  EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kFloat);
  EXPECT_THROW(train::AutocastScope(train::AmpMode::fp16, "cpu"), Error);
}

// The dependency-light build's whole path: train from .pack files, then
// `adcorre eval` on the packed validation data reproduces the best epoch's score.
TEST(TrainPacked, RunLearnsAndEvalOnThePackReproducesItsValidationScore) {
  log::set_level(log::Level::quiet);
  PackedFixture f;
  auto c = f.config("fp32");
  auto r = train::train(c);
  // Training accuracy: after 24 steps the batch-norm running statistics
  // (momentum 0.01, as Keras) still lag, so validation scores are not a
  // measure of learning yet; the evaluation below must reproduce them anyway.
  auto lines = metrics_lines(c.out);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_GT(lines.back()["train_accuracy"].get<double>(), 0.8) << lines.back().dump();  // chance is 1/3
  EXPECT_LT(lines.back()["train_loss"].get<double>(), lines.front()["train_loss"].get<double>());
  std::string out;
  const std::string json = f.tmp / "eval.json";
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " --threads 1 eval --model " + c.out + "/best.pt --data " +
                                  f.val_pack + " --json " + json,
                              &out, true),
            0)
      << out;
  std::ifstream in(json);
  auto j = nlohmann::json::parse(in);
  EXPECT_NEAR(j["accuracy"].get<double>(), r.best_val_accuracy, 1e-12);
}

// bf16 autocast on the CPU: a few steps give finite losses that go down and
// a training accuracy well above chance, and the run records --amp in its config.
TEST(TrainPacked, Bf16RunHasFiniteDecreasingLoss) {
  log::set_level(log::Level::quiet);
  PackedFixture f;
  auto c = f.config("bf16");
  c.amp = "bf16";
  train::train(c);
  auto lines = metrics_lines(c.out);
  ASSERT_EQ(lines.size(), 4u);
  for (auto& l : lines) EXPECT_TRUE(std::isfinite(l["train_loss"].get<double>())) << l.dump();
  EXPECT_LT(lines.back()["train_loss"].get<double>(), lines.front()["train_loss"].get<double>());
  EXPECT_GT(lines.back()["train_accuracy"].get<double>(), 0.6) << lines.back().dump();
  std::ifstream cfg(sfs::path(c.out) / "config.json");
  EXPECT_EQ(nlohmann::json::parse(cfg)["amp"], "bf16");
}

#ifdef ADCORRE_MINIMAL
// What this build leaves out says so, naming the build, instead of failing obscurely.
TEST(Minimal, ImageSubcommandsAndImageDataSayTheBuildLacksThem) {
  test::TempDir tmp;
  std::string out;
  EXPECT_NE(test::run_command(test::adcorre_binary() + " predict some.jpg", &out, true), 0);
  EXPECT_NE(out.find("not in this build"), std::string::npos) << out;
  EXPECT_NE(out.find("ADCORRE_MINIMAL"), std::string::npos) << out;
  sfs::create_directories(tmp.path / "angry");
  EXPECT_NE(test::run_command(test::adcorre_binary() + " train --train " + tmp.path.string() + " --out " + (tmp / "r"),
                              &out, true),
            0);
  EXPECT_NE(out.find("is not packed data"), std::string::npos) << out;
}
#endif
