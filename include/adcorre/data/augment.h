// Training augmentation applied to a whole batch tensor at once (one affine
// warp per sample through grid_sample, flips, brightness/contrast jitter,
// random erasing). It costs ~1% of a training step and runs on any device.
// Seeded: the same generator state gives the same augmented batch.
#pragma once
#include <string>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace adcorre::data {

struct AugmentOptions {
  bool flip = true;
  double max_shift = 0.05;     // fraction of the image size
  double min_scale = 0.85, max_scale = 1.0;  // zoom in (1/scale of the view)
  double max_rotation_deg = 10.0;
  double brightness = 0.0;     // +- additive, in normalised units
  double contrast = 0.0;       // +- multiplicative
  double erase_prob = 0.0;     // random erasing probability per sample
  double erase_max_area = 0.25;
};

// "none", "light", "strong"; throws adcorre::Error for another name.
AugmentOptions augment_preset(const std::string& name);
bool augment_enabled(const AugmentOptions& o);

// x: float [B, C, H, W] (normalised). Returns a new tensor.
at::Tensor augment_batch(const at::Tensor& x, const AugmentOptions& opts, at::Generator& gen);

}  // namespace adcorre::data
