// Models: shapes, unit-norm embeddings, Keras parameter count of the paper's
// Xception, model-file round trip and refusal of corrupt files, channels_last,
// BatchNorm folding for inference (every preset and the shipped model).
#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#ifdef ADCORRE_HAVE_OPENCV
#include "adcorre/data/preprocess.h"
#endif
#include "adcorre/loss/adcorre_loss.h"
#include "adcorre/models/bn_fold.h"
#include "adcorre/models/ensemble_model.h"
#include "adcorre/models/fer_model.h"
#include "adcorre/models/layers.h"
#include "adcorre/models/model_file.h"
#include "adcorre/util/error.h"
#include "adcorre/util/runtime.h"
#include "test_util.h"

using namespace adcorre;

// A fer-tiny network with non-trivial BN statistics, in eval mode.
static models::FerModel trained_looking_tiny(models::ModelConfig cfg, int seed) {
  torch::manual_seed(seed);
  auto net = models::create_model(cfg);
  net->train();
  torch::NoGradGuard ng;
  for (int i = 0; i < 3; ++i) net->forward(torch::randn({8, 1, 48, 48}));
  net->eval();
  return net;
}

// Saves `net` to `path`, loads it back, and expects the same logits for a
// random batch (the loaded net is channels_last, as load_model makes it).
static models::LoadedModel round_trip(models::FerModelImpl& net, const models::ModelConfig& cfg, const std::string& path) {
  auto x = torch::randn({4, 1, 48, 48});
  torch::NoGradGuard ng;
  auto want = net.forward(x).logits;
  models::save_model(path, cfg, net);
  auto loaded = models::load_model(path);
  auto got = loaded.net->forward(x.contiguous(torch::MemoryFormat::ChannelsLast)).logits;
  EXPECT_LT((got - want).abs().max().item<float>(), 1e-5) << path;
  return loaded;
}

TEST(Models, PaperXceptionBackboneHasKerasParameterCount) {
  auto cfg = models::preset("xception");
  auto net = models::create_model(cfg);
  int64_t backbone = -1;
  for (auto& c : net->named_children())
    if (c.key() == "backbone") backbone = models::count_keras_style(*c.value());
  EXPECT_EQ(backbone, 20861480);
}

TEST(Models, OutputShapesForPresetsAndSizes) {
  torch::manual_seed(0);
  struct Case { std::string preset; int size; };
  for (auto c : std::vector<Case>{{"fer-tiny", 48}, {"fer-tiny", 32}, {"fer-tiny", 64}, {"fer-compact", 48}}) {
    SCOPED_TRACE(c.preset + " " + std::to_string(c.size));
    auto cfg = models::preset(c.preset);
    cfg.input_size = c.size;
    auto net = models::create_model(cfg);
    net->eval();
    torch::NoGradGuard ng;
    auto out = net->forward(torch::randn({3, cfg.in_channels, c.size, c.size}));
    EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{3, cfg.num_classes()}));
    EXPECT_EQ(out.embeddings.sizes(), (std::vector<int64_t>{cfg.k, 3, cfg.d}));
    auto norms = out.embeddings.norm(2, -1);
    EXPECT_LT((norms - 1).abs().max().item<double>(), 1e-5);
  }
  // A 3-channel, 1-embedding variant.
  auto cfg = models::preset("fer-tiny");
  cfg.in_channels = 3;
  cfg.mean = {0.5, 0.5, 0.5};
  cfg.std = {0.5, 0.5, 0.5};
  cfg.k = 1;
  auto net = models::create_model(cfg);
  auto out = net->forward(torch::randn({2, 3, 48, 48}));
  EXPECT_EQ(out.embeddings.size(0), 1);
}

