// Running a risky parse once in a separate process before trusting it.
//
// What it represents: third-party parsers adcorre feeds untrusted files to
// (LibTorch's unpickler for model files, checkpoints and packed data;
// libhdf5 for Keras files) can crash, corrupt the heap, allocate gigabytes
// or loop on crafted input instead of reporting an error (docs/robustness.md
// lists what the fuzzers found). run_checked_in_child() runs such a parse in
// a forked child process first, so whatever the parser does to that process,
// this one only sees an outcome; the caller then parses in-process only a
// file the child parsed without harm.
//
// run_checked_in_child(check, subject, options)
//   requires: `check` is safe to run in a forked child of this process: it
//             uses no locks other threads may hold at fork time beyond
//             malloc's (glibc resets those), no OpenMP parallel region (the
//             child's OpenMP, hence LibTorch's, is set to one thread before
//             `check` runs) and no GPU.
//   ensures:  returns true when `check` returned in the child;
//             throws adcorre::Error(<the child's message>) when `check` threw
//             (any std::exception: its what(), so `check` should throw
//             adcorre::Error with the whole message; an allocation over the
//             child's memory cap arrives as such);
//             throws adcorre::Error naming `subject` when the child died (a
//             signal, or an exit with no outcome, e.g. a sanitizer report) or
//             did not finish within options.deadline_s (it is killed);
//             returns false, having run nothing, when no child can be made
//             (fork or pipe failed) or options.enabled is false: the caller
//             parses in-process, as it would without the check.
//   memory:   the child's address space is capped at what this process maps
//             now plus options.extra_address_space bytes (not under ASan,
//             whose shadow memory cannot live with a cap).
#pragma once
#include <cstddef>
#include <functional>
#include <string>

namespace adcorre::util {

struct ChildCheckOptions {
  bool enabled = true;
  double deadline_s = 60;
  size_t extra_address_space = size_t(4) << 30;  // 0: no cap
  // How the parser is named in the errors ("LibTorch's loader", "libhdf5").
  std::string parser = "the parser";
  // The variable that sets the deadline, named when it is missed.
  std::string deadline_env;
};

// Options from the environment: <PREFIX>_IN_PROCESS set disables the check,
// <PREFIX>_CHECK_SECONDS (> 0) sets the deadline; the rest from `defaults`.
ChildCheckOptions child_check_options_from_env(const std::string& env_prefix, ChildCheckOptions defaults);

bool run_checked_in_child(const std::function<void()>& check, const std::string& subject,
                          const ChildCheckOptions& options);

}  // namespace adcorre::util
