// Builds the optimizer a TrainConfig names. Weight decay is applied to
// weights of dimension >= 2 only (no decay on batch-norm parameters and
// biases), in two parameter groups.
#pragma once
#include <memory>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include "adcorre/train/train_config.h"

namespace adcorre::train {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& cfg, torch::nn::Module& model);
void set_learning_rate(torch::optim::Optimizer& opt, double lr);

}  // namespace adcorre::train
