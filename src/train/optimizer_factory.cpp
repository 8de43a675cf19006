#include "adcorre/train/optimizer_factory.h"

#include <torch/torch.h>

#include "adcorre/util/error.h"

namespace adcorre::train {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& c, torch::nn::Module& model) {
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : model.parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  using torch::optim::OptimizerParamGroup;
  if (c.optimizer == "adam") {
    // Adam's weight_decay is L2 added to the gradient (the paper's optimiser; wd 0 by default).
    std::vector<OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(c.lr).weight_decay(c.weight_decay)));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(c.lr).weight_decay(0)));
    return std::make_unique<torch::optim::Adam>(std::move(groups), torch::optim::AdamOptions(c.lr));
  }
  if (c.optimizer == "adamw") {
    std::vector<OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(c.lr).weight_decay(c.weight_decay)));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(c.lr).weight_decay(0)));
    return std::make_unique<torch::optim::AdamW>(std::move(groups), torch::optim::AdamWOptions(c.lr));
  }
  if (c.optimizer == "sgd") {
    std::vector<OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(c.lr).momentum(c.momentum).nesterov(true).weight_decay(c.weight_decay)));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(c.lr).momentum(c.momentum).nesterov(true).weight_decay(0)));
    return std::make_unique<torch::optim::SGD>(std::move(groups), torch::optim::SGDOptions(c.lr));
  }
  throw Error("unknown optimizer '" + c.optimizer + "' (known: adam, adamw, sgd)");
}

void set_learning_rate(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
}

}  // namespace adcorre::train
