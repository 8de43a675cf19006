// Timing for `adcorre bench`: repeated calls of one piece of work, measured
// in wall time and in process CPU time.
//
// Why CPU time too: this project's machines are small and shared (2 cores, a
// training run and compiles beside the benchmark). With --threads 1 the CPU
// time of an iteration is the work done, whatever else runs on the machine,
// while wall time also counts the time spent waiting for a core. Both are
// recorded; neither is hidden.
//
// Policy (shared with bench/python/bench_python.py so both sides are measured
// alike): `warmup` untimed calls, then timed calls until at least `min_iters`
// calls AND `min_seconds` of wall time, or `max_iters` calls.
#pragma once
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

namespace adcorre::bench {

struct Timing {
  int warmup = 1;
  int min_iters = 3;
  double min_seconds = 0.0;
  int max_iters = 1000000;
  nlohmann::json to_json() const;
};

// Per-iteration times in seconds; cpu_s may be empty (not measured).
struct Samples {
  std::vector<double> wall_s, cpu_s;
};

Samples measure(const std::function<void()>& work, const Timing& timing);

// Process CPU time (all threads) in seconds.
double process_cpu_seconds();
double wall_seconds();

// A measurement as JSON: iters, median_s, mean_s, min_s, max_s, cpu_median_s
// (when measured), and, when items > 0, items, items_per_s (items / median)
// and items_per_cpu_s. Requires at least one sample; throws adcorre::Error
// otherwise.
nlohmann::json summarize(const Samples& s, double items = 0);
// The same from JSON arrays (the Python side's "times_s" / "cpu_s").
nlohmann::json summarize_json(const nlohmann::json& times_s, const nlohmann::json& cpu_s, double items = 0);

double median(std::vector<double> v);

}  // namespace adcorre::bench
