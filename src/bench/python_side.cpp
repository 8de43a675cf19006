#include "adcorre/bench/python_side.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <filesystem>
#include <fstream>

#include "adcorre/util/error.h"
#include "adcorre/util/log.h"

namespace adcorre::bench {
namespace {

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs `cmd` through the shell; captures stdout; returns the exit status (-1: not exited).
int run(const std::string& cmd, std::string* out) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0)
    if (out) out->append(buf.data(), n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool imports_torch(const std::string& python) {
  return run(quote(python) + " -c 'import torch, numpy' >/dev/null 2>&1", nullptr) == 0;
}

}  // namespace

PythonSide find_python(const std::string& requested, const std::string& script_dir) {
  PythonSide py;
  std::string dir = script_dir;
#ifdef ADCORRE_SOURCE_DIR
  if (dir.empty()) dir = std::string(ADCORRE_SOURCE_DIR) + "/bench/python";
#endif
  py.script = dir + "/bench_python.py";
  if (!std::filesystem::exists(py.script)) {
    py.note = "the Python benchmark script " + py.script + " is missing (give --python-scripts DIR)";
    return py;
  }
  std::vector<std::string> candidates;
  if (!requested.empty()) {
    candidates = {requested};
  } else {
    if (const char* env = std::getenv("ADCORRE_PYTHON"); env && *env) candidates.push_back(env);
    candidates.push_back("/usr/bin/python3");
    candidates.push_back("python3");
  }
  std::string tried;
  for (auto& c : candidates) {
    if (imports_torch(c)) {
      py.available = true;
      py.interpreter = c;
      return py;
    }
    tried += (tried.empty() ? "" : ", ") + c;
  }
  py.note = "no Python interpreter with torch and numpy (tried " + tried +
            "); install Debian's python3-torch and python3-numpy, or give --python PATH";
  return py;
}

nlohmann::json run_python(const PythonSide& py, const nlohmann::json& request, const std::string& work_dir,
                          int threads) {
  check(py.available, "bench: the Python side is unavailable: " + py.note);
  const std::string req_path = work_dir + "/python-request.json";
  {
    std::ofstream f(req_path);
    check(static_cast<bool>(f), "bench: cannot write " + req_path);
    f << request.dump(1);
  }
  // OpenMP and OpenBLAS read their thread counts at start-up (torch.set_num_threads
  // does not size OpenBLAS's pool): the same threads as the C++ side.
  const std::string t = std::to_string(threads);
  const std::string cmd = "OMP_NUM_THREADS=" + t + " MKL_NUM_THREADS=" + t + " OPENBLAS_NUM_THREADS=" + t + " " +
                          quote(py.interpreter) + " " + quote(py.script) + " " + quote(req_path);
  log::debug("bench: " + cmd);
  std::string out;
  const int rc = run(cmd, &out);
  if (rc != 0) throw Error("bench: the Python side failed (exit status " + std::to_string(rc) + "): " + cmd);
  // The JSON is the last line; anything before it is stray output.
  auto end = out.find_last_not_of("\n ");
  auto start = out.rfind('\n', end == std::string::npos ? 0 : end);
  std::string line = out.substr(start == std::string::npos ? 0 : start + 1);
  try {
    return nlohmann::json::parse(line);
  } catch (const std::exception& e) {
    throw Error("bench: the Python side printed no JSON result (" + std::string(e.what()) + "): " + cmd);
  }
}

}  // namespace adcorre::bench