TEST(Models, TensorFlowSamePadding) {
  EXPECT_EQ(models::tf_same_padding(48, 3, 2), (std::make_pair<int64_t, int64_t>(0, 1)));
  EXPECT_EQ(models::tf_same_padding(47, 3, 2), (std::make_pair<int64_t, int64_t>(1, 1)));
  EXPECT_EQ(models::tf_same_padding(48, 3, 1), (std::make_pair<int64_t, int64_t>(1, 1)));
  // Max pooling pads with -inf: a negative image keeps negative maxima at the border.
  auto x = -torch::ones({1, 1, 4, 4});
  auto y = models::max_pool_tf(x, 3, 2, "same");
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_EQ(y.max().item<float>(), -1.0f);
}

TEST(Models, SaveLoadRoundTripGivesIdenticalOutputs) {
  test::TempDir tmp;
  auto cfg = models::preset("fer-tiny");
  cfg.provenance = {{"note", "test"}};
  auto net = trained_looking_tiny(cfg, 1);
  auto loaded = round_trip(*net, cfg, tmp / "m.pt");
  EXPECT_EQ(loaded.config.provenance["note"], "test");
  EXPECT_EQ(loaded.config.class_names, cfg.class_names);
}

TEST(Models, CorruptTruncatedOrMismatchedFilesAreRefused) {
  test::TempDir tmp;
  auto cfg = models::preset("fer-tiny");
  auto net = models::create_model(cfg);
  models::save_model(tmp / "m.pt", cfg, *net);
  std::string bytes;
  {
    std::ifstream in(tmp / "m.pt", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  // Truncated.
  std::ofstream(tmp / "trunc.pt", std::ios::binary).write(bytes.data(), bytes.size() / 2);
  EXPECT_THROW(models::load_model(tmp / "trunc.pt"), Error);
  // Not a model at all.
  std::ofstream(tmp / "text.pt") << "hello";
  EXPECT_THROW(models::load_model(tmp / "text.pt"), Error);
  // Missing.
  EXPECT_THROW(models::load_model(tmp / "nope.pt"), Error);
  // Corrupt bytes in the middle (tensor data): the zip CRC check catches it.
  std::string bad = bytes;
  for (size_t i = bad.size() / 3; i < bad.size() / 3 + 64; ++i) bad[i] ^= 0x5a;
  std::ofstream(tmp / "bad.pt", std::ios::binary).write(bad.data(), bad.size());
  EXPECT_THROW(models::load_model(tmp / "bad.pt"), Error);
  // A config that does not match its weights.
  auto other = cfg;
  other.d = cfg.d * 2;
  models::save_model(tmp / "mismatch.pt", other, *net);  // weights of d=16 under a config saying d=32
  try {
    models::load_model(tmp / "mismatch.pt");
    FAIL() << "a mismatched file loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not match"), std::string::npos) << e.what();
  }
}

TEST(Models, ChannelsLastMatchesDefaultLayout) {
  torch::manual_seed(2);
  auto cfg = models::preset("fer-tiny");
  auto a = models::create_model(cfg);
  a->eval();
  auto x = torch::randn({2, 1, 48, 48});
  torch::NoGradGuard ng;
  auto want = a->forward(x).logits;
  models::to_channels_last(*a);
  auto got = a->forward(x.contiguous(torch::MemoryFormat::ChannelsLast)).logits;
  EXPECT_LT((got - want).abs().max().item<float>(), 1e-4);
}

TEST(Models, UnknownPresetListsKnownNames) {
  try {
    models::preset("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fer-compact"), std::string::npos);
  }
}


