// `adcorre`: the launcher of the CLI. It sets OMP_WAIT_POLICY=PASSIVE (unless
// the user set it, or the machine has one core) and executes adcorre-cli from
// the same folder with the same arguments, in the same process (exec).
//
// Why: LibTorch's OpenMP runtime (libgomp) reads OMP_WAIT_POLICY once, while
// it initializes, before main() of any program that links it. With its default
// policy every OpenMP thread spins at each barrier, taking the cores that
// adcorre's own decoding and detection threads need (predict with --threads 2
// was several times slower than with 1; docs/benchmarks.md, "threads").
// Nothing inside a program linked with LibTorch can change it in time: an
// initializer of our own runs after libgomp's (it sits deeper in the library
// graph), .preinit_array's setenv is undone by libc's own start-up. The CLI
// therefore used to re-execute itself with the variable set, which loaded
// LibTorch and ran its static initialization twice: about 0.5 s of CPU on
// every command here. This launcher links nothing but libc, so its own start
// costs about a millisecond. adcorre-cli started directly still re-executes
// itself (runtime::restart_with_passive_openmp_waits), so it behaves the same.
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  (void)argc;
  if (std::getenv("OMP_WAIT_POLICY") == nullptr && sysconf(_SC_NPROCESSORS_ONLN) > 1)
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    std::fprintf(stderr, "adcorre: cannot find its own executable (/proc/self/exe): %s\n", std::strerror(errno));
    return 127;
  }
  self[n] = '\0';
  std::string cli(self);
  cli.erase(cli.find_last_of('/') + 1);
  cli += "adcorre-cli";
  execv(cli.c_str(), argv);
  std::fprintf(stderr, "adcorre: cannot run %s: %s (the CLI is installed next to this launcher)\n", cli.c_str(),
               std::strerror(errno));
  return 127;
}
