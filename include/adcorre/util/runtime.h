// Process-wide runtime settings: threads, device, seed. The CLI applies the
// global options through these so every subcommand behaves the same.
#pragma once
#include <string>

namespace c10 { struct Device; }

namespace adcorre::runtime {

// Sets LibTorch's intra-op threads and OpenBLAS's pool (n <= 0: all cores).
// LibTorch defaults to ONE thread here, so every entry point must call this.
void set_threads(int n);
int threads();

// Parses "cpu" / "cuda" / "cuda:N"; throws adcorre::Error with a clear
// message when CUDA is asked for and this LibTorch has none.
std::string resolve_device(const std::string& name);

// Seeds LibTorch's global generator and the C++ side.
void set_seed(unsigned long long seed);

// Facts for `adcorre info` and benchmark records.
std::string torch_version();
std::string blas_in_use();       // which libblas.so.3 the process mapped
std::string cpu_model();
bool cuda_available();
bool mkldnn_available();

}  // namespace adcorre::runtime
