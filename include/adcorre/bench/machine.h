// What a benchmark result was measured on: CPU model and cores, the threads
// used, the BLAS the process mapped, LibTorch/oneDNN, the adcorre version and
// git commit of the source tree, the machine's load average and the date.
// Absolute timings mean little without these, so every result carries them.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace adcorre::bench {

nlohmann::json machine_info();

// Sizes OpenBLAS's own thread pool to n. LibTorch's set_num_threads sizes
// OpenMP (and MKL) but not OpenBLAS, whose extra threads then spin beside a
// "--threads 1" run: measured here, the loss's forward took 2x the CPU time and
// 4x the wall time on a loaded 2-core machine. Returns OpenBLAS's thread count
// afterwards, or 0 when the process has no OpenBLAS.
int limit_openblas_threads(int n);

// "1.23 1.10 0.98" from /proc/loadavg (1, 5, 15 minutes), or "" when unknown.
std::string load_average();

// The git commit of the source tree adcorre was built from ("<hash>[-dirty]"),
// or "unknown" when git or the tree is missing.
std::string git_commit();

}  // namespace adcorre::bench
