// The model's input from model-size 8-bit pixels: the one step between the
// decoded cache (loader, packed data) and the network that needs no image
// library, so the dependency-light build (ADCORRE_MINIMAL) has it too.
#pragma once
#include <ATen/core/Tensor.h>

#include "adcorre/models/model_config.h"

namespace adcorre::data {

// uint8 [N, C, H, W] (or float in 0..255) -> normalised float [N, C, H, W]
// using the config's mean/std, on the pixels' device, channels-last.
at::Tensor normalize(const at::Tensor& pixels_u8, const models::ModelConfig& cfg);

}  // namespace adcorre::data
