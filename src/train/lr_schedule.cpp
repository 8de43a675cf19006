#include "adcorre/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace adcorre::train {

double lr_at(const TrainConfig& c, int64_t step, int64_t total, int64_t per_epoch) {
  total = std::max<int64_t>(total, 1);
  const double t = static_cast<double>(step) / static_cast<double>(total);
  const int64_t warm = static_cast<int64_t>(c.warmup * total);
  if (c.schedule == "onecycle") {
    // Linear warm-up from lr/25 to lr, then cosine down to lr/1e4 (PyTorch OneCycleLR shape).
    const int64_t up = std::max<int64_t>(warm, 1);
    if (step < up) return c.lr / 25.0 + (c.lr - c.lr / 25.0) * static_cast<double>(step) / up;
    const double p = static_cast<double>(step - up) / std::max<int64_t>(total - up, 1);
    const double lo = c.lr / 1e4;
    return lo + (c.lr - lo) * 0.5 * (1 + std::cos(M_PI * std::min(p, 1.0)));
  }
  double base = c.lr;
  if (c.schedule == "step") {
    base = c.lr * std::pow(c.step_gamma, static_cast<double>(step / std::max<int64_t>(per_epoch, 1) / std::max(c.step_epochs, 1)));
  } else if (c.schedule == "cosine") {
    const double p = warm > 0 ? static_cast<double>(std::max<int64_t>(step - warm, 0)) / std::max<int64_t>(total - warm, 1) : t;
    base = c.lr * 0.5 * (1 + std::cos(M_PI * std::min(p, 1.0)));
  } else if (c.schedule == "inverse") {
    base = c.lr / (1.0 + c.decay * static_cast<double>(step));
  }
  if (c.schedule != "onecycle" && step < warm) base *= static_cast<double>(step + 1) / warm;
  return base;
}

}  // namespace adcorre::train
