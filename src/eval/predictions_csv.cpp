#include "adcorre/eval/predictions_csv.h"

#include <cstdio>

#include <torch/torch.h>

#include "adcorre/util/csv_field.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"

namespace adcorre::eval {

std::string predictions_csv(const data::ImageCache& cache, const at::Tensor& probs,
                            const std::vector<std::string>& class_names) {
  const int64_t n = cache.size(), c = static_cast<int64_t>(class_names.size());
  check(probs.defined() && probs.dim() == 2 && probs.size(0) == n && probs.size(1) == c,
        "predictions: probabilities of shape [" + std::to_string(n) + ", " + std::to_string(c) + "] expected");
  check(static_cast<int64_t>(cache.keys.size()) == n, "predictions: the cache has no key for every image");
  auto p = probs.to(torch::kFloat).contiguous();
  auto labels = cache.labels.contiguous();
  const float* pd = p.data_ptr<float>();
  const int64_t* ld = labels.data_ptr<int64_t>();
  std::string out = "key,label,predicted";
  for (const auto& name : class_names) out += "," + csv_field("p_" + name);
  out += "\n";
  char num[32];
  for (int64_t i = 0; i < n; ++i) {
    const float* row = pd + i * c;
    int64_t best = 0;
    for (int64_t k = 1; k < c; ++k)
      if (row[k] > row[best]) best = k;  // the first of equals, as argmax
    check(ld[i] >= 0 && ld[i] < c, "predictions: label " + std::to_string(ld[i]) + " of " + cache.keys[i] +
                                       " is outside the model's " + std::to_string(c) + " classes");
    out += csv_field(cache.keys[i]) + "," + csv_field(class_names[ld[i]]) + "," + csv_field(class_names[best]);
    for (int64_t k = 0; k < c; ++k) {
      std::snprintf(num, sizeof num, ",%.6f", row[k]);
      out += num;
    }
    out += "\n";
  }
  return out;
}

void write_predictions_csv(const std::string& path, const data::ImageCache& cache, const at::Tensor& probs,
                           const std::vector<std::string>& class_names) {
  fs::write_file_atomic(path, predictions_csv(cache, probs, class_names));  // errors name the path
}

}  // namespace adcorre::eval
