// Helpers shared by the tests: tolerance comparisons (ncnn style), temp
// folders, paths to shared data and the built CLI, running a command.
#pragma once
#include <filesystem>
#include <string>

#include <ATen/core/Tensor.h>

namespace adcorre::test {

// max |a - b| / max |b| over the whole tensor (single elements can be tiny).
double rel_error(const at::Tensor& a, const at::Tensor& b);

// A fresh temp folder removed at destruction.
struct TempDir {
  TempDir();
  ~TempDir();
  std::filesystem::path path;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// ../shared next to the checkout, or "" (tests that need it skip).
std::string shared_dir();

// The device the device-aware tests (the loss's golden values, the models)
// run on: $ADCORRE_TEST_DEVICE ("cpu" when unset; "cuda" in
// scripts/gpu-check.sh). A CUDA device that is not there fails the test
// rather than quietly testing the CPU.
std::string test_device();

// Path of the built adcorre binary.
std::string adcorre_binary();

// Runs a shell command; returns its exit code and captures stdout (and stderr
// when merge_stderr).
int run_command(const std::string& cmd, std::string* output = nullptr, bool merge_stderr = false);

}  // namespace adcorre::test
