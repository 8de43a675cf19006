// BatchNorm folding for inference: every eval-mode BatchNorm that directly
// follows a convolution becomes part of that convolution (W' = W s,
// b' = (b - mean) s + beta; models::fold_batchnorm_into_conv, the math the
// ONNX exporter uses too), and the BatchNorm layer becomes the identity.
//
// What it represents: the same function of the input with one pass over each
// feature map less (a per-channel scale and shift that oneDNN's convolution
// now does as its bias). Outputs equal the unfolded network's within float32
// rounding (tests/test-models.cpp: 1e-5 on every preset and the shipped model).
//
// Which pairs: the layouts adcorre builds (Xception and its presets:
// "<name>" conv / separable conv then "<name>_bn"; ResNet-50: "convK" then
// "bnK", "downsample.0" then "downsample.1"), in any prefix (ensemble members
// "members.<i>."). A BatchNorm whose convolution is not found is left as it
// is; other archs (keras_graph) are left unfolded.
//
// Requires: the network in eval mode; it is for inference only from then on
// (a folded BatchNorm throws in training mode, and save_model refuses a
// folded network: its convolutions carry biases that the file layout has no
// place for). Folding twice changes nothing.
#pragma once
#include <torch/nn/module.h>

namespace adcorre::models {

// Folds every foldable pair of `net`; returns how many it folded (0 when
// already folded or when none is foldable).
int fold_batchnorm(torch::nn::Module& net);

// Whether any BatchNorm of `net` has been folded.
bool has_folded_batchnorm(torch::nn::Module& net);

}  // namespace adcorre::models
