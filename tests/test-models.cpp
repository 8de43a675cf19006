// Models: shapes, unit-norm embeddings, Keras parameter count of the paper's
// Xception, model-file round trip and refusal of corrupt files, channels_last.
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "adcorre/models/fer_model.h"
#include "adcorre/models/layers.h"
#include "adcorre/models/model_file.h"
#include "adcorre/util/error.h"
#include "test_util.h"

using namespace adcorre;

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
  torch::manual_seed(1);
  auto cfg = models::preset("fer-tiny");
  cfg.provenance = {{"note", "test"}};
  auto net = models::create_model(cfg);
  // Make BN statistics non-trivial.
  net->train();
  for (int i = 0; i < 3; ++i) net->forward(torch::randn({8, 1, 48, 48}));
  net->eval();
  auto x = torch::randn({4, 1, 48, 48});
  torch::Tensor want;
  {
    torch::NoGradGuard ng;
    want = net->forward(x).logits;
  }
  models::save_model(tmp / "m.pt", cfg, *net);
  auto loaded = models::load_model(tmp / "m.pt");
  torch::NoGradGuard ng;
  auto got = loaded.net->forward(x.contiguous(torch::MemoryFormat::ChannelsLast)).logits;
  EXPECT_LT((got - want).abs().max().item<float>(), 1e-5);
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
