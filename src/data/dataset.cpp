#include "adcorre/data/dataset.h"

#include "adcorre/data/class_names.h"
#include "adcorre/util/error.h"

namespace adcorre::data {

std::vector<int64_t> Dataset::class_counts() const {
  std::vector<int64_t> c(classes.size(), 0);
  for (auto& s : samples)
    if (s.label >= 0 && s.label < static_cast<int>(classes.size())) c[s.label]++;
  return c;
}

Dataset Dataset::restricted_to(const std::vector<std::string>& names) const {
  Dataset out = *this;
  out.classes = names;
  out.samples.clear();
  auto m = map_classes(classes, names);
  for (auto s : samples) {
    if (s.label < 0 || m[s.label] < 0) continue;
    if (!s.soft.empty()) {  // re-order the soft label to the new classes
      std::vector<float> soft(names.size(), 0.f);
      float sum = 0;
      for (size_t i = 0; i < s.soft.size() && i < m.size(); ++i)
        if (m[i] >= 0) soft[m[i]] += s.soft[i], sum += s.soft[i];
      if (sum > 0)
        for (auto& v : soft) v /= sum;
      s.soft = soft;
    }
    s.label = m[s.label];
    out.samples.push_back(std::move(s));
  }
  return out;
}

}  // namespace adcorre::data
