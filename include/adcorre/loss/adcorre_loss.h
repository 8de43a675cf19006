// The Ad-Corre loss (Fard & Mahoor, IEEE Access 2022), exactly as
// docs/adcorre-loss.md (shared/docs/adcorre-loss.md) defines it.
//
// Inputs (any floating dtype, any device; all three terms are differentiable):
//   logits     [B, C]
//   embeddings [k, B, d]   the k L2-normalised embeddings of each sample
//   labels     [B] int64 in 0..C-1
//   M          [C, C] row-normalised confusion matrix (only when adaptive)
//
// Terms (corr = Pearson correlation between rows, numpy corrcoef with a 1e-12
// epsilon so a constant row correlates 0, never NaN):
//   FD  Feature Discriminator: mean over m,i,j of W_ij |Omega_ij - corr(E[m])_ij|,
//       Omega = +1 same class / -1 otherwise, W_ij = (1-delta_ij)(1 + (1-M_yi,yi)
//       + (1-M_yj,yj)) when adaptive, else 1.
//   MD  Mean Discriminator: for the P classes present in the batch, the class
//       means of each embedding (weights 1 for members, 1e-7 otherwise) are
//       decorrelated: mean over m and the P x P grid of (1-delta)(1+corr).
//       0 when P < 2.
//   ED  Embedding Discriminator: the k embeddings of one sample decorrelated:
//       mean over i and the k x k grid of (1-delta)(1+corr). 0 when k == 1.
//   CE  mean cross-entropy from logits (optionally label smoothing or soft targets).
//   total = lambda_ce CE + lambda_fd FD + lambda_md MD + lambda_ed ED.
//
// Edge cases: B = 1 works (FD uses the diagonal only when not adaptive), a
// single class gives MD = 0, k = 1 gives ED = 0. NaN or Inf in the logits or
// embeddings throws adcorre::Error instead of returning a NaN loss.
// All computation is batched tensor code: no per-sample or per-class loops.
#pragma once
#include <functional>
#include <memory>
#include <optional>

#include <ATen/core/Tensor.h>

#include "adcorre/loss/confusion_window.h"

namespace adcorre::loss {

struct AdCorreOptions {
  int num_classes = 7;
  double lambda_ce = -1.0;  // < 0 means 50 / C, the released code's weighting
  double lambda_fd = 1.0;
  double lambda_md = 1.0;
  double lambda_ed = 1.0;
  bool adaptive = true;
  int window = 1000;        // confusion window length N
  double label_smoothing = 0.0;

  double ce_weight() const { return lambda_ce < 0 ? 50.0 / num_classes : lambda_ce; }
  // True when only CE contributes (the `--loss ce` ablation): FD/MD/ED are skipped.
  bool ce_only() const { return lambda_fd == 0 && lambda_md == 0 && lambda_ed == 0; }
};

struct AdCorreTerms {
  at::Tensor ce, fd, md, ed, total;  // 0-dim tensors, differentiable
};

// Pearson correlation between the rows of X [..., n, d] -> [..., n, n].
at::Tensor corr_rows(const at::Tensor& x, double eps = 1e-12);

at::Tensor fd_term(const at::Tensor& embeddings, const at::Tensor& labels,
                   const std::optional<at::Tensor>& confusion /* nullopt: not adaptive */);
at::Tensor md_term(const at::Tensor& embeddings, const at::Tensor& labels);
at::Tensor ed_term(const at::Tensor& embeddings);

// The whole loss for a given confusion matrix M (ignored when !opts.adaptive).
// soft_targets [B, C] (rows sum to 1), when defined, replace the hard-label CE.
AdCorreTerms adcorre_loss(const at::Tensor& logits, const at::Tensor& embeddings,
                          const at::Tensor& labels, const at::Tensor& confusion,
                          const AdCorreOptions& opts,
                          const at::Tensor& soft_targets = at::Tensor());

// Throws adcorre::Error naming `what` when t holds NaN or Inf.
void check_finite(const at::Tensor& t, const char* what);

// The stateful loss used in training: owns the confusion window, records the
// batch's predictions (argmax of logits) before computing M, as the paper does.
class AdCorreLoss {
 public:
  explicit AdCorreLoss(AdCorreOptions opts);
  AdCorreTerms forward(const at::Tensor& logits, const at::Tensor& embeddings,
                       const at::Tensor& labels, const at::Tensor& soft_targets = at::Tensor());
  // Distributed training installs a hook that turns local counts into global
  // counts (all-reduce); default: identity.
  using CountsReducer = std::function<at::Tensor(const at::Tensor&)>;
  void set_counts_reducer(CountsReducer reducer) { reducer_ = std::move(reducer); }

  const AdCorreOptions& options() const { return opts_; }
  ConfusionWindow& window() { return window_; }
  const ConfusionWindow& window() const { return window_; }

 private:
  AdCorreOptions opts_;
  ConfusionWindow window_;
  CountsReducer reducer_;
};

}  // namespace adcorre::loss
