#include "adcorre/models/ensemble_model.h"

#include <exception>
#include <thread>

#include <torch/torch.h>

#include "adcorre/util/error.h"
#include "adcorre/util/runtime.h"

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
    std::vector<torch::Tensor> probs(nets_.size());
    auto run = [&](size_t i) { probs[i] = torch::softmax(nets_[i]->forward(x).logits.to(torch::kFloat), 1); };
    const std::vector<size_t> beside = members_for_a_second_thread(x);
    if (beside.empty()) {
      for (size_t i = 0; i < nets_.size(); ++i) run(i);
    } else {
      // A small batch runs on one thread (runtime::SmallWorkOnOneThread: the
      // layers are too small to split), but the members are independent: the
      // second thread the caller set aside takes some of them whole. Each
      // member's computation is the same as on one thread, so are the outputs.
      const bool inference = c10::InferenceMode::is_enabled(), grad = torch::GradMode::is_enabled();
      std::exception_ptr failed;
      std::vector<bool> mine(nets_.size(), true);
      for (size_t i : beside) mine[i] = false;
      std::thread helper([&] {
        try {
          c10::InferenceMode inference_mode(inference);
          torch::AutoGradMode grad_mode(grad);
          runtime::SmallWorkOnOneThread one_thread(0);
          for (size_t i : beside) run(i);
        } catch (...) {
          failed = std::current_exception();
        }
      });
      try {
        for (size_t i = 0; i < nets_.size(); ++i)
          if (mine[i]) run(i);
      } catch (...) {
        helper.join();
        throw;
      }
      helper.join();
      if (failed) std::rethrow_exception(failed);
    }
    torch::Tensor sum;
    for (auto& p : probs) sum = sum.defined() ? sum + p : p;  // in member order, as always
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
  // Members to run on a second thread: only for a CPU batch the caller runs
  // on one thread while it has been given more (SmallWorkOnOneThread), split
  // so both threads get about the same number of parameters. Empty: all here.
  std::vector<size_t> members_for_a_second_thread(const torch::Tensor& x) const {
    if (!x.is_cpu() || nets_.size() < 2 || runtime::SmallWorkOnOneThread::threads_set_aside() < 2) return {};
    return split_;
  }

  std::vector<size_t> split_by_parameters() const {
    std::vector<std::pair<int64_t, size_t>> cost;
    for (size_t i = 0; i < nets_.size(); ++i) {
      int64_t n = 0;
      for (const auto& p : nets_[i]->parameters()) n += p.numel();
      cost.push_back({n, i});
    }
    std::stable_sort(cost.begin(), cost.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    int64_t here = 0, there = 0;
    std::vector<size_t> beside;
    for (const auto& [n, i] : cost) {
      if (there < here) {
        beside.push_back(i);
        there += n;
      } else {
        here += n;
      }
    }
    return beside;
  }

  std::vector<FerModel> nets_;
  std::vector<size_t> split_ = split_by_parameters();  // after nets_
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
