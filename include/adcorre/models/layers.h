// Building blocks with Keras/TensorFlow semantics, so imported Keras weights
// give identical outputs:
//  - 'same' padding is TensorFlow's: for stride 2 on an even size the extra
//    row/column goes at the bottom/right (PyTorch's symmetric padding differs);
//  - max pooling pads with -inf;
//  - SeparableConv2D = depthwise 3x3 then pointwise 1x1, no bias.
#pragma once
#include <string>
#include <utility>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

namespace adcorre::models {

// TensorFlow 'same' padding (before, after) for one dimension.
std::pair<int64_t, int64_t> tf_same_padding(int64_t size, int64_t kernel, int64_t stride, int64_t dilation = 1);

// Conv2d with padding "valid" or TensorFlow "same". Registers "conv".
class Conv2dTFImpl : public torch::nn::Module {
 public:
  Conv2dTFImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, const std::string& padding, bool bias,
               int64_t groups = 1);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};

 private:
  int64_t kernel_, stride_;
  bool same_;
  bool symmetric_;  // stride 1 with odd kernel: padding built into the conv
};
TORCH_MODULE(Conv2dTF);

// Keras SeparableConv2D: "depthwise" (k x k, groups = in) then "pointwise" (1x1).
class SeparableConv2dImpl : public torch::nn::Module {
 public:
  SeparableConv2dImpl(int64_t in, int64_t out, int64_t kernel = 3, const std::string& padding = "same",
                      int64_t stride = 1, bool bias = false);
  torch::Tensor forward(const torch::Tensor& x);
  Conv2dTF depthwise{nullptr};
  torch::nn::Conv2d pointwise{nullptr};
};
TORCH_MODULE(SeparableConv2d);

// Max pooling with TensorFlow 'same' (-inf) or 'valid' padding.
torch::Tensor max_pool_tf(const torch::Tensor& x, int64_t kernel, int64_t stride, const std::string& padding);
torch::Tensor avg_pool_tf(const torch::Tensor& x, int64_t kernel, int64_t stride, const std::string& padding);

// BatchNorm2d that can be folded into the convolution before it for
// inference (models::fold_batchnorm). Until folded it is exactly
// torch::nn::BatchNorm2d (same parameters, buffers and names, so model files
// and checkpoints are unchanged). Once folded, its affine transform lives in
// that convolution's weights and bias, its own parameters are set to the
// identity (so a second fold, or the ONNX exporter's, changes nothing) and
// forward returns its input: one pass over the feature map less per layer.
// A folded layer cannot train (forward in training mode throws).
class FoldableBatchNorm2dImpl : public torch::nn::BatchNorm2dImpl {
 public:
  using torch::nn::BatchNorm2dImpl::BatchNorm2dImpl;
  torch::Tensor forward(const torch::Tensor& x);
  bool folded() const { return folded_; }
  // Sets the identity parameters and makes forward the identity.
  void mark_folded();

 private:
  bool folded_ = false;
};
TORCH_MODULE(FoldableBatchNorm2d);

// BatchNorm2d with Keras-style eps and PyTorch-style momentum.
FoldableBatchNorm2d make_bn(int64_t channels, double eps, double momentum);

// A convolution's weight and bias with the eval-mode BatchNorm `bn` that
// follows it folded in, in double precision:
//   W' = W s,  b' = (b - mean) s + beta,  s = gamma / sqrt(var + eps)
// (`bias` undefined: no bias, b = 0). The ONNX exporter and
// models::fold_batchnorm both use this, so the graph and the folded network
// compute the same thing.
struct FoldedConv {
  torch::Tensor weight, bias;  // kDouble
};
FoldedConv fold_batchnorm_into_conv(const torch::Tensor& weight, const torch::Tensor& bias,
                                    const torch::nn::BatchNorm2dImpl& bn);

// Keras' tf.math.l2_normalize along the last dim: x / sqrt(max(sum x^2, 1e-12)).
torch::Tensor l2_normalize(const torch::Tensor& x);

}  // namespace adcorre::models
