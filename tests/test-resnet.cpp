// ResNet-50 backbone with the Ad-Corre head: torchvision's parameter count,
// output shapes for several configs, unit-norm embeddings, channels_last and
// save/load give the same outputs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "adcorre/models/fer_model.h"
#include "adcorre/models/model_file.h"
#include "test_util.h"

using namespace adcorre;

namespace {

models::ModelConfig small_resnet(int channels, int size) {
  auto cfg = models::preset("resnet50");
  cfg.width = 0.25;
  cfg.in_channels = channels;
  cfg.mean.assign(channels, 0.5);
  cfg.std.assign(channels, 0.5);
  cfg.input_size = size;
  cfg.k = 3;
  cfg.d = 16;
  return cfg;
}

int64_t backbone_parameters(models::FerModelImpl& net) {
  for (auto& c : net.named_children())
    if (c.key() == "backbone") return models::count_parameters(*c.value());
  return -1;
}

}  // namespace

TEST(ResNet50, PresetMatchesTorchvisionParameterCount) {
  auto cfg = models::preset("resnet50");
  EXPECT_EQ(cfg.arch, "resnet50");
  EXPECT_EQ(cfg.input_size, 224);
  EXPECT_EQ(cfg.in_channels, 3);
  EXPECT_EQ(cfg.k, 7);
  EXPECT_EQ(cfg.d, 256);
  auto net = models::create_model(cfg);
  // torchvision resnet50: 25,557,032 parameters, of which fc holds 2048*1000 + 1000.
  EXPECT_EQ(backbone_parameters(*net), 25557032 - 2049000);
  // Head: 7 x (2048*256 + 256) + (7*256*7 + 7).
  EXPECT_EQ(models::count_parameters(*net) - backbone_parameters(*net), 7 * (2048 * 256 + 256) + 7 * 256 * 7 + 7);
}

TEST(ResNet50, ShapesForSeveralInputsAndUnitEmbeddings) {
  for (auto [channels, size] : {std::pair{1, 48}, std::pair{3, 64}, std::pair{1, 32}}) {
    auto cfg = small_resnet(channels, size);
    auto net = models::create_model(cfg);
    net->eval();
    torch::NoGradGuard ng;
    auto out = net->forward(torch::randn({2, channels, size, size}));
    EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 7})) << channels << " " << size;
    ASSERT_TRUE(out.embeddings.defined());
    EXPECT_EQ(out.embeddings.sizes(), (std::vector<int64_t>{3, 2, 16}));
    EXPECT_LT((out.embeddings.norm(2, 2) - 1).abs().max().item<double>(), 1e-5);
    // width 0.25: layer4 has 128 planes x 4.
    EXPECT_EQ(net->features(torch::randn({2, channels, size, size})).sizes(), (std::vector<int64_t>{2, 512}));
  }
}

TEST(ResNet50, ChannelsLastAndSaveLoadGiveTheSameOutputs) {
  test::TempDir tmp;
  auto cfg = small_resnet(1, 48);
  auto net = models::create_model(cfg);
  net->eval();
  torch::NoGradGuard ng;
  auto x = torch::randn({3, 1, 48, 48});
  auto ref = net->forward(x).logits;
  models::save_model(tmp / "r.pt", cfg, *net);
  auto loaded = models::load_model(tmp / "r.pt");
  EXPECT_EQ(loaded.config.arch, "resnet50");
  loaded.net->eval();
  EXPECT_LT(test::rel_error(loaded.net->forward(x).logits, ref), 1e-5);
  models::to_channels_last(*net);
  EXPECT_LT(test::rel_error(net->forward(x.contiguous(torch::MemoryFormat::ChannelsLast)).logits, ref), 1e-4);
}

TEST(ResNet50, TrainsOneStep) {
  auto cfg = small_resnet(1, 32);
  auto net = models::create_model(cfg);
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.1));
  auto x = torch::randn({4, 1, 32, 32});
  auto y = torch::tensor({0, 1, 2, 3}, torch::kLong);
  auto loss0 = torch::cross_entropy_loss(net->forward(x).logits, y);
  opt.zero_grad();
  loss0.backward();
  for (auto& p : net->parameters()) ASSERT_TRUE(p.grad().defined());
  opt.step();
}
