// Builds the optimizer a TrainConfig names. Weight decay is applied to
// weights of dimension >= 2 only (no decay on batch-norm parameters and
// biases), in two parameter groups.
#pragma once
#include <memory>
#include <vector>

#include <torch/serialize/archive.h>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include "adcorre/train/train_config.h"

namespace adcorre::train {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& cfg, torch::nn::Module& model);
void set_learning_rate(torch::optim::Optimizer& opt, double lr);

// The per-parameter state (Adam/AdamW moments and step, SGD momentum) saved
// by the position of each parameter in `params`, so a resumed run continues
// with exactly the same state. (LibTorch's Optimizer::save/load keys the state
// by tensor address and did not restore it exactly here.)
void save_optimizer_state(torch::serialize::OutputArchive& archive, torch::optim::Optimizer& opt,
                          const std::vector<torch::Tensor>& params);
void load_optimizer_state(torch::serialize::InputArchive& archive, torch::optim::Optimizer& opt,
                          const std::vector<torch::Tensor>& params);

}  // namespace adcorre::train
