// Embedding maps: a model's embeddings of a dataset, and their 2-D maps by PCA
// or exact t-SNE (van der Maaten & Hinton 2008), like the paper's embedding
// figure. Exact t-SNE is O(N^2) in time and memory: fine for N <= ~3000
// (`adcorre embed --max`).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "adcorre/data/loader.h"
#include "adcorre/models/fer_model.h"

namespace adcorre::eval {

// Rows [N, D] of one vector per image, in cache order: the k L2-normalised
// embeddings concatenated branch-major ([N, k*d]), or with `backbone_features`
// the backbone's pooled features [N, F]. Eval mode, no grad.
// Throws adcorre::Error when the model has no embeddings (no Ad-Corre head).
at::Tensor compute_embeddings(models::FerModelImpl& net, const models::ModelConfig& cfg, const data::ImageCache& cache,
                              bool backbone_features = false, int batch = 256, const std::string& device = "cpu");

// Principal components of rows x [N, D] (centred): returns the projection
// [N, dims]; `explained` (when given) receives the variance along each
// component [dims], in decreasing order. Requires 1 <= dims <= min(N, D).
at::Tensor pca(const at::Tensor& x, int64_t dims, at::Tensor* explained = nullptr);

struct TsneOptions {
  double perplexity = 30;
  int iterations = 1000;
  int pca_dims = 50;           // reduce to this many dims first (when D is larger)
  double learning_rate = 0;    // 0: max(N / early_exaggeration / 4, 50), as sklearn's "auto"
  double early_exaggeration = 12;
  int exaggeration_iterations = 250;
};

// Exact t-SNE of rows x [N, D] to 2-D: returns [N, 2] (double). Deterministic:
// the start is the PCA projection, not a random one.
// Requires N >= 4 and perplexity < N - 1 (lowered to (N - 1) / 3 otherwise).
at::Tensor tsne(const at::Tensor& x, const TsneOptions& options = {});

// Writes "key,label,v0,v1,..." rows (label = class name) to a CSV file,
// atomically. Requires rows.size(0) == keys.size() == labels.size().
void write_embeddings_csv(const std::string& path, const at::Tensor& rows, const std::vector<std::string>& keys,
                          const std::vector<int64_t>& labels, const std::vector<std::string>& classes);

// Fraction of points whose nearest other point (Euclidean) has the same label:
// how well a map (or an embedding) keeps the classes apart.
double nearest_neighbour_agreement(const at::Tensor& x, const std::vector<int64_t>& labels);

}  // namespace adcorre::eval
