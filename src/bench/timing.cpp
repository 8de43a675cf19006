#include "adcorre/bench/timing.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <numeric>

#include "adcorre/util/error.h"

namespace adcorre::bench {

nlohmann::json Timing::to_json() const {
  return {{"warmup", warmup}, {"min_iters", min_iters}, {"min_seconds", min_seconds}, {"max_iters", max_iters}};
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double wall_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

Samples measure(const std::function<void()>& work, const Timing& t) {
  for (int i = 0; i < t.warmup; ++i) work();
  Samples s;
  const double start = wall_seconds();
  while (true) {
    const double w0 = wall_seconds(), c0 = process_cpu_seconds();
    work();
    s.cpu_s.push_back(process_cpu_seconds() - c0);
    s.wall_s.push_back(wall_seconds() - w0);
    const int n = static_cast<int>(s.wall_s.size());
    if ((n >= t.min_iters && wall_seconds() - start >= t.min_seconds) || n >= t.max_iters) return s;
  }
}

double median(std::vector<double> v) {
  check(!v.empty(), "bench: median of no samples");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

nlohmann::json summarize(const Samples& s, double items) {
  check(!s.wall_s.empty(), "bench: a measurement with no samples");
  const auto& w = s.wall_s;
  nlohmann::json j;
  j["iters"] = w.size();
  j["median_s"] = median(w);
  j["mean_s"] = std::accumulate(w.begin(), w.end(), 0.0) / static_cast<double>(w.size());
  j["min_s"] = *std::min_element(w.begin(), w.end());
  j["max_s"] = *std::max_element(w.begin(), w.end());
  if (!s.cpu_s.empty()) j["cpu_median_s"] = median(s.cpu_s);
  if (items > 0) {
    j["items"] = items;
    j["items_per_s"] = items / j["median_s"].get<double>();
    if (!s.cpu_s.empty() && j["cpu_median_s"].get<double>() > 0)
      j["items_per_cpu_s"] = items / j["cpu_median_s"].get<double>();
  }
  return j;
}

nlohmann::json summarize_json(const nlohmann::json& times_s, const nlohmann::json& cpu_s, double items) {
  Samples s;
  check(times_s.is_array() && !times_s.empty(), "bench: the Python side returned no times");
  s.wall_s = times_s.get<std::vector<double>>();
  if (cpu_s.is_array()) s.cpu_s = cpu_s.get<std::vector<double>>();
  return summarize(s, items);
}

}  // namespace adcorre::bench
