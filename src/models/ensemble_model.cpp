#include "adcorre/models/ensemble_model.h"

#include <torch/torch.h>

#include "adcorre/util/error.h"

namespace adcorre::models {

namespace {

class EnsembleFerImpl : public FerModelImpl {
 public:
  explicit EnsembleFerImpl(const std::vector<FerModel>& members) : nets_(members) {
    // A ModuleList so that parameters, buffers, to(), eval() and the model
    // file see every member ("members.0.backbone...").
    list_ = register_module("members", torch::nn::ModuleList());
    for (auto& n : nets_) list_->push_back(n);
  }
  FerOutput forward(const torch::Tensor& x) override {
    torch::Tensor sum;
    for (auto& n : nets_) {
      auto p = torch::softmax(n->forward(x).logits.to(torch::kFloat), 1);
      sum = sum.defined() ? sum + p : p;
    }
    auto mean = sum / static_cast<double>(nets_.size());
    // log of the mean probability: every consumer applies softmax to logits.
    // The floor keeps a class every member rules out finite.
    return {torch::log(mean.clamp_min(1e-30)), torch::Tensor()};
  }
  torch::Tensor features(const torch::Tensor& x) override {
    std::vector<torch::Tensor> parts;
    for (auto& n : nets_) parts.push_back(n->features(x));
    return torch::cat(parts, 1);
  }

 private:
  std::vector<FerModel> nets_;
  torch::nn::ModuleList list_{nullptr};
};

}  // namespace

ModelConfig ensemble_config(const std::vector<ModelConfig>& members) {
  if (members.size() < 2) throw Error("an ensemble needs at least 2 models, got " + std::to_string(members.size()));
  ModelConfig c;
  c.arch = "ensemble";
  c.preset = "";
  const auto& first = members.front();
  c.input_size = first.input_size;
  c.in_channels = first.in_channels;
  c.color_order = first.color_order;
  c.mean = first.mean;
  c.std = first.std;
  c.class_names = first.class_names;
  c.members = members;
  c.validate();
  return c;
}

FerModel make_ensemble(const ModelConfig& config, const std::vector<FerModel>& members) {
  config.validate();
  if (config.arch != "ensemble") throw Error("make_ensemble: config arch is '" + config.arch + "'");
  if (members.size() != config.members.size())
    throw Error("make_ensemble: " + std::to_string(members.size()) + " networks for " +
                std::to_string(config.members.size()) + " member configs");
  for (auto& m : members)
    if (!m) throw Error("make_ensemble: a member network is null");
  return std::make_shared<EnsembleFerImpl>(members);
}

FerModel ensemble_member(const ModelConfig& config, FerModelImpl& net, size_t index) {
  if (config.arch != "ensemble") throw Error("the model is not an ensemble (arch '" + config.arch + "'): it has no members");
  if (index >= config.members.size())
    throw Error("member " + std::to_string(index) + " asked of an ensemble of " + std::to_string(config.members.size()) +
                " members (0.." + std::to_string(config.members.size() - 1) + ")");
  FerModel member = create_model(config.members[index]);
  const std::string prefix = "members." + std::to_string(index) + ".";
  auto params = net.named_parameters(true);
  auto buffers = net.named_buffers(true);
  torch::NoGradGuard no_grad;
  auto copy_all = [&](torch::OrderedDict<std::string, torch::Tensor> into,
                      const torch::OrderedDict<std::string, torch::Tensor>& from) {
    for (auto& item : into) {
      const auto* src = from.find(prefix + item.key());
      if (!src) throw Error("ensemble member " + std::to_string(index) + ": tensor '" + prefix + item.key() + "' is missing");
      item.value().copy_(*src);
    }
  };
  copy_all(member->named_parameters(true), params);
  copy_all(member->named_buffers(true), buffers);
  return member;
}

// The hook create_model() calls for arch "ensemble": fresh (random) members.
FerModel create_ensemble_model(const ModelConfig& cfg) {
  std::vector<FerModel> nets;
  for (const auto& m : cfg.members) nets.push_back(create_model(m));
  return make_ensemble(cfg, nets);
}

}  // namespace adcorre::models
