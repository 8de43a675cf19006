#include "adcorre/models/adcorre_head.h"

#include <torch/torch.h>

#include "adcorre/models/layers.h"

namespace adcorre::models {

AdCorreHeadImpl::AdCorreHeadImpl(int64_t features, int64_t k, int64_t d, int64_t classes, double p) {
  embed = register_module("embed", torch::nn::ModuleList());
  for (int64_t i = 0; i < k; ++i) embed->push_back(torch::nn::Linear(features, d));
  dropout = register_module("dropout", torch::nn::Dropout(p));
  classifier = register_module("classifier", torch::nn::Linear(k * d, classes));
}

HeadOutput AdCorreHeadImpl::forward(const torch::Tensor& f) {
  // One matmul for all k branches: stack their weights [k, d, F].
  std::vector<torch::Tensor> ws, bs;
  for (auto& m : *embed) {
    auto* lin = m->as<torch::nn::LinearImpl>();
    ws.push_back(lin->weight);
    bs.push_back(lin->bias);
  }
  auto w = torch::stack(ws);                                  // [k, d, F]
  auto b = torch::stack(bs).unsqueeze(1);                     // [k, 1, d]
  auto e = l2_normalize(torch::matmul(f.unsqueeze(0), w.transpose(1, 2)) + b);  // [k, B, d]
  auto concat = e.transpose(0, 1).reshape({f.size(0), -1});   // [B, k*d], branch-major like Keras' Concatenate
  return {classifier->forward(dropout->forward(concat)), e};
}

}  // namespace adcorre::models
