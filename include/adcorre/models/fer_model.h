// FerModel: the interface every classifier in adcorre implements, whatever its
// backbone (adcorre's Xception + Ad-Corre head, ResNet-50, an imported Keras
// graph). Input: float images [B, C, H, W] normalised as its ModelConfig says.
// Output: logits [B, num_classes] and, when the model has an Ad-Corre head,
// the k L2-normalised embeddings [k, B, d] (undefined tensor otherwise).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "adcorre/models/model_config.h"

namespace adcorre::models {

struct FerOutput {
  torch::Tensor logits;
  torch::Tensor embeddings;  // [k, B, d] or undefined
};

class FerModelImpl : public torch::nn::Module {
 public:
  using torch::nn::Module::Module;
  virtual FerOutput forward(const torch::Tensor& x) = 0;
  // The backbone's pooled features [B, F] (for `embed` and analysis).
  virtual torch::Tensor features(const torch::Tensor& x) = 0;
};
using FerModel = std::shared_ptr<FerModelImpl>;

// Builds the network a config describes (random initial weights).
FerModel create_model(const ModelConfig& config);

// Converts every 4-D parameter and buffer to channels_last (oneDNN's fast
// depthwise path on CPU). Module::to(MemoryFormat) does not exist in C++.
void to_channels_last(torch::nn::Module& module);

// The from-scratch initialisation every backbone shares, so that they start
// alike: convolutions He-normal (fan-out, ReLU gain), linear layers
// Glorot-uniform with zero bias; other modules keep their defaults. Draws
// from torch's global generator in module order (the run seed fixes it).
void init_conv_and_linear_weights(torch::nn::Module& module);

// Counts: trainable parameters, and "Keras-style" = parameters + BN running
// mean/var (what Keras' count_params reports).
int64_t count_parameters(torch::nn::Module& module);
int64_t count_keras_style(torch::nn::Module& module);

// A multi-line summary of the architecture and its counts.
std::string summary(const ModelConfig& config, FerModelImpl& model, int batch = 1);

}  // namespace adcorre::models
