#include "adcorre/models/layers.h"

#include <limits>

#include <torch/torch.h>

// LibTorch 1.13 defines this member in libtorch without exporting it: a class
// derived from BatchNorm2dImpl (FoldableBatchNorm2dImpl) needs it for its
// construction vtable, so it is defined here, printing what LibTorch's does.
namespace torch::nn {
template <>
void BatchNormImplBase<2, BatchNorm2dImpl>::pretty_print(std::ostream& stream) const {
  stream << "torch::nn::BatchNorm2d(" << options.num_features() << ", eps=" << options.eps()
         << ", momentum=" << options.momentum().value_or(0.1) << ", affine=" << options.affine()
         << ", track_running_stats=" << options.track_running_stats() << ")";
}
}  // namespace torch::nn

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

FoldableBatchNorm2d make_bn(int64_t channels, double eps, double momentum) {
  return FoldableBatchNorm2d(torch::nn::BatchNorm2dOptions(channels).eps(eps).momentum(momentum));
}

torch::Tensor FoldableBatchNorm2dImpl::forward(const torch::Tensor& x) {
  if (!folded_) return torch::nn::BatchNorm2dImpl::forward(x);
  TORCH_CHECK(!is_training(), "a BatchNorm folded for inference cannot train (load the model without folding)");
  return x;
}

void FoldableBatchNorm2dImpl::mark_folded() {
  torch::NoGradGuard ng;
  // gamma = 1, beta = 0, mean = 0, var + eps = 1: the identity, so folding
  // this layer again (or exporting it to ONNX) leaves the convolution as it is.
  if (weight.defined()) weight.fill_(1);
  if (bias.defined()) bias.zero_();
  if (running_mean.defined()) running_mean.zero_();
  if (running_var.defined()) running_var.fill_(1.0 - options.eps());
  folded_ = true;
}

FoldedConv fold_batchnorm_into_conv(const torch::Tensor& weight, const torch::Tensor& bias,
                                    const torch::nn::BatchNorm2dImpl& bn) {
  torch::NoGradGuard ng;
  auto w = weight.detach().to(torch::kCPU, torch::kDouble);
  auto var = bn.running_var.detach().to(torch::kCPU, torch::kDouble);
  auto mean = bn.running_mean.detach().to(torch::kCPU, torch::kDouble);
  auto scale = (var + bn.options.eps()).rsqrt();
  if (bn.weight.defined()) scale = scale * bn.weight.detach().to(torch::kCPU, torch::kDouble);
  auto b = bias.defined() ? bias.detach().to(torch::kCPU, torch::kDouble) : torch::zeros_like(mean);
  b = (b - mean) * scale;
  if (bn.bias.defined()) b = b + bn.bias.detach().to(torch::kCPU, torch::kDouble);
  return {w * scale.view({-1, 1, 1, 1}), b};
}

torch::Tensor l2_normalize(const torch::Tensor& x) {
  return x * (x * x).sum(-1, true).clamp_min(1e-12).rsqrt();
}

}  // namespace adcorre::models
