// Xception (Chollet 2017) exactly as Keras' Xception(include_top=False), and
// scaled variants of the same design, all driven by ModelConfig:
//
//   block1  stem: conv 3x3 (stem_conv1, stride stem_stride1) BN ReLU,
//                 conv 3x3 (stem_conv2, stride stem_stride2) BN ReLU
//   block2.. entry: per channel count c in entry_blocks, a residual block
//                 [ReLU] sepconv c BN ReLU sepconv c BN maxpool3/2
//                 + shortcut conv1x1/2 c BN (no ReLU before block2, as Keras)
//   middle: middle_blocks x (3 x [ReLU sepconv BN]) + identity
//   exit:   optional residual block (ReLU sepconv c_in BN ReLU sepconv
//           exit_block BN maxpool3/2 + shortcut), then per c in exit_convs:
//           sepconv c BN ReLU; global average pooling.
//
// Module names follow Keras' layer names (block1_conv1, block1_conv1_bn,
// block2_sepconv1, ..., block14_sepconv2_bn; shortcuts blockN_shortcut and
// blockN_shortcut_bn) so imported Keras weights map by name.
// Paper preset: 20,861,480 parameters with BN running statistics (Keras' count).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "adcorre/models/model_config.h"

namespace adcorre::models {

// Channel count after the width multiplier: rounded to a multiple of 8, >= 8.
int64_t scaled_channels(int64_t c, double width);

class XceptionImpl : public torch::nn::Module {
 public:
  explicit XceptionImpl(const ModelConfig& cfg);
  // Pooled features [B, feature_dim].
  torch::Tensor forward(const torch::Tensor& x);
  int64_t feature_dim() const { return feature_dim_; }

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
  int64_t feature_dim_ = 0;
};
TORCH_MODULE(Xception);

}  // namespace adcorre::models
