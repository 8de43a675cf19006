#include "adcorre/util/checking_child.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dlfcn.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "adcorre/util/error.h"

#if defined(__SANITIZE_ADDRESS__)
#define ADCORRE_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ADCORRE_UNDER_ASAN 1
#endif
#endif

namespace adcorre::util {

namespace {

// The child's report: one byte ('O' returned, 'E' threw) then the message.
void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

size_t mapped_bytes_now() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0;
  statm >> pages;
  return pages * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

[[noreturn]] void child_main(const std::function<void()>& check, const ChildCheckOptions& options, int fd) {
  // A crash must end the child by its signal, not run the handlers this
  // process installed (libFuzzer's would report the child's crash as its
  // own finding; Python's faulthandler would print a traceback).
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(sig, SIG_DFL);
#ifndef ADCORRE_UNDER_ASAN
  if (options.extra_address_space > 0) {
    const size_t now = mapped_bytes_now();
    if (now > 0) {
      rlimit lim{};
      lim.rlim_cur = lim.rlim_max = now + options.extra_address_space;
      (void)setrlimit(RLIMIT_AS, &lim);
    }
  }
#endif
  std::string report;
  try {
    // No OpenMP region in a forked child (libgomp's pool did not survive
    // the fork): with one OpenMP thread ATen runs every parallel_for inline
    // (its thread count is omp_get_max_threads()). Looked up, not linked, so
    // the helper needs neither OpenMP nor LibTorch.
    using SetThreads = void (*)(int);
    if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"))) set(1);
    check();
    report = "O";
  } catch (const std::bad_alloc&) {
    report = "E" + std::string("it needs more memory than the check allows (") +
             std::to_string(options.extra_address_space >> 20) + " MiB beyond what the process had)";
  } catch (const std::exception& e) {
    report = "E" + std::string(e.what());
  } catch (...) {
    report = "Ean unknown exception";
  }
  write_all(fd, report);
  ::close(fd);
  _exit(0);
}

std::string seconds_text(double s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

}  // namespace

ChildCheckOptions child_check_options_from_env(const std::string& env_prefix, ChildCheckOptions defaults) {
  if (std::getenv((env_prefix + "_IN_PROCESS").c_str()) != nullptr) defaults.enabled = false;
  defaults.deadline_env = env_prefix + "_CHECK_SECONDS";
  if (const char* env = std::getenv((env_prefix + "_CHECK_SECONDS").c_str()); env && std::atof(env) > 0)
    defaults.deadline_s = std::atof(env);
  return defaults;
}

bool run_checked_in_child(const std::function<void()>& check, const std::string& subject,
                          const ChildCheckOptions& options) {
  if (!options.enabled) return false;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  std::fflush(nullptr);  // the child must not repeat buffered output
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return false;
  }
  if (child == 0) {
    ::close(fds[0]);
    child_main(check, options, fds[1]);
  }
  ::close(fds[1]);

  // Read the report until the child closes the pipe (it exits, or dies), or
  // until the deadline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(options.deadline_s);
  std::string report;
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count() + 1, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (r == 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of file: the child is done
    report.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  if (timed_out) ::kill(child, SIGKILL);
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    throw Error(subject + ": " + options.parser + " did not finish reading it within " + seconds_text(options.deadline_s) +
                " s (in a separate checking process, now stopped): the file is damaged or crafted, or needs a larger " +
                (options.deadline_env.empty() ? std::string("deadline") : options.deadline_env) + "; nothing was read from it");
  if (WIFSIGNALED(status))
    throw Error(subject + ": " + options.parser + " crashed reading it (signal " + std::to_string(WTERMSIG(status)) +
                ", in a separate checking process): the file is damaged or crafted; nothing was read from it");
  if (report.empty() || (report[0] != 'O' && report[0] != 'E'))
    throw Error(subject + ": " + options.parser + " died reading it (exit status " +
                std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                " with no result, in a separate checking process): the file is damaged or crafted; nothing was read from it");
  if (report[0] == 'E') throw Error(report.substr(1));
  return true;
}

}  // namespace adcorre::util
