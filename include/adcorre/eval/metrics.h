// Classification metrics, the paper's included: overall accuracy, mean class
// accuracy (the paper's "average accuracy"), per-class precision, recall and
// F1, and the row-normalised confusion matrix. Pure C++, no torch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace adcorre::eval {

struct ClassMetrics {
  std::string name;
  int64_t support = 0;  // true samples of the class
  double precision = 0, recall = 0, f1 = 0;
};

struct Metrics {
  std::vector<std::string> classes;
  std::vector<std::vector<int64_t>> counts;  // [truth][prediction]
  int64_t n = 0;
  double accuracy = 0;
  double mean_class_accuracy = 0;  // mean recall over classes with support > 0
  std::vector<ClassMetrics> per_class;

  // Row-normalised confusion (rows with no sample stay 0).
  std::vector<std::vector<double>> confusion() const;
  nlohmann::json to_json() const;
  std::string table() const;  // readable table for stdout
};

// Builds metrics from (truth, prediction) index pairs over `classes`.
Metrics compute_metrics(const std::vector<std::string>& classes, const std::vector<int64_t>& truth,
                        const std::vector<int64_t>& predicted);

}  // namespace adcorre::eval
