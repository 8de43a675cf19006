#include "adcorre/eval/metrics.h"

#include <cstdio>
#include <sstream>

#include "adcorre/util/error.h"

namespace adcorre::eval {

Metrics compute_metrics(const std::vector<std::string>& classes, const std::vector<int64_t>& truth,
                        const std::vector<int64_t>& predicted) {
  check(truth.size() == predicted.size(), "metrics: truth and predictions differ in length");
  const size_t C = classes.size();
  Metrics m;
  m.classes = classes;
  m.counts.assign(C, std::vector<int64_t>(C, 0));
  int64_t correct = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    check(truth[i] >= 0 && truth[i] < static_cast<int64_t>(C) && predicted[i] >= 0 &&
              predicted[i] < static_cast<int64_t>(C),
          "metrics: class index out of range");
    m.counts[truth[i]][predicted[i]]++;
    correct += truth[i] == predicted[i];
  }
  m.n = static_cast<int64_t>(truth.size());
  m.accuracy = m.n ? static_cast<double>(correct) / m.n : 0.0;
  double recall_sum = 0;
  int with_support = 0;
  for (size_t c = 0; c < C; ++c) {
    ClassMetrics cm;
    cm.name = classes[c];
    int64_t predicted_c = 0;
    for (size_t t = 0; t < C; ++t) {
      cm.support += m.counts[c][t];
      predicted_c += m.counts[t][c];
    }
    const double tp = static_cast<double>(m.counts[c][c]);
    cm.precision = predicted_c ? tp / predicted_c : 0.0;
    cm.recall = cm.support ? tp / cm.support : 0.0;
    cm.f1 = (cm.precision + cm.recall) > 0 ? 2 * cm.precision * cm.recall / (cm.precision + cm.recall) : 0.0;
    if (cm.support) {
      recall_sum += cm.recall;
      with_support++;
    }
    m.per_class.push_back(cm);
  }
  m.mean_class_accuracy = with_support ? recall_sum / with_support : 0.0;
  return m;
}

std::vector<std::vector<double>> Metrics::confusion() const {
  std::vector<std::vector<double>> out(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) {
    int64_t row = 0;
    for (auto v : counts[i]) row += v;
    for (auto v : counts[i]) out[i].push_back(row ? static_cast<double>(v) / row : 0.0);
  }
  return out;
}

nlohmann::json Metrics::to_json() const {
  nlohmann::json pc = nlohmann::json::object();
  for (auto& c : per_class)
    pc[c.name] = {{"precision", c.precision}, {"recall", c.recall}, {"f1", c.f1}, {"support", c.support}};
  return {{"accuracy", accuracy}, {"mean_class_accuracy", mean_class_accuracy}, {"per_class", pc},
          {"confusion", confusion()}, {"confusion_counts", counts}, {"classes", classes}, {"n", n}};
}

std::string Metrics::table() const {
  std::ostringstream ss;
  char buf[256];
  std::snprintf(buf, sizeof buf, "samples %lld  accuracy %.4f  mean class accuracy %.4f\n\n", static_cast<long long>(n),
                accuracy, mean_class_accuracy);
  ss << buf;
  std::snprintf(buf, sizeof buf, "%-10s %9s %9s %9s %8s\n", "class", "precision", "recall", "f1", "support");
  ss << buf;
  for (auto& c : per_class) {
    std::snprintf(buf, sizeof buf, "%-10s %9.4f %9.4f %9.4f %8lld\n", c.name.c_str(), c.precision, c.recall, c.f1,
                  static_cast<long long>(c.support));
    ss << buf;
  }
  ss << "\nconfusion (rows: truth, columns: prediction, row-normalised)\n";
  std::snprintf(buf, sizeof buf, "%-10s", "");
  ss << buf;
  for (auto& c : classes) {
    std::snprintf(buf, sizeof buf, " %8.8s", c.c_str());
    ss << buf;
  }
  ss << "\n";
  auto conf = confusion();
  for (size_t i = 0; i < conf.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%-10s", classes[i].c_str());
    ss << buf;
    for (double v : conf[i]) {
      std::snprintf(buf, sizeof buf, " %8.3f", v);
      ss << buf;
    }
    ss << "\n";
  }
  return ss.str();
}

}  // namespace adcorre::eval
