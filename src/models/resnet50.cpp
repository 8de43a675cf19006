// ResNet-50 (He et al. 2016), torchvision's layout (v1.5: the stride sits on
// the 3x3 conv of a bottleneck), with the Ad-Corre head: the released code's
// other backbone option. Module names follow torchvision (backbone.conv1,
// backbone.bn1, backbone.layer1.0.conv1, ..., backbone.layer4.2.downsample.1)
// so a converted torchvision state dict maps by name with --init.
// ModelConfig: in_channels, width (channel multiplier, rounded to multiples of
// 8), bn_eps/bn_momentum, k, d, dropout; any input size >= 32 (global pooling).
// Width 1, 3 channels: 23,508,032 backbone parameters (torchvision's 25,557,032
// less its 2,049,000-parameter fc).
#include <torch/torch.h>

#include "adcorre/models/adcorre_head.h"
#include "adcorre/models/fer_model.h"
#include "adcorre/models/layers.h"
#include "adcorre/models/xception.h"
#include "adcorre/util/error.h"

namespace adcorre::models {

namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

// 1x1 reduce, 3x3 (stride), 1x1 expand (x4), + identity or 1x1 projection.
class BottleneckImpl : public torch::nn::Module {
 public:
  BottleneckImpl(int64_t in, int64_t planes, int64_t stride, const ModelConfig& cfg) {
    const int64_t out = planes * 4;
    conv1 = register_module("conv1", conv(in, planes, 1, 1));
    bn1 = register_module("bn1", make_bn(planes, cfg.bn_eps, cfg.bn_momentum));
    conv2 = register_module("conv2", conv(planes, planes, 3, stride));
    bn2 = register_module("bn2", make_bn(planes, cfg.bn_eps, cfg.bn_momentum));
    conv3 = register_module("conv3", conv(planes, out, 1, 1));
    bn3 = register_module("bn3", make_bn(out, cfg.bn_eps, cfg.bn_momentum));
    if (stride != 1 || in != out)
      downsample = register_module(
          "downsample", torch::nn::Sequential(conv(in, out, 1, stride), make_bn(out, cfg.bn_eps, cfg.bn_momentum)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(bn1->forward(conv1->forward(x)));
    y = torch::relu(bn2->forward(conv2->forward(y)));
    y = bn3->forward(conv3->forward(y));
    return torch::relu(y + (downsample ? downsample->forward(x) : x));
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  FoldableBatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

class ResNet50Impl : public torch::nn::Module {
 public:
  explicit ResNet50Impl(const ModelConfig& cfg) {
    const int64_t stem = scaled_channels(64, cfg.width);
    conv1 = register_module("conv1", conv(cfg.in_channels, stem, 7, 2));
    bn1 = register_module("bn1", make_bn(stem, cfg.bn_eps, cfg.bn_momentum));
    const int blocks[4] = {3, 4, 6, 3};
    int64_t in = stem;
    for (int l = 0; l < 4; ++l) {
      const int64_t planes = scaled_channels(64 << l, cfg.width);
      torch::nn::Sequential layer;
      for (int b = 0; b < blocks[l]; ++b) {
        layer->push_back(Bottleneck(in, planes, b == 0 && l > 0 ? 2 : 1, cfg));
        in = planes * 4;
      }
      layers.push_back(register_module("layer" + std::to_string(l + 1), layer));
    }
    feature_dim = in;
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(bn1->forward(conv1->forward(x)));
    y = torch::max_pool2d(y, 3, 2, 1);
    for (auto& layer : layers) y = layer->forward(y);
    return y.mean({2, 3});  // global average pooling
  }
  torch::nn::Conv2d conv1{nullptr};
  FoldableBatchNorm2d bn1{nullptr};
  std::vector<torch::nn::Sequential> layers;
  int64_t feature_dim = 0;
};
TORCH_MODULE(ResNet50);

// ResNet-50 backbone + Ad-Corre head: modules "backbone" and "head", as the Xception model.
class ResNet50FerImpl : public FerModelImpl {
 public:
  explicit ResNet50FerImpl(const ModelConfig& cfg) {
    backbone = register_module("backbone", ResNet50(cfg));
    head = register_module("head", AdCorreHead(backbone->feature_dim, cfg.k, cfg.d, cfg.num_classes(), cfg.dropout));
    init_conv_and_linear_weights(*this);
  }
  FerOutput forward(const torch::Tensor& x) override {
    auto h = head->forward(backbone->forward(x));
    return {h.logits, h.embeddings};
  }
  torch::Tensor features(const torch::Tensor& x) override { return backbone->forward(x); }

  ResNet50 backbone{nullptr};
  AdCorreHead head{nullptr};
};

}  // namespace

FerModel create_resnet50_model(const ModelConfig& cfg) { return std::make_shared<ResNet50FerImpl>(cfg); }

}  // namespace adcorre::models
