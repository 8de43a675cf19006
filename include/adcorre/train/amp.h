// Mixed-precision training (`train --amp none|bf16|fp16`).
//
// AutocastScope turns LibTorch's autocast on for the model's forward pass:
// matrix products and convolutions run in bfloat16 or float16, reductions and
// normalisation stay in float32. CUDA autocasts to bf16 or fp16; the CPU only
// to bf16 (fp16 on the CPU is refused: its CPU kernels are few and slow and
// LibTorch 1.13's CPU autocast knows bf16 only). The loss is not inside the
// scope: the trainer casts the logits and embeddings to float32 first, since
// the Ad-Corre terms (correlations and cosine distances between embeddings)
// lose too much in 16 bits.
//
// GradScaler is the dynamic loss scaling fp16 needs (bf16 has float32's
// range and needs none): the loss is multiplied by `scale` before backward so
// small gradients do not flush to zero; unscale() divides the gradients back
// (before clipping) and records whether any is Inf/NaN; a step with
// Inf/NaN gradients is skipped and the scale multiplied by backoff_factor;
// after growth_interval good steps in a row it is multiplied by
// growth_factor. The same rules as PyTorch's torch.amp.GradScaler.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace adcorre::train {

enum class AmpMode { none, bf16, fp16 };

// "none", "bf16", "fp16"; anything else is an adcorre::Error naming --amp.
AmpMode parse_amp(const std::string& name);
std::string amp_name(AmpMode mode);
// Throws adcorre::Error when `mode` cannot run on `device` ("cpu", "cuda[:N]"):
// fp16 on the CPU.
void check_amp_device(AmpMode mode, const std::string& device);

// Autocast on for `device`'s type while it lives (nothing for AmpMode::none);
// the previous autocast state is restored and the cast cache cleared on exit.
class AutocastScope {
 public:
  AutocastScope(AmpMode mode, const std::string& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false, cuda_ = false, was_enabled_ = false;
  int8_t previous_dtype_ = 0;  // at::ScalarType, kept small to keep ATen's headers out of here
};

struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16, PyTorch's default
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class GradScaler {
 public:
  // A disabled scaler (bf16, fp32) leaves losses and gradients as they are
  // and never skips a step.
  explicit GradScaler(bool enabled, GradScalerOptions options = {});
  bool enabled() const { return enabled_; }
  double scale() const { return scale_; }
  int64_t good_steps() const { return good_steps_; }

  // loss * scale (the loss itself when disabled). No host sync.
  at::Tensor scale_loss(const at::Tensor& loss) const;
  // Divides the defined gradients of `params` by the scale in place and
  // returns whether all of them are finite. One host sync (the decision has
  // to reach the host to skip the optimiser step). True when disabled.
  bool unscale_and_check(const std::vector<at::Tensor>& params);
  // After the step (or its skipping): back off when the gradients were not
  // finite, grow after growth_interval finite steps in a row.
  void update(bool grads_finite);

  // [scale, good_steps] as float64, for checkpoints; load_state refuses any
  // other shape (adcorre::Error).
  at::Tensor state() const;
  void load_state(const at::Tensor& state);

 private:
  bool enabled_;
  GradScalerOptions opt_;
  double scale_;
  int64_t good_steps_ = 0;
};

}  // namespace adcorre::train
