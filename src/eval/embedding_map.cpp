#include "adcorre/eval/embedding_map.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include <torch/torch.h>

#include "adcorre/data/preprocess.h"
#include "adcorre/util/csv_field.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"

namespace adcorre::eval {

at::Tensor compute_embeddings(models::FerModelImpl& net, const models::ModelConfig& cfg, const data::ImageCache& cache,
                              bool backbone_features, int batch, const std::string& device) {
  check(cache.size() > 0, "embed: no images");
  check(batch > 0, "embed: batch must be > 0");
  torch::NoGradGuard ng;
  const bool was_training = net.is_training();
  net.eval();
  std::vector<at::Tensor> rows;
  for (int64_t i = 0; i < cache.size(); i += batch) {
    auto x = data::normalize(cache.pixels.slice(0, i, std::min<int64_t>(i + batch, cache.size())), cfg).to(device);
    at::Tensor r;
    if (backbone_features) {
      r = net.features(x);
    } else {
      auto out = net.forward(x);
      if (!out.embeddings.defined()) {
        net.train(was_training);
        throw Error("embed: arch '" + cfg.arch + "' has no Ad-Corre embeddings; use --features");
      }
      // [k, B, d] -> [B, k*d], branch-major as the head concatenates them.
      r = out.embeddings.transpose(0, 1).reshape({x.size(0), -1});
    }
    rows.push_back(r.to(torch::kCPU, torch::kFloat).contiguous());
  }
  net.train(was_training);
  return torch::cat(rows);
}

at::Tensor pca(const at::Tensor& x_in, int64_t dims, at::Tensor* explained) {
  check(x_in.dim() == 2, "pca: needs a 2-D tensor [N, D]");
  const int64_t n = x_in.size(0), d = x_in.size(1);
  check(dims >= 1 && dims <= std::min(n, d), "pca: dims " + std::to_string(dims) + " must be in [1, min(N, D)] = [1, " +
                                                 std::to_string(std::min(n, d)) + "]");
  auto x = x_in.to(torch::kDouble);
  auto xc = x - x.mean(0, /*keepdim=*/true);
  auto [u, s, vh] = at::linalg_svd(xc, /*full_matrices=*/false);
  auto comps = vh.slice(0, 0, dims);  // [dims, D]
  // Deterministic signs (sklearn's svd_flip): the largest |loading| of each component is positive.
  auto idx = comps.abs().argmax(1, /*keepdim=*/true);
  comps = comps * comps.gather(1, idx).sign();
  if (explained) *explained = s.slice(0, 0, dims).pow(2) / std::max<int64_t>(n - 1, 1);
  return torch::matmul(xc, comps.t());
}

namespace {

at::Tensor squared_distances(const at::Tensor& x) {
  auto sq = x.pow(2).sum(1, true);
  return (sq + sq.t() - 2 * torch::matmul(x, x.t())).clamp_min(0);
}

// Conditional probabilities p(j|i) whose entropy is log(perplexity) for every
// row, by bisection on the precision beta (vectorised over all rows).
at::Tensor conditional_p(const at::Tensor& d2, double perplexity) {
  const int64_t n = d2.size(0);
  const double target = std::log(perplexity);
  auto eye = torch::eye(n, d2.options()).to(torch::kBool);
  // Subtracting each row's nearest distance leaves p(j|i) unchanged and keeps exp() in range.
  auto d = d2.masked_fill(eye, std::numeric_limits<double>::infinity());
  d = d - std::get<0>(d.min(1, true));
  auto beta = torch::ones({n, 1}, d2.options());
  auto lo = torch::zeros({n, 1}, d2.options());
  auto hi = torch::full({n, 1}, std::numeric_limits<double>::infinity(), d2.options());
  at::Tensor p;
  for (int it = 0; it < 100; ++it) {
    p = torch::exp(-d * beta);  // diagonal: exp(-inf) = 0
    auto sum = p.sum(1, true).clamp_min(1e-300);
    auto dp = (d.masked_fill(eye, 0) * p).sum(1, true);
    auto h = torch::log(sum) + beta * dp / sum;
    auto too_flat = h > target;  // entropy too high: sharpen (raise beta)
    lo = torch::where(too_flat, beta, lo);
    hi = torch::where(too_flat, hi, beta);
    beta = torch::where(torch::isinf(hi), beta * 2, (lo + hi) / 2);
    if ((h - target).abs().max().item<double>() < 1e-5) break;
  }
  return p / p.sum(1, true).clamp_min(1e-300);
}

}  // namespace

at::Tensor tsne(const at::Tensor& x_in, const TsneOptions& o) {
  check(x_in.dim() == 2, "tsne: needs a 2-D tensor [N, D]");
  const int64_t n = x_in.size(0);
  check(n >= 4, "tsne: needs at least 4 points");
  check(o.iterations > 0 && o.perplexity > 0, "tsne: iterations and perplexity must be > 0");
  auto x = x_in.to(torch::kDouble);
  if (o.pca_dims > 0 && x.size(1) > o.pca_dims && n > o.pca_dims) x = pca(x, o.pca_dims);
  const double perplexity = std::min(o.perplexity, (n - 1) / 3.0);
  auto p = conditional_p(squared_distances(x), perplexity);
  p = ((p + p.t()) / (2.0 * n)).clamp_min(1e-12).to(torch::kFloat);

  // PCA start scaled to a tiny spread (sklearn's init="pca"): deterministic
  // and keeps the global layout better than a random start.
  auto y = pca(x, 2);
  y = (y / y.select(1, 0).std().clamp_min(1e-12) * 1e-4).to(torch::kFloat);
  const double lr = o.learning_rate > 0 ? o.learning_rate : std::max(n / o.early_exaggeration / 4.0, 50.0);
  auto update = torch::zeros_like(y), gains = torch::ones_like(y);
  auto not_eye = 1 - torch::eye(n, p.options());
  for (int it = 0; it < o.iterations; ++it) {
    const bool early = it < o.exaggeration_iterations;
    const double exaggeration = early ? o.early_exaggeration : 1.0, momentum = early ? 0.5 : 0.8;
    auto num = not_eye / (1 + squared_distances(y));  // Student-t kernel, zero diagonal
    auto q = (num / num.sum()).clamp_min(1e-12);
    auto w = (exaggeration * p - q) * num;
    auto grad = 4 * (w.sum(1, true) * y - torch::matmul(w, y));
    // Delta-bar-delta gains (Jacobs 1988), as in the reference implementation.
    auto same_sign = (grad > 0) == (update > 0);
    gains = torch::where(same_sign, gains * 0.8, gains + 0.2).clamp_min(0.01);
    update = momentum * update - lr * gains * grad;
    y = y + update;
    y = y - y.mean(0, true);
  }
  return y.to(torch::kDouble);
}

void write_embeddings_csv(const std::string& path, const at::Tensor& rows_in, const std::vector<std::string>& keys,
                          const std::vector<int64_t>& labels, const std::vector<std::string>& classes) {
  check(rows_in.dim() == 2, "embeddings CSV: rows must be [N, D]");
  const int64_t n = rows_in.size(0), d = rows_in.size(1);
  check(static_cast<int64_t>(keys.size()) == n && static_cast<int64_t>(labels.size()) == n,
        "embeddings CSV: " + std::to_string(n) + " rows but " + std::to_string(keys.size()) + " keys and " +
            std::to_string(labels.size()) + " labels");
  auto rows = rows_in.to(torch::kFloat).contiguous();
  const float* v = rows.data_ptr<float>();
  std::string out = "key,label";
  for (int64_t j = 0; j < d; ++j) out += ",v" + std::to_string(j);
  out += "\n";
  char buf[32];
  for (int64_t i = 0; i < n; ++i) {
    check(labels[i] >= 0 && labels[i] < static_cast<int64_t>(classes.size()),
          "embeddings CSV: label " + std::to_string(labels[i]) + " of row " + std::to_string(i) + " is out of range");
    out += csv_field(keys[i]) + "," + csv_field(classes[labels[i]]);
    for (int64_t j = 0; j < d; ++j) {
      std::snprintf(buf, sizeof buf, ",%.6g", v[i * d + j]);
      out += buf;
    }
    out += "\n";
  }
  fs::write_file_atomic(path, out);
}

double nearest_neighbour_agreement(const at::Tensor& x_in, const std::vector<int64_t>& labels) {
  check(x_in.dim() == 2 && x_in.size(0) == static_cast<int64_t>(labels.size()) && x_in.size(0) >= 2,
        "nearest neighbour agreement: needs [N, D] rows (N >= 2) and N labels");
  auto x = x_in.to(torch::kDouble);
  auto d2 = squared_distances(x).fill_diagonal_(std::numeric_limits<double>::infinity());
  auto nn = d2.argmin(1).contiguous();
  const int64_t* idx = nn.data_ptr<int64_t>();
  int64_t same = 0;
  for (size_t i = 0; i < labels.size(); ++i) same += labels[i] == labels[idx[i]];
  return static_cast<double>(same) / labels.size();
}

}  // namespace adcorre::eval
