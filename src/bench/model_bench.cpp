// C++ side of the inference, training and loss benchmarks. The Python
// counterparts (bench/python/bench_python.py) do the same work step for step.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "adcorre/data/normalize.h"
#include "adcorre/loss/adcorre_loss.h"
#include "adcorre/models/fer_model.h"
#include "adcorre/models/layers.h"
#include "sections.h"

#if __has_include("adcorre/train/optimizer_factory.h")
#include "adcorre/train/optimizer_factory.h"
#define ADCORRE_BENCH_HAVE_OPTIMIZER_FACTORY 1
#endif

namespace adcorre::bench::detail {
namespace {

// Random 8-bit pixels, normalised as the config says, channels_last.
torch::Tensor model_input(const models::ModelConfig& cfg, int batch, torch::Generator& gen) {
  auto pixels = torch::randint(0, 256, {batch, cfg.in_channels, cfg.input_size, cfg.input_size}, gen,
                               torch::TensorOptions().dtype(torch::kUInt8));
  return data::normalize(pixels, cfg).contiguous(torch::MemoryFormat::ChannelsLast);
}

// The optimizer `adcorre train` uses by default: Adam, lr 1e-3, no weight decay.
std::unique_ptr<torch::optim::Optimizer> default_optimizer(torch::nn::Module& net) {
#ifdef ADCORRE_BENCH_HAVE_OPTIMIZER_FACTORY
  train::TrainConfig tc;
  tc.optimizer = "adam";
  tc.lr = 1e-3;
  tc.weight_decay = 0.0;
  return train::make_optimizer(tc, net);
#else
  // Same groups as train::make_optimizer: decay only on weights of dim >= 2.
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : net.parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(1e-3)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(1e-3)));
  return std::make_unique<torch::optim::Adam>(std::move(groups), torch::optim::AdamOptions(1e-3));
#endif
}

}  // namespace

nlohmann::json cpp_inference(const models::ModelConfig& cfg, int batch, const Timing& t, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto net = models::create_model(cfg);
  models::to_channels_last(*net);
  net->eval();
  auto x = model_input(cfg, batch, gen);
  auto s = measure([&] {
    torch::InferenceMode guard;
    auto out = net->forward(x);
  }, t);
  return summarize(s, batch);
}

nlohmann::json cpp_training(const models::ModelConfig& cfg, int batch, const Timing& t, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto net = models::create_model(cfg);
  models::to_channels_last(*net);
  net->train();
  auto opt = default_optimizer(*net);
  loss::AdCorreOptions lo;
  lo.num_classes = cfg.num_classes();
  loss::AdCorreLoss loss(lo);
  auto x = model_input(cfg, batch, gen);
  auto y = torch::randint(0, cfg.num_classes(), {batch}, gen, torch::kLong);
  auto s = measure([&] {
    auto out = net->forward(x);
    auto terms = loss.forward(out.logits, out.embeddings, y);
    opt->zero_grad();
    terms.total.backward();
    opt->step();
  }, t);
  return summarize(s, batch);
}

nlohmann::json cpp_loss(int B, int k, int d, int C, const Timing& t, bool backward, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto logits = torch::randn({B, C}, gen).requires_grad_(true);
  auto e = models::l2_normalize(torch::randn({k, B, d}, gen)).detach().requires_grad_(true);
  auto y = torch::randint(0, C, {B}, gen, torch::kLong);
  loss::AdCorreOptions lo;
  lo.num_classes = C;
  loss::AdCorreLoss loss(lo);
  auto s = measure([&] {
    if (backward) {
      auto terms = loss.forward(logits, e, y);
      terms.total.backward();
      logits.mutable_grad() = torch::Tensor();
      e.mutable_grad() = torch::Tensor();
    } else {
      torch::NoGradGuard ng;
      auto terms = loss.forward(logits, e, y);
    }
  }, t);
  return summarize(s, 1);
}

}  // namespace adcorre::bench::detail
