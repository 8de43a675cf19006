// The Python side of `adcorre bench`: bench/python/bench_python.py, run as a
// subprocess with Debian's python3-torch and numpy, measuring the same
// network and training step in PyTorch and the Ad-Corre loss the way the
// released Keras code computes it (numpy loops).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace adcorre::bench {

struct PythonSide {
  bool available = false;
  std::string interpreter;   // the python3 that imports torch and numpy
  std::string script;        // bench_python.py
  std::string note;          // why it is unavailable
};

// Finds an interpreter that imports torch and numpy: `requested` when given
// (no fallback), else $ADCORRE_PYTHON, /usr/bin/python3 (Debian's, where
// python3-torch installs), python3. `script_dir` holds bench_python.py (empty:
// <source dir>/bench/python). Never throws: a missing piece is reported in note.
PythonSide find_python(const std::string& requested, const std::string& script_dir);

// Runs one request (see bench_python.py) with `threads` threads; the request
// is written to `work_dir`. Returns the script's JSON. Throws adcorre::Error
// with the command and its exit status when it fails.
nlohmann::json run_python(const PythonSide& py, const nlohmann::json& request, const std::string& work_dir,
                          int threads);

}  // namespace adcorre::bench
