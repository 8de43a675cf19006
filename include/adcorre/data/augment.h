// Training augmentation applied to a whole batch tensor at once (one affine
// warp per sample through grid_sample, flips, brightness/contrast jitter,
// random erasing), plus, for the photo preset, per-sample blur and JPEG
// re-encoding (done with OpenCV on a CPU copy: the artefacts of faces that a
// detector found in a real photo). The affine, flip, jitter and erasing parts
// cost ~1% of a training step and run on any device.
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
  // Photo-path variation (a found face is resampled, blurred and JPEG-coded):
  double blur_prob = 0.0;      // probability per sample of a Gaussian blur ...
  double blur_max_sigma = 0.0; // ... with sigma uniform in [0.3, this] pixels (of the model input)
  double jpeg_prob = 0.0;      // probability per sample of a JPEG round trip ...
  int jpeg_min_quality = 90;   // ... at a quality uniform in [this, 95]
};

// "none", "light", "strong", "photo" (strong's jitter and erasing with the
// crop variation a face detector leaves - scale 0.8..1.15, shift +-8 %,
// rotation +-12 degrees - plus blur and JPEG); throws adcorre::Error for
// another name.
AugmentOptions augment_preset(const std::string& name);
bool augment_enabled(const AugmentOptions& o);

// x: float [B, C, H, W] (normalised). Returns a new tensor of the same shape,
// device and memory format. The same generator state gives the same result.
at::Tensor augment_batch(const at::Tensor& x, const AugmentOptions& opts, at::Generator& gen);

}  // namespace adcorre::data
