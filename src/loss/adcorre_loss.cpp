#include "adcorre/loss/adcorre_loss.h"

#include <torch/torch.h>

#include "adcorre/util/error.h"

namespace adcorre::loss {
namespace F = torch::nn::functional;

void check_finite(const at::Tensor& t, const char* what) {
  if (!torch::isfinite(t).all().item<bool>())
    throw Error(std::string("Ad-Corre loss: ") + what + " contain NaN or Inf (diverged training? try a lower learning rate)");
}

at::Tensor corr_rows(const at::Tensor& x, double eps) {
  auto xc = x - x.mean(-1, /*keepdim=*/true);
  auto gram = torch::matmul(xc, xc.transpose(-1, -2));    // [..., n, n]
  auto sq = (xc * xc).sum(-1) + eps;                      // |Xc_i|^2 + eps
  auto inv = sq.rsqrt();
  return gram * inv.unsqueeze(-1) * inv.unsqueeze(-2);
}

at::Tensor fd_term(const at::Tensor& e, const at::Tensor& labels, const std::optional<at::Tensor>& confusion) {
  const int64_t B = e.size(1);
  auto phi = corr_rows(e);                                       // [k, B, B]
  auto same = labels.unsqueeze(0) == labels.unsqueeze(1);        // [B, B]
  auto omega = same.to(e.scalar_type()) * 2 - 1;
  auto diff = (omega.unsqueeze(0) - phi).abs();
  if (!confusion) return diff.mean();
  // W_ij = (1 - delta_ij)(1 + (1 - M_yi,yi) + (1 - M_yj,yj))
  auto miss = 1 - confusion->to(e.device(), e.scalar_type()).diagonal().index_select(0, labels);  // [B]
  auto off = 1 - torch::eye(B, e.options());
  auto w = off * (1 + miss.unsqueeze(0) + miss.unsqueeze(1));
  return (w.unsqueeze(0) * diff).mean();
}

at::Tensor md_term(const at::Tensor& e, const at::Tensor& labels) {
  const int64_t C = labels.max().item<int64_t>() + 1;
  auto present = torch::bincount(labels, {}, C).nonzero().squeeze(1);   // [P]
  const int64_t P = present.size(0);
  if (P < 2) return (e.sum() * 0);  // keeps the graph (and dtype/device) alive
  // w_ci = 1 if y_i == c else 1e-7, for the present classes only.
  auto member = labels.unsqueeze(0) == present.unsqueeze(1);            // [P, B]
  auto w = torch::where(member, torch::ones({1}, e.options()), torch::full({1}, 1e-7, e.options()));
  auto mu = torch::matmul(w.unsqueeze(0), e) / w.sum(1, true).unsqueeze(0);  // [k, P, d]
  auto r = corr_rows(mu);                                                // [k, P, P]
  auto off = 1 - torch::eye(P, e.options());
  return (off * (1 + r)).mean();
}

at::Tensor ed_term(const at::Tensor& e) {
  const int64_t k = e.size(0);
  if (k < 2) return (e.sum() * 0);
  auto s = corr_rows(e.transpose(0, 1));                                 // [B, k, k]
  auto off = 1 - torch::eye(k, e.options());
  return (off * (1 + s)).mean();
}

AdCorreTerms adcorre_loss(const at::Tensor& logits, const at::Tensor& embeddings, const at::Tensor& labels,
                          const at::Tensor& confusion, const AdCorreOptions& opts, const at::Tensor& soft_targets) {
  check(logits.dim() == 2, "Ad-Corre loss: logits must be [B, C]");
  check(labels.dim() == 1 && labels.size(0) == logits.size(0), "Ad-Corre loss: labels must be [B]");
  check_finite(logits, "logits");
  AdCorreTerms t;
  if (soft_targets.defined()) {
    t.ce = -(soft_targets.to(logits.scalar_type()) * F::log_softmax(logits, 1)).sum(1).mean();
  } else {
    t.ce = F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().label_smoothing(opts.label_smoothing));
  }
  auto zero = logits.sum() * 0;
  if (opts.ce_only() || !embeddings.defined()) {
    t.fd = t.md = t.ed = zero;
  } else {
    check(embeddings.dim() == 3 && embeddings.size(1) == logits.size(0),
          "Ad-Corre loss: embeddings must be [k, B, d] with the logits' B");
    check_finite(embeddings, "embeddings");
    auto e = embeddings.to(logits.scalar_type());
    std::optional<at::Tensor> m;
    if (opts.adaptive) {
      check(confusion.defined() && confusion.size(0) == logits.size(1),
            "Ad-Corre loss: adaptive weights need a C x C confusion matrix");
      m = confusion;
    }
    t.fd = opts.lambda_fd != 0 ? fd_term(e, labels, m) : zero;
    t.md = opts.lambda_md != 0 ? md_term(e, labels) : zero;
    t.ed = opts.lambda_ed != 0 ? ed_term(e) : zero;
  }
  t.total = opts.ce_weight() * t.ce + opts.lambda_fd * t.fd + opts.lambda_md * t.md + opts.lambda_ed * t.ed;
  return t;
}

AdCorreLoss::AdCorreLoss(AdCorreOptions opts) : opts_(opts), window_(opts.num_classes, opts.window) {}

AdCorreTerms AdCorreLoss::forward(const at::Tensor& logits, const at::Tensor& embeddings, const at::Tensor& labels,
                                  const at::Tensor& soft_targets) {
  check_finite(logits, "logits");
  // The window includes the current batch's predictions (same forward pass).
  window_.record(labels, logits.detach().argmax(1));
  at::Tensor m;
  if (opts_.adaptive && !opts_.ce_only()) {
    auto counts = window_.counts();
    if (reducer_) counts = reducer_(counts);
    m = ConfusionWindow::matrix_from_counts(counts);
  }
  return adcorre_loss(logits, embeddings, labels, m, opts_, soft_targets);
}

}  // namespace adcorre::loss
