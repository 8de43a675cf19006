#include "adcorre/models/xception.h"

#include <cmath>
#include <functional>

#include <torch/torch.h>

#include "adcorre/models/layers.h"

namespace adcorre::models {

int64_t scaled_channels(int64_t c, double width) {
  if (width == 1.0) return c;
  return std::max<int64_t>(8, static_cast<int64_t>(std::lround(c * width / 8.0)) * 8);
}

// The forward pass is a list of steps over registered submodules.
struct XceptionImpl::Impl {
  std::vector<std::function<torch::Tensor(const torch::Tensor&)>> steps;
};

XceptionImpl::XceptionImpl(const ModelConfig& cfg) : impl_(std::make_shared<Impl>()) {
  auto& steps = impl_->steps;
  const double eps = cfg.bn_eps, mom = cfg.bn_momentum;
  auto ch = [&](int64_t c) { return scaled_channels(c, cfg.width); };
  auto relu = [](const torch::Tensor& x) { return torch::relu(x); };

  // block1: the stem.
  const int64_t c1 = ch(cfg.stem_conv1), c2 = ch(cfg.stem_conv2);
  auto conv1 = register_module("block1_conv1", Conv2dTF(cfg.in_channels, c1, 3, cfg.stem_stride1, cfg.stem_padding, false));
  auto bn1 = register_module("block1_conv1_bn", make_bn(c1, eps, mom));
  auto conv2 = register_module("block1_conv2", Conv2dTF(c1, c2, 3, cfg.stem_stride2, cfg.stem_padding, false));
  auto bn2 = register_module("block1_conv2_bn", make_bn(c2, eps, mom));
  steps.push_back([=](const torch::Tensor& x) mutable {
    auto y = torch::relu(bn1->forward(conv1->forward(x)));
    return torch::relu(bn2->forward(conv2->forward(y)));
  });

  int block = 2;
  int64_t c_in = c2;
  // A residual down-sampling block: [ReLU] sep(c_mid) BN ReLU sep(c_out) BN maxpool + shortcut.
  auto down_block = [&](int64_t c_mid, int64_t c_out, bool pre_relu) {
    const std::string p = "block" + std::to_string(block);
    auto s1 = register_module(p + "_sepconv1", SeparableConv2d(c_in, c_mid));
    auto b1 = register_module(p + "_sepconv1_bn", make_bn(c_mid, eps, mom));
    auto s2 = register_module(p + "_sepconv2", SeparableConv2d(c_mid, c_out));
    auto b2 = register_module(p + "_sepconv2_bn", make_bn(c_out, eps, mom));
    auto sc = register_module(p + "_shortcut", torch::nn::Conv2d(torch::nn::Conv2dOptions(c_in, c_out, 1).stride(2).bias(false)));
    auto sb = register_module(p + "_shortcut_bn", make_bn(c_out, eps, mom));
    steps.push_back([=](const torch::Tensor& x) mutable {
      auto r = sb->forward(sc->forward(x));
      auto y = pre_relu ? torch::relu(x) : x;
      y = torch::relu(b1->forward(s1->forward(y)));
      y = b2->forward(s2->forward(y));
      return max_pool_tf(y, 3, 2, "same") + r;
    });
    c_in = c_out;
    block++;
  };

  bool first = true;
  for (int c : cfg.entry_blocks) {
    down_block(ch(c), ch(c), /*pre_relu=*/!first);
    first = false;
  }
  for (int m = 0; m < cfg.middle_blocks; ++m) {
    const std::string p = "block" + std::to_string(block);
    std::vector<SeparableConv2d> convs;
    std::vector<FoldableBatchNorm2d> bns;
    for (int i = 1; i <= 3; ++i) {
      convs.push_back(register_module(p + "_sepconv" + std::to_string(i), SeparableConv2d(c_in, c_in)));
      bns.push_back(register_module(p + "_sepconv" + std::to_string(i) + "_bn", make_bn(c_in, eps, mom)));
    }
    steps.push_back([=](const torch::Tensor& x) mutable {
      auto y = x;
      for (size_t i = 0; i < convs.size(); ++i) y = bns[i]->forward(convs[i]->forward(torch::relu(y)));
      return y + x;
    });
    block++;
  }
  if (cfg.exit_block > 0) down_block(c_in, ch(cfg.exit_block), /*pre_relu=*/true);
  if (!cfg.exit_convs.empty()) {
    const std::string p = "block" + std::to_string(block);
    int i = 1;
    for (int c : cfg.exit_convs) {
      const int64_t co = ch(c);
      auto s = register_module(p + "_sepconv" + std::to_string(i), SeparableConv2d(c_in, co));
      auto b = register_module(p + "_sepconv" + std::to_string(i) + "_bn", make_bn(co, eps, mom));
      steps.push_back([=](const torch::Tensor& x) mutable { return torch::relu(b->forward(s->forward(x))); });
      c_in = co;
      ++i;
    }
  }
  (void)relu;
  feature_dim_ = c_in;
}

torch::Tensor XceptionImpl::forward(const torch::Tensor& x) {
  auto y = x;
  for (auto& step : impl_->steps) {
    y = step(y);
    // A 1-channel input is ambiguous between layouts, so the stem's output can
    // fall back to NCHW; keep the whole net in channels_last on CPU, where
    // oneDNN's depthwise convolutions are 3-4x faster.
    if (y.is_cpu()) y = y.contiguous(torch::MemoryFormat::ChannelsLast);
  }
  return y.mean({2, 3});  // global average pooling
}

}  // namespace adcorre::models
