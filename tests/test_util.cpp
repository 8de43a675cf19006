#include "test_util.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <random>

#include <torch/torch.h>

#include "adcorre/util/fs.h"

namespace adcorre::test {

std::string test_device() {
  const char* env = std::getenv("ADCORRE_TEST_DEVICE");
  const std::string d = env && *env ? env : "cpu";
  if (d.rfind("cuda", 0) == 0 && !torch::cuda::is_available())
    throw std::runtime_error("ADCORRE_TEST_DEVICE=" + d + " but this LibTorch sees no CUDA device");
  return d;
}

double rel_error(const at::Tensor& a, const at::Tensor& b) {
  auto ad = a.to(torch::kCPU, torch::kDouble), bd = b.to(torch::kCPU, torch::kDouble);  // any devices
  double denom = bd.abs().max().item<double>();
  double num = (ad - bd).abs().max().item<double>();
  return denom > 0 ? num / denom : num;
}

TempDir::TempDir() {
  std::random_device rd;
  path = std::filesystem::temp_directory_path() /
         ("adcorre-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path);
}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::string shared_dir() { return adcorre::fs::shared_dir(); }

std::string adcorre_binary() {
#ifdef ADCORRE_BINARY
  return ADCORRE_BINARY;
#else
  return "adcorre";
#endif
}

int run_command(const std::string& cmd, std::string* output, bool merge_stderr) {
  std::string full = cmd + (merge_stderr ? " 2>&1" : "");
  FILE* p = popen(full.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf;
  std::string out;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = pclose(p);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace adcorre::test
