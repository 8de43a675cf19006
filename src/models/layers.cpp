#include "adcorre/models/layers.h"

#include <limits>

#include <torch/torch.h>

namespace adcorre::models {
namespace F = torch::nn::functional;

std::pair<int64_t, int64_t> tf_same_padding(int64_t size, int64_t kernel, int64_t stride, int64_t dilation) {
  const int64_t eff = (kernel - 1) * dilation + 1;
  const int64_t out = (size + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + eff - size, 0);
  return {total / 2, total - total / 2};
}

Conv2dTFImpl::Conv2dTFImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, const std::string& padding,
                           bool bias, int64_t groups)
    : kernel_(kernel), stride_(stride), same_(padding == "same"), symmetric_(stride == 1 && kernel % 2 == 1) {
  TORCH_CHECK(padding == "same" || padding == "valid", "padding must be same or valid, got ", padding);
  const int64_t pad = (same_ && symmetric_) ? kernel / 2 : 0;
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                                                       .stride(stride).padding(pad).bias(bias).groups(groups)));
}

torch::Tensor Conv2dTFImpl::forward(const torch::Tensor& x) {
  if (same_ && !symmetric_) {
    auto [t, b] = tf_same_padding(x.size(2), kernel_, stride_);
    auto [l, r] = tf_same_padding(x.size(3), kernel_, stride_);
    if (t || b || l || r) return conv->forward(F::pad(x, F::PadFuncOptions({l, r, t, b})));
  }
  return conv->forward(x);
}

SeparableConv2dImpl::SeparableConv2dImpl(int64_t in, int64_t out, int64_t kernel, const std::string& padding,
                                         int64_t stride, bool bias) {
  depthwise = register_module("depthwise", Conv2dTF(in, in, kernel, stride, padding, false, in));
  pointwise = register_module("pointwise", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).bias(bias)));
}

torch::Tensor SeparableConv2dImpl::forward(const torch::Tensor& x) { return pointwise->forward(depthwise->forward(x)); }

torch::Tensor max_pool_tf(const torch::Tensor& x, int64_t kernel, int64_t stride, const std::string& padding) {
  auto y = x;
  if (padding == "same") {
    auto [t, b] = tf_same_padding(x.size(2), kernel, stride);
    auto [l, r] = tf_same_padding(x.size(3), kernel, stride);
    if (t || b || l || r)
      y = F::pad(x, F::PadFuncOptions({l, r, t, b}).value(-std::numeric_limits<double>::infinity()));
  }
  return F::max_pool2d(y, F::MaxPool2dFuncOptions(kernel).stride(stride));
}

torch::Tensor avg_pool_tf(const torch::Tensor& x, int64_t kernel, int64_t stride, const std::string& padding) {
  if (padding != "same") return F::avg_pool2d(x, F::AvgPool2dFuncOptions(kernel).stride(stride));
  // TF 'same' average pooling divides by the number of real (unpadded) pixels.
  auto [t, b] = tf_same_padding(x.size(2), kernel, stride);
  auto [l, r] = tf_same_padding(x.size(3), kernel, stride);
  auto padded = F::pad(x, F::PadFuncOptions({l, r, t, b}));
  auto ones = F::pad(torch::ones({1, 1, x.size(2), x.size(3)}, x.options()), F::PadFuncOptions({l, r, t, b}));
  auto opts = F::AvgPool2dFuncOptions(kernel).stride(stride);
  return F::avg_pool2d(padded, opts) / F::avg_pool2d(ones, opts);
}

torch::nn::BatchNorm2d make_bn(int64_t channels, double eps, double momentum) {
  return torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(channels).eps(eps).momentum(momentum));
}

torch::Tensor l2_normalize(const torch::Tensor& x) {
  return x * (x * x).sum(-1, true).clamp_min(1e-12).rsqrt();
}

}  // namespace adcorre::models
