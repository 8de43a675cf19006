#include "adcorre/train/amp.h"

#include <cmath>

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "adcorre/util/error.h"

// LibTorch 2.4 replaced the per-backend autocast functions (set_enabled for
// CUDA, set_cpu_enabled, set_autocast_gpu_dtype, ...) by ones taking the
// device type; the old names are deprecated there and gone later.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define ADCORRE_AUTOCAST_BY_DEVICE_TYPE 1
#endif

namespace adcorre::train {

AmpMode parse_amp(const std::string& name) {
  if (name == "none") return AmpMode::none;
  if (name == "bf16") return AmpMode::bf16;
  if (name == "fp16") return AmpMode::fp16;
  throw Error("train option 'amp' must be none, bf16 or fp16 (got '" + name + "')");
}

std::string amp_name(AmpMode mode) {
  switch (mode) {
    case AmpMode::bf16: return "bf16";
    case AmpMode::fp16: return "fp16";
    default: return "none";
  }
}

void check_amp_device(AmpMode mode, const std::string& device) {
  if (mode == AmpMode::fp16 && device.rfind("cuda", 0) != 0)
    throw Error("train option 'amp' fp16 needs a CUDA device (--device cuda); on the CPU use --amp bf16");
}

namespace {
bool autocast_enabled(bool cuda) {
#ifdef ADCORRE_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}
void set_autocast(bool cuda, bool on) {
#ifdef ADCORRE_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on);
#else
  if (cuda) at::autocast::set_enabled(on);
  else at::autocast::set_cpu_enabled(on);
#endif
}
at::ScalarType autocast_dtype(bool cuda) {
#ifdef ADCORRE_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}
void set_autocast_dtype(bool cuda, at::ScalarType t) {
#ifdef ADCORRE_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, t);
#else
  if (cuda) at::autocast::set_autocast_gpu_dtype(t);
  else at::autocast::set_autocast_cpu_dtype(t);
#endif
}
}  // namespace

AutocastScope::AutocastScope(AmpMode mode, const std::string& device) {
  if (mode == AmpMode::none) return;
  check_amp_device(mode, device);
  cuda_ = device.rfind("cuda", 0) == 0;
  was_enabled_ = autocast_enabled(cuda_);
  previous_dtype_ = static_cast<int8_t>(autocast_dtype(cuda_));
  set_autocast_dtype(cuda_, mode == AmpMode::fp16 ? at::kHalf : at::kBFloat16);
  set_autocast(cuda_, true);
  at::autocast::increment_nesting();
  active_ = true;
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // As torch.autocast's __exit__: the weights' casts are cached while any
  // scope is open (one cast per step, not per use) and dropped at the last.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(cuda_, was_enabled_);
  set_autocast_dtype(cuda_, static_cast<at::ScalarType>(previous_dtype_));
}

GradScaler::GradScaler(bool enabled, GradScalerOptions options)
    : enabled_(enabled), opt_(options), scale_(options.init_scale) {
  check(opt_.init_scale > 0 && opt_.growth_factor > 1 && opt_.backoff_factor > 0 && opt_.backoff_factor < 1 &&
            opt_.growth_interval >= 1,
        "gradient scaler: init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1 and growth_interval >= 1 are required");
}

at::Tensor GradScaler::scale_loss(const at::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }

bool GradScaler::unscale_and_check(const std::vector<at::Tensor>& params) {
  if (!enabled_) return true;
  torch::NoGradGuard ng;
  const double inv = 1.0 / scale_;
  std::vector<at::Tensor> grads;
  for (auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return true;
  if (grads[0].is_cuda()) {
    // CUDA: ATen's fused kernel (one launch for all gradients), as PyTorch's scaler.
    auto opts = torch::TensorOptions().dtype(torch::kFloat).device(grads[0].device());
    auto found_inf = torch::zeros({1}, opts);
    at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, torch::full({1}, inv, opts));
    return found_inf.item<float>() == 0.0f;
  }
  at::Tensor bad;  // count of non-finite gradient values, summed on the device
  for (auto& p : params) {
    auto g = p.grad();
    if (!g.defined()) continue;
    auto n = torch::logical_not(torch::isfinite(g)).sum();
    bad = bad.defined() ? bad + n : n;
    g.mul_(inv);
  }
  return !bad.defined() || bad.item<int64_t>() == 0;
}

void GradScaler::update(bool grads_finite) {
  if (!enabled_) return;
  if (!grads_finite) {
    scale_ *= opt_.backoff_factor;
    good_steps_ = 0;
    return;
  }
  if (++good_steps_ >= opt_.growth_interval) {
    // Never to infinity: a scale that cannot grow further stays.
    if (std::isfinite(scale_ * opt_.growth_factor)) scale_ *= opt_.growth_factor;
    good_steps_ = 0;
  }
}

at::Tensor GradScaler::state() const {
  return torch::tensor({scale_, static_cast<double>(good_steps_)}, torch::kDouble);
}

void GradScaler::load_state(const at::Tensor& state) {
  check(state.defined() && state.numel() == 2, "checkpoint: grad_scaler is not [scale, good_steps]");
  auto s = state.to(torch::kDouble).contiguous();
  const double scale = s[0].item<double>(), good = s[1].item<double>();
  check(std::isfinite(scale) && scale > 0 && good >= 0, "checkpoint: grad_scaler holds a bad scale or step count");
  scale_ = scale;
  good_steps_ = static_cast<int64_t>(good);
}

}  // namespace adcorre::train
