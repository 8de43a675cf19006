// What a benchmark result was measured on: CPU model and cores, the threads
// used, the BLAS the process mapped, LibTorch/oneDNN, the adcorre version and
// git commit of the source tree, the machine's load average and the date.
// Absolute timings mean little without these, so every result carries them.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace adcorre::bench {

nlohmann::json machine_info();

// "1.23 1.10 0.98" from /proc/loadavg (1, 5, 15 minutes), or "" when unknown.
std::string load_average();

// The git commit of the source tree adcorre was built from ("<hash>[-dirty]"),
// or "unknown" when git or the tree is missing.
std::string git_commit();

}  // namespace adcorre::bench
