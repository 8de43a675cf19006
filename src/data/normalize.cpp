#include "adcorre/data/normalize.h"

#include <torch/torch.h>

namespace adcorre::data {

at::Tensor normalize(const at::Tensor& pixels, const models::ModelConfig& cfg) {
  auto x = pixels.to(torch::kFloat).div(255.0);
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(x.device());
  auto mean = torch::tensor(std::vector<float>(cfg.mean.begin(), cfg.mean.end()), opts).view({1, -1, 1, 1});
  auto std = torch::tensor(std::vector<float>(cfg.std.begin(), cfg.std.end()), opts).view({1, -1, 1, 1});
  return ((x - mean) / std).contiguous(torch::MemoryFormat::ChannelsLast);
}

}  // namespace adcorre::data
