#include "adcorre/bench/machine.h"

#include <dlfcn.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <thread>

#include "adcorre/util/runtime.h"

namespace adcorre::bench {
namespace {

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 256> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string utc_now() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

int limit_openblas_threads(int n) {
  using SetFn = void (*)(int);
  using GetFn = int (*)();
  auto set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  auto get = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (!set || !get) return 0;
  set(n);
  return get();
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  if (!(in >> a >> b >> c)) return "";
  return a + " " + b + " " + c;
}

std::string git_commit() {
#ifdef ADCORRE_SOURCE_DIR
  const std::string dir = ADCORRE_SOURCE_DIR;
  std::string hash = run_capture("git -C '" + dir + "' rev-parse --short=12 HEAD 2>/dev/null");
  if (hash.empty()) return "unknown";
  // Only tracked files count: untracked results or scratch files do not make the tree dirty.
  std::string dirty = run_capture("git -C '" + dir + "' status --porcelain --untracked-files=no 2>/dev/null");
  return dirty.empty() ? hash : hash + "-dirty";
#else
  return "unknown";
#endif
}

nlohmann::json machine_info() {
  return {{"cpu", runtime::cpu_model()},
          {"cores", std::thread::hardware_concurrency()},
          {"threads", runtime::threads()},
          {"blas", runtime::blas_in_use()},
          {"libtorch", runtime::torch_version()},
          {"onednn", runtime::mkldnn_available()},
          {"adcorre", ADCORRE_VERSION},
          {"commit", git_commit()},
          {"load_average", load_average()},
          {"date", utc_now()}};
}

}  // namespace adcorre::bench
