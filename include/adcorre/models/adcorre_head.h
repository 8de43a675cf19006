// The Ad-Corre head: k parallel linear layers (feature -> d, no activation),
// each L2-normalised (the k embeddings), concatenated (k*d), dropout in
// training, one linear layer to C logits.
// Modules: "embed" (ModuleList of k Linear), "classifier" (Linear k*d -> C).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace adcorre::models {

struct HeadOutput {
  torch::Tensor logits;      // [B, C]
  torch::Tensor embeddings;  // [k, B, d], each row of unit L2 norm
};

class AdCorreHeadImpl : public torch::nn::Module {
 public:
  AdCorreHeadImpl(int64_t features, int64_t k, int64_t d, int64_t classes, double dropout);
  HeadOutput forward(const torch::Tensor& features);
  torch::nn::ModuleList embed{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear classifier{nullptr};
};
TORCH_MODULE(AdCorreHead);

}  // namespace adcorre::models