// --init copies tensors by name and shape; a source that would initialise
// nothing (an ensemble, another architecture) is refused, naming the file.
TEST(Models, InitFromCopiesMatchingTensorsAndRefusesUselessSources) {
  test::TempDir tmp;
  auto cfg = models::preset("fer-tiny");
  auto src = trained_looking_tiny(cfg, 11);
  models::save_model(tmp / "src.pt", cfg, *src);
  // Same architecture, another head (2 classes): all but the head's tensors copied.
  auto two = cfg;
  two.class_names = {"a", "b"};
  torch::manual_seed(12);
  auto dst = models::create_model(two);
  auto report = models::init_from(*dst, tmp / "src.pt");
  EXPECT_GT(report.matched, 0);
  EXPECT_FALSE(report.shape_mismatch.empty());
  auto src_params = src->named_parameters();
  int equal = 0;
  for (auto& p : dst->named_parameters())
    if (p.value().sizes() == src_params[p.key()].sizes()) {
      EXPECT_TRUE(torch::equal(p.value(), src_params[p.key()])) << p.key();
      ++equal;
    }
  EXPECT_GT(equal, 0);
  auto message = [&](const std::string& path) {
    auto net = models::create_model(cfg);
    try {
      models::init_from(*net, path);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto ens_cfg = models::ensemble_config({cfg, cfg});
  auto ens = models::make_ensemble(ens_cfg, {src, trained_looking_tiny(cfg, 13)});
  models::save_model(tmp / "ens.pt", ens_cfg, *ens);
  auto m = message(tmp / "ens.pt");
  EXPECT_NE(m.find("ensemble of 2"), std::string::npos) << m;
  EXPECT_NE(m.find("ens.pt"), std::string::npos) << m;
  auto resnet_cfg = models::preset("resnet50");
  models::save_model(tmp / "resnet.pt", resnet_cfg, *models::create_model(resnet_cfg));
  m = message(tmp / "resnet.pt");
  EXPECT_NE(m.find("no tensor of the backbone matches"), std::string::npos) << m;
  EXPECT_NE(m.find("resnet.pt"), std::string::npos) << m;
}

TEST(Models, EnsembleAveragesMemberProbabilities) {
  auto cfg_a = models::preset("fer-tiny");
  auto cfg_b = models::preset("fer-tiny");
  cfg_b.width = 0.5;  // members may differ in architecture
  cfg_b.k = 2;
  auto a = trained_looking_tiny(cfg_a, 3);
  auto b = trained_looking_tiny(cfg_b, 4);
  auto ens = models::make_ensemble(models::ensemble_config({cfg_a, cfg_b}), {a, b});
  ens->eval();
  auto x = torch::randn({5, 1, 48, 48});
  torch::NoGradGuard ng;
  // Naive reference: the mean of the two softmax vectors.
  auto want = (torch::softmax(a->forward(x).logits, 1) + torch::softmax(b->forward(x).logits, 1)) / 2;
  auto out = ens->forward(x);
  EXPECT_LT((torch::softmax(out.logits, 1) - want).abs().max().item<float>(), 1e-6);
  EXPECT_LT((out.logits.exp() - want).abs().max().item<float>(), 1e-6);
  EXPECT_FALSE(out.embeddings.defined());
  EXPECT_EQ(ens->features(x).size(1), a->features(x).size(1) + b->features(x).size(1));
  EXPECT_EQ(models::count_parameters(*ens), models::count_parameters(*a) + models::count_parameters(*b));
}

// A small batch that its caller runs on one thread (SmallWorkOnOneThread, as
// predict does) while the process has two: the members are split over the
// set-aside thread, and the outputs are those of one thread, bit for bit;
// inference mode carries over to the helper thread (no autograd graph).
TEST(Models, EnsembleSplitsSmallBatchesOverTheSetAsideThreadWithTheSameOutputs) {
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  auto cfg_a = models::preset("fer-tiny");
  auto cfg_b = cfg_a;
  cfg_b.width = 0.5;
  auto a = trained_looking_tiny(cfg_a, 21), b = trained_looking_tiny(cfg_b, 22), c = trained_looking_tiny(cfg_a, 23);
  auto ens = models::make_ensemble(models::ensemble_config({cfg_a, cfg_b, cfg_a}), {a, b, c});
  ens->eval();
  auto x = torch::randn({1, 1, 48, 48}).contiguous(torch::MemoryFormat::ChannelsLast);
  torch::Tensor alone, split;
  {
    c10::InferenceMode im;
    // One thread, nothing set aside: every member here.
    at::set_num_threads(1);
    EXPECT_EQ(runtime::SmallWorkOnOneThread::threads_set_aside(), 0);
    alone = ens->forward(x).logits;
    at::set_num_threads(2);
    runtime::SmallWorkOnOneThread one(1);
    EXPECT_EQ(runtime::SmallWorkOnOneThread::threads_set_aside(), 2);
    split = ens->forward(x).logits;
    EXPECT_TRUE(split.is_inference());
  }
  EXPECT_EQ(runtime::SmallWorkOnOneThread::threads_set_aside(), 0);
  EXPECT_TRUE(torch::equal(alone, split));
  // A failure in a member reaches the caller (a wrong input size here).
  {
    c10::InferenceMode im;
    runtime::SmallWorkOnOneThread one(1);
    EXPECT_ANY_THROW(ens->forward(torch::randn({1, 3, 48, 48})));
  }
  at::set_num_threads(before);
}

TEST(Models, EnsembleFileRoundTripAndSummary) {
  test::TempDir tmp;
  auto cfg = models::preset("fer-tiny");
  auto a = trained_looking_tiny(cfg, 5);
  auto b = trained_looking_tiny(cfg, 6);
  auto ens_cfg = models::ensemble_config({cfg, cfg});
  auto ens = models::make_ensemble(ens_cfg, {a, b});
  ens->eval();
  auto loaded = round_trip(*ens, ens_cfg, tmp / "e.pt");
  ASSERT_EQ(loaded.config.arch, "ensemble");
  ASSERT_EQ(loaded.config.members.size(), 2u);
  EXPECT_EQ(loaded.config.members[1].k, cfg.k);
  auto text = models::summary(loaded.config, *loaded.net);
  EXPECT_NE(text.find("ensemble of 2"), std::string::npos) << text;
  EXPECT_NE(text.find("member 1: arch xception (preset fer-tiny)"), std::string::npos) << text;
}

TEST(Models, EnsembleRefusesMembersThatCannotShareInput) {
  auto cfg = models::preset("fer-tiny");
  auto expect_error = [](const std::vector<models::ModelConfig>& members, const std::string& needle) {
    try {
      models::ensemble_config(members);
      FAIL() << "accepted; expected an error naming " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error({cfg}, "at least 2");
  auto other_classes = cfg;
  other_classes.class_names = {"a", "b", "c"};
  expect_error({cfg, other_classes}, "members[1].class_names");
  auto other_size = cfg;
  other_size.input_size = 64;
  expect_error({cfg, other_size}, "members[1].input_size");
  auto other_norm = cfg;
  other_norm.mean = {0.4};
  expect_error({cfg, other_norm}, "members[1].mean");
  auto nested = models::ensemble_config({cfg, cfg});
  expect_error({cfg, nested}, "members[1]");
  // A config file with arch ensemble but its members' fields broken names the member.
  auto j = nested.to_json();
  j["members"][0]["in_channels"] = 2;
  try {
    models::ModelConfig::from_json(j);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("members[0]"), std::string::npos) << e.what();
  }
}

TEST(Models, Float16StorageHalvesTheFileAndLoadsTheRoundedWeights) {
  test::TempDir tmp;
  auto cfg = models::preset("fer-tiny");
  auto net = trained_looking_tiny(cfg, 7);
  models::save_model(tmp / "f32.pt", cfg, *net);
  models::save_model(tmp / "f16.pt", cfg, *net, models::WeightStorage::Float16);
  const auto size32 = std::filesystem::file_size(tmp / "f32.pt");
  const auto size16 = std::filesystem::file_size(tmp / "f16.pt");
  EXPECT_LT(size16, size32 * 0.6) << size16 << " vs " << size32;
  auto loaded = models::load_model(tmp / "f16.pt");
  auto want_params = net->named_parameters();
  for (auto& p : loaded.net->named_parameters()) {
    EXPECT_EQ(p.value().scalar_type(), torch::kFloat) << p.key();
    auto rounded = want_params[p.key()].detach().to(torch::kHalf).to(torch::kFloat);
    EXPECT_TRUE(torch::equal(p.value().contiguous(), rounded.contiguous())) << p.key();
  }
  auto x = torch::randn({4, 1, 48, 48});
  torch::NoGradGuard ng;
  auto want = torch::softmax(net->forward(x).logits, 1);
  auto got = torch::softmax(loaded.net->forward(x.contiguous(torch::MemoryFormat::ChannelsLast)).logits, 1);
  EXPECT_LT((got - want).abs().max().item<float>(), 5e-3);
  // Flipped bytes inside float16 tensor data are still caught by the checksum.
  std::string bytes;
  {
    std::ifstream in(tmp / "f16.pt", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 16; ++i) bytes[i] ^= 0x21;
  std::ofstream(tmp / "bad16.pt", std::ios::binary).write(bytes.data(), bytes.size());
  EXPECT_THROW(models::load_model(tmp / "bad16.pt"), Error);
}

TEST(Models, EnsembleCommandWritesAFileEvalCanUse) {
  test::TempDir tmp;
  auto cfg = models::preset("fer-tiny");
  models::save_model(tmp / "a.pt", cfg, *trained_looking_tiny(cfg, 8));
  models::save_model(tmp / "b.pt", cfg, *trained_looking_tiny(cfg, 9));
  auto other = cfg;
  other.class_names = {"x", "y"};
  models::save_model(tmp / "c.pt", other, *trained_looking_tiny(other, 10));
  const std::string bin = test::adcorre_binary();
  std::string out;
  ASSERT_EQ(test::run_command(bin + " ensemble " + tmp / "a.pt" + " " + tmp / "b.pt" + " --half --out " + tmp / "ab.pt", &out, true), 0) << out;
  EXPECT_NE(out.find("ensemble of 2 models"), std::string::npos) << out;
  auto loaded = models::load_model(tmp / "ab.pt");
  EXPECT_EQ(loaded.config.arch, "ensemble");
  EXPECT_EQ(loaded.config.members[0].provenance.value("file", ""), tmp / "a.pt");
  ASSERT_EQ(test::run_command(bin + " info --model " + tmp / "ab.pt", &out, true), 0) << out;
  EXPECT_NE(out.find("ensemble of 2"), std::string::npos) << out;
  // Mismatched classes: a clear error naming the files, and no output file.
  EXPECT_EQ(test::run_command(bin + " ensemble " + tmp / "a.pt" + " " + tmp / "c.pt" + " --out " + tmp / "ac.pt", &out, true), 1);
  EXPECT_NE(out.find("class_names"), std::string::npos) << out;
  EXPECT_NE(out.find("c.pt"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(tmp / "ac.pt"));
  // One model is not an ensemble.
  EXPECT_EQ(test::run_command(bin + " ensemble " + tmp / "a.pt" + " --out " + tmp / "a1.pt", &out, true), 1);
  EXPECT_NE(out.find("at least 2"), std::string::npos) << out;

  // export --member I gives member I back as a model of its own: the same
  // logits as the file it came from (both float32 here, so exactly).
  ASSERT_EQ(test::run_command(bin + " ensemble " + tmp / "a.pt" + " " + tmp / "b.pt" + " --out " + tmp / "ab32.pt", &out, true), 0) << out;
  ASSERT_EQ(test::run_command(bin + " export " + tmp / "ab32.pt" + " --member 1 --out " + tmp / "m1.pt", &out, true), 0) << out;
  auto member = models::load_model(tmp / "m1.pt");
  auto original = models::load_model(tmp / "b.pt");
  EXPECT_EQ(member.config.arch, original.config.arch);
  torch::manual_seed(2);
  auto x = torch::randn({3, 1, 48, 48}).contiguous(torch::MemoryFormat::ChannelsLast);
  {
    torch::NoGradGuard ng;
    EXPECT_TRUE(torch::equal(member.net->forward(x).logits, original.net->forward(x).logits));
    auto other = models::load_model(tmp / "a.pt");
    EXPECT_FALSE(torch::equal(member.net->forward(x).logits, other.net->forward(x).logits));
  }
  // A member that is not there, or a file that is no ensemble: errors, no file.
  EXPECT_EQ(test::run_command(bin + " export " + tmp / "ab32.pt" + " --member 2 --out " + tmp / "m2.pt", &out, true), 1);
  EXPECT_NE(out.find("member 2 asked of an ensemble of 2 members (0..1)"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(tmp / "m2.pt"));
  EXPECT_EQ(test::run_command(bin + " export " + tmp / "a.pt" + " --member 0 --out " + tmp / "m0.pt", &out, true), 1);
  EXPECT_NE(out.find("not an ensemble"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(tmp / "m0.pt"));
}

// The presets on the test device (ADCORRE_TEST_DEVICE; the CPU by default):
// the same logits as on the CPU, and a training step (Ad-Corre loss, backward,
// Adam) whose gradients are all on the device and finite. A tensor made on the
// CPU inside a model or the loss fails here on CUDA.
TEST(Models, ForwardAndTrainingStepOnTheTestDevice) {
  const torch::Device dev(test::test_device());
  for (const char* name : {"fer-tiny", "fer-compact", "xception"}) {
    SCOPED_TRACE(name);
    torch::manual_seed(4);
    auto cfg = models::preset(name);
    cfg.input_size = 48;  // small, so that the CPU form stays quick
    cfg.middle_blocks = std::min(cfg.middle_blocks, 1);
    auto cpu_net = models::create_model(cfg);
    auto dev_net = models::create_model(cfg);
    {
      torch::NoGradGuard ng;
      auto src = cpu_net->parameters(), dst = dev_net->parameters();
      for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
    }
    dev_net->to(dev);
    cpu_net->eval();
    dev_net->eval();
    auto x = torch::randn({4, cfg.in_channels, 48, 48});
    {
      torch::NoGradGuard ng;
      auto want = cpu_net->forward(x).logits;
      auto got = dev_net->forward(x.to(dev)).logits;
      ASSERT_EQ(got.device(), dev);
      // cuDNN may use TF32 for convolutions: a relative tolerance, not bits.
      EXPECT_LT(test::rel_error(got, want), 2e-3);
    }
    dev_net->train();
    loss::AdCorreOptions lo;
    lo.num_classes = cfg.num_classes();
    loss::AdCorreLoss loss_fn(lo);
    torch::optim::Adam opt(dev_net->parameters(), torch::optim::AdamOptions(1e-3));
    auto y = torch::arange(4, torch::kLong).remainder(cfg.num_classes()).to(dev);
    auto out = dev_net->forward(x.to(dev));
    auto terms = loss_fn.forward(out.logits, out.embeddings, y);
    ASSERT_EQ(terms.total.device(), dev);
    opt.zero_grad();
    terms.total.backward();
    for (auto& p : dev_net->named_parameters()) {
      if (!p.value().grad().defined()) continue;
      ASSERT_EQ(p.value().grad().device(), dev) << p.key();
      ASSERT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
    }
    opt.step();
  }
}

namespace {

// Random BatchNorm statistics and affine terms: a fresh model's are 0/1, with
// which folding would be the identity and this test could not fail.
void randomise_batchnorm(torch::nn::Module& net) {
  torch::NoGradGuard ng;
  for (auto& m : net.modules(false))
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      bn->running_mean.uniform_(-0.2, 0.2);
      bn->running_var.uniform_(0.5, 2.0);
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.2, 0.2);
    }
}

int count_batchnorms(torch::nn::Module& net) {
  int n = 0;
  for (auto& m : net.modules(false)) n += m->as<torch::nn::BatchNorm2dImpl>() != nullptr;
  return n;
}

// The first `per_class` images (by name) of each class folder of FER-2013's val split.
std::vector<std::string> fer_val_images(size_t per_class) {
  std::vector<std::string> out;
  const auto shared = test::shared_dir();
  if (shared.empty()) return out;
  const auto val = std::filesystem::path(shared) / "data/fer2013/val";
  if (!std::filesystem::is_directory(val)) return out;
  std::vector<std::filesystem::path> classes;
  for (auto& d : std::filesystem::directory_iterator(val))
    if (d.is_directory()) classes.push_back(d.path());
  std::sort(classes.begin(), classes.end());
  for (auto& c : classes) {
    std::vector<std::string> files;
    for (auto& f : std::filesystem::directory_iterator(c)) files.push_back(f.path().string());
    std::sort(files.begin(), files.end());
    for (size_t i = 0; i < std::min(per_class, files.size()); ++i) out.push_back(files[i]);
  }
  return out;
}

}  // namespace

// Folding every BatchNorm into its convolution leaves each preset's outputs
// (probabilities, embeddings, features) as they were, folds all of them, and
// is done once: a second fold changes nothing.
TEST(BatchNormFolding, EveryPresetKeepsItsOutputs) {
  torch::manual_seed(11);
  for (const auto& name : models::preset_names()) {
    SCOPED_TRACE(name);
    auto cfg = models::preset(name);
    auto net = models::create_model(cfg);
    randomise_batchnorm(*net);
    models::to_channels_last(*net);
    net->eval();
    const int64_t n = cfg.input_size > 100 ? 2 : 16;  // the 224x224 presets are slow on a shared CPU
    auto x = torch::randn({n, cfg.in_channels, cfg.input_size, cfg.input_size}).contiguous(torch::MemoryFormat::ChannelsLast);
    torch::NoGradGuard ng;
    auto before = net->forward(x);
    auto features_before = net->features(x);
    EXPECT_EQ(models::fold_batchnorm(*net), count_batchnorms(*net));
    EXPECT_TRUE(models::has_folded_batchnorm(*net));
    auto after = net->forward(x);
    EXPECT_LT((torch::softmax(after.logits, 1) - torch::softmax(before.logits, 1)).abs().max().item<double>(), 1e-5);
    EXPECT_LT(test::rel_error(after.logits, before.logits), 1e-5);
    EXPECT_LT(test::rel_error(net->features(x), features_before), 1e-5);
    if (before.embeddings.defined()) EXPECT_LT((after.embeddings - before.embeddings).abs().max().item<double>(), 1e-5);
    EXPECT_EQ(models::fold_batchnorm(*net), 0);
    EXPECT_TRUE(torch::equal(net->forward(x).logits, after.logits));
  }
}

// --model takes a shipped model's bare name from any folder; a path, or a
// name that is a file here, is taken as it is.
TEST(ModelPaths, ShippedNamesResolveWherePathsStayAsGiven) {
  namespace sfs = std::filesystem;
  const auto shipped = sfs::path(models::default_model_path());
  if (std::getenv("ADCORRE_MODEL")) GTEST_SKIP() << "ADCORRE_MODEL set";
  test::TempDir tmp;
  const auto before = sfs::current_path();
  sfs::current_path(tmp.path);
  const auto name = shipped.filename().string();
  EXPECT_EQ(models::resolve_model_path(""), shipped.string());
  EXPECT_EQ(models::resolve_model_path(name), shipped.string());
  EXPECT_EQ(models::resolve_model_path(shipped.stem().string()), shipped.string());  // without ".pt"
  EXPECT_EQ(models::resolve_model_path("no-such-model.pt"), "no-such-model.pt");     // the loader names it
  EXPECT_EQ(models::resolve_model_path("sub/" + name), "sub/" + name);               // a path is never searched
  { std::ofstream(tmp.path / name) << "mine"; }                                      // a file here wins
  EXPECT_EQ(models::resolve_model_path(name), name);
  // The other shipped FER-2013 file, by its bare name: one distilled network
  // with the default's classes (docs/models.md).
  const auto fast = models::resolve_model_path("fer2013-fast");
  EXPECT_EQ(sfs::path(fast), shipped.parent_path() / "fer2013-fast.pt");
  // The commands take it too, from a folder that holds no model.
  std::string out;
  EXPECT_EQ(test::run_command(test::adcorre_binary() + " info --model fer2013-fast", &out, true), 0) << out;
  EXPECT_NE(out.find("model file " + fast), std::string::npos) << out;
#ifdef ADCORRE_HAVE_OPENCV  // predict decodes images; the minimal build has no OpenCV
  EXPECT_EQ(test::run_command(test::adcorre_binary() + " -q predict --model fer2013-fast --detector none " +
                                  std::string(ADCORRE_SOURCE_DIR) + "/examples/astronaut.jpg",
                              &out, true),
            0)
      << out;
  EXPECT_NE(out.find("\"label\""), std::string::npos) << out;
#endif
  sfs::current_path(before);
  const auto fast_cfg = models::read_model_config(fast);
  EXPECT_NE(fast_cfg.arch, "ensemble");
  EXPECT_EQ(fast_cfg.class_names, models::read_model_config(shipped.string()).class_names);
}

#ifdef ADCORRE_HAVE_OPENCV  // decoding the faces; the minimal build has no OpenCV
// The shipped model (an ensemble of four) on real FER-2013 faces, as
// predict and eval load it (load_model_for_inference) and as it is stored.
TEST(BatchNormFolding, ShippedModelGivesTheSameProbabilitiesOnRealFaces) {
  const auto images = fer_val_images(4);
  if (images.size() < 7) GTEST_SKIP() << "needs ../shared/data/fer2013/val";
  const auto path = models::default_model_path();
  auto plain = models::load_model(path);
  auto folded = models::load_model_for_inference(path);
  EXPECT_FALSE(models::has_folded_batchnorm(*plain.net));
  EXPECT_TRUE(models::has_folded_batchnorm(*folded.net));
  EXPECT_EQ(plain.checksum, folded.checksum);
  std::vector<cv::Mat> faces;
  for (auto& p : images) faces.push_back(data::decode_image(p, plain.config.in_channels));
  auto x = data::images_to_input(faces, plain.config).contiguous(torch::MemoryFormat::ChannelsLast);
  torch::NoGradGuard ng;
  auto want = torch::softmax(plain.net->forward(x).logits, 1);
  auto got = torch::softmax(folded.net->forward(x).logits, 1);
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-5);
  EXPECT_TRUE(torch::equal(got.argmax(1), want.argmax(1)));
  // Probabilities neither uniform nor all saturated: the comparison means something.
  EXPECT_GT((want.amax(1) - want.amin(1)).max().item<double>(), 0.3);
}
#endif

// A folded network is for inference only: it cannot be saved (its
// convolutions' biases have no place in the file) nor trained.
TEST(BatchNormFolding, FoldedNetworksAreNeitherSavedNorTrained) {
  test::TempDir tmp;
  auto cfg = models::preset("fer-tiny");
  auto net = trained_looking_tiny(cfg, 3);
  models::fold_batchnorm(*net);
  try {
    models::save_model(tmp / "folded.pt", cfg, *net);
    ADD_FAILURE() << "a folded network was saved";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("folded"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("folded.pt"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(tmp / "folded.pt"));
  net->train();
  EXPECT_THROW(net->forward(torch::randn({2, 1, 48, 48})), c10::Error);
}
