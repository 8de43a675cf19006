#include "adcorre/data/augment.h"

#include <algorithm>
#include <cmath>
#include <vector>

#ifdef ADCORRE_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

#include <torch/torch.h>

#include "adcorre/util/error.h"

namespace adcorre::data {
namespace F = torch::nn::functional;

AugmentOptions augment_preset(const std::string& name) {
  AugmentOptions o;
  if (name == "none") {
    o.flip = false;
    o.max_shift = 0;
    o.min_scale = o.max_scale = 1.0;
    o.max_rotation_deg = 0;
  } else if (name == "light") {
    o.max_shift = 0.05;
    o.min_scale = 0.9;
    o.max_rotation_deg = 10;
  } else if (name == "strong") {
    o.max_shift = 0.05;  // +-2.4 px at 48x48
    o.min_scale = 0.85;
    o.max_rotation_deg = 10;
    o.brightness = 0.2;
    o.contrast = 0.2;
    o.erase_prob = 0.25;
    o.erase_max_area = 0.25;
  } else if (name == "photo") {
    // What is left after the crop policy: detector boxes wander by ~+-8 % and
    // +-15 % in size around the training framing (docs/predict.md), faces tilt,
    // and small faces in photos are soft and JPEG-coded.
    o.max_shift = 0.08;
    o.min_scale = 0.8;
    o.max_scale = 1.15;  // > 1: zoomed out, the border replicated
    o.max_rotation_deg = 12;
    o.brightness = 0.2;
    o.contrast = 0.2;
    o.erase_prob = 0.2;
    o.erase_max_area = 0.2;
    o.blur_prob = 0.3;
    o.blur_max_sigma = 1.2;
    o.jpeg_prob = 0.3;
    o.jpeg_min_quality = 30;
  } else {
    throw Error("unknown augmentation preset '" + name + "' (known: none, light, strong, photo)");
  }
  return o;
}

bool augment_enabled(const AugmentOptions& o) {
  return o.flip || o.max_shift > 0 || o.min_scale < 1 || o.max_scale != 1 || o.max_rotation_deg > 0 ||
         o.brightness > 0 || o.contrast > 0 || o.erase_prob > 0 || o.blur_prob > 0 || o.jpeg_prob > 0;
}

namespace {

// Blur and JPEG round trips, per sample, with OpenCV on a CPU float copy.
// JPEG needs 8-bit pixels: each sample is mapped linearly onto 0..255 by its
// own range and back, so only the coding changes it.
#ifndef ADCORRE_HAVE_OPENCV
at::Tensor photo_degrade(const at::Tensor&, const AugmentOptions&, const at::Tensor&) {
  throw Error("augmentation: blur and JPEG round trips (the photo preset) need OpenCV, which this build "
              "(ADCORRE_MINIMAL) lacks; use --augment strong");
}
#else
at::Tensor photo_degrade(const at::Tensor& x, const AugmentOptions& o, const at::Tensor& draws) {
  auto cpu = x.to(torch::kCPU).contiguous().clone();  // NCHW, contiguous
  const int64_t B = cpu.size(0), C = cpu.size(1), H = cpu.size(2), W = cpu.size(3);
  auto d = draws.accessor<float, 2>();  // [B, 4]: blur?, sigma, jpeg?, quality
  for (int64_t b = 0; b < B; ++b) {
    const bool blur = o.blur_prob > 0 && d[b][0] < o.blur_prob;
    const bool jpeg = o.jpeg_prob > 0 && d[b][2] < o.jpeg_prob;
    if (!blur && !jpeg) continue;
    for (int64_t c = 0; c < C; ++c) {
      cv::Mat plane(static_cast<int>(H), static_cast<int>(W), CV_32F, cpu[b][c].data_ptr<float>());
      if (blur) {
        const double sigma = 0.3 + (std::max(0.3, o.blur_max_sigma) - 0.3) * d[b][1];
        cv::GaussianBlur(plane, plane, cv::Size(0, 0), sigma, sigma, cv::BORDER_REPLICATE);
      }
      if (jpeg) {
        double lo = 0, hi = 0;
        cv::minMaxLoc(plane, &lo, &hi);
        if (hi - lo < 1e-6) continue;
        cv::Mat u8, back;
        plane.convertTo(u8, CV_8U, 255.0 / (hi - lo), -lo * 255.0 / (hi - lo));
        const int quality = o.jpeg_min_quality + static_cast<int>(std::floor(d[b][3] * (95 - o.jpeg_min_quality + 1)));
        std::vector<uchar> bytes;
        cv::imencode(".jpg", u8, bytes, {cv::IMWRITE_JPEG_QUALITY, std::min(95, quality)});
        cv::imdecode(bytes, cv::IMREAD_GRAYSCALE).convertTo(back, CV_32F, (hi - lo) / 255.0, lo);
        back.copyTo(plane);
      }
    }
  }
  return cpu.to(x.device());
}
#endif

}  // namespace

at::Tensor augment_batch(const at::Tensor& x_in, const AugmentOptions& o, at::Generator& gen) {
  if (!augment_enabled(o)) return x_in;
  const int64_t B = x_in.size(0), H = x_in.size(2), W = x_in.size(3);
  auto fopt = torch::TensorOptions().dtype(torch::kFloat);  // random numbers on CPU: same stream on any device
  auto u = [&](int64_t n) { return torch::rand({n}, gen, fopt); };
  auto x = x_in.to(torch::kFloat);

  const bool geometric = o.flip || o.max_shift > 0 || o.min_scale < 1 || o.max_scale != 1 || o.max_rotation_deg > 0;
  if (geometric) {
    auto flip = o.flip ? torch::where(u(B) < 0.5, torch::full({B}, -1.f), torch::ones({B})) : torch::ones({B});
    auto scale = o.min_scale + (o.max_scale - o.min_scale) * u(B);
    auto angle = (u(B) * 2 - 1) * (o.max_rotation_deg * M_PI / 180.0);
    auto tx = (u(B) * 2 - 1) * (2 * o.max_shift);
    auto ty = (u(B) * 2 - 1) * (2 * o.max_shift);
    auto c = torch::cos(angle) * scale, s = torch::sin(angle) * scale;
    // input = [[c*flip, -s], [s*flip, c]] @ output + t  (normalised coordinates)
    auto theta = torch::stack({torch::stack({c * flip, -s, tx}, 1), torch::stack({s * flip, c, ty}, 1)}, 1);  // [B,2,3]
    theta = theta.to(x.device());
    auto grid = F::affine_grid(theta, {B, x.size(1), H, W}, /*align_corners=*/false);
    x = F::grid_sample(x, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kBorder).align_corners(false));
  }
  if (o.brightness > 0 || o.contrast > 0) {
    auto b = ((u(B) * 2 - 1) * o.brightness).view({B, 1, 1, 1}).to(x.device());
    auto k = (1 + (u(B) * 2 - 1) * o.contrast).view({B, 1, 1, 1}).to(x.device());
    auto mean = x.mean({1, 2, 3}, true);
    x = (x - mean) * k + mean + b;
  }
  if (o.erase_prob > 0) {
    auto apply = (u(B) < o.erase_prob).to(torch::kFloat);
    auto area = (0.02 + (o.erase_max_area - 0.02) * u(B)) * (H * W);
    auto logr = std::log(0.3) + (std::log(3.3) - std::log(0.3)) * u(B);
    auto ratio = torch::exp(logr);
    auto eh = torch::sqrt(area * ratio).clamp_max(H), ew = torch::sqrt(area / ratio).clamp_max(W);
    auto y0 = u(B) * (H - eh), x0 = u(B) * (W - ew);
    auto ys = torch::arange(H, fopt).view({1, H, 1}), xs = torch::arange(W, fopt).view({1, 1, W});
    auto inside = (ys >= y0.view({B, 1, 1})) & (ys < (y0 + eh).view({B, 1, 1})) & (xs >= x0.view({B, 1, 1})) &
                  (xs < (x0 + ew).view({B, 1, 1}));
    auto mask = (inside.to(torch::kFloat) * apply.view({B, 1, 1})).unsqueeze(1).to(x.device());  // [B,1,H,W]
    x = x * (1 - mask);  // erased to 0 = the mean gray after normalisation
  }
  if (o.blur_prob > 0 || o.jpeg_prob > 0) x = photo_degrade(x, o, torch::rand({B, 4}, gen, fopt));
  return x.contiguous(x_in.suggest_memory_format());
}

}  // namespace adcorre::data
