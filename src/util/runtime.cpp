#include "adcorre/util/runtime.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <torch/torch.h>

#include "adcorre/util/error.h"

namespace adcorre::runtime {

void set_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(n);
  // OpenBLAS keeps its own pthread pool beside LibTorch's OpenMP pool, and
  // torch::set_num_threads does not size it. It runs on ONE thread, whatever n:
  // here BLAS only does small products (the heads' linear layers, and the
  // convolutions LibTorch 1.13 does not give oneDNN: batch 1, no groups,
  // fewer than 20480 input values, i.e. a face's deeper layers), too small to
  // split, and OpenBLAS's idle threads busy-wait for a while after each call:
  // with a second BLAS thread spinning against the caller, `predict` with
  // --threads 2 was slower than with --threads 1 (docs/benchmarks.md,
  // "threads"). The parallel work (oneDNN's convolutions, ATen's kernels)
  // goes through OpenMP, which n sizes. Looked up at run time so that any
  // BLAS links.
  using SetFn = void (*)(int);
  if (auto set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
  // OpenCV DNN (BlazeFace, the classifier's few-face path) runs on OpenCV's
  // own pool (TBB in Debian's build), which uses every core unless told:
  // --threads N holds for it too. Through OpenCV's C entry point, looked up
  // at run time, so that this file needs no OpenCV (the minimal build).
  if (auto set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "cvSetNumThreads"))) set(n);
}
int threads() { return torch::get_num_threads(); }

// omp_set_num_threads changes the calling thread's OpenMP setting only, which
// ATen's parallel_for and oneDNN read (omp_get_max_threads); torch's own
// set_num_threads would change every thread's. Looked up at run time, as
// OpenBLAS's setter above: the OpenMP runtime is whichever one LibTorch
// loaded (PyTorch's wheels bundle their own), never a second one of ours.
namespace {
struct OpenMpThreads {
  using Get = int (*)();
  using Set = void (*)(int);
  Get get = reinterpret_cast<Get>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  Set set = reinterpret_cast<Set>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
};
const OpenMpThreads& openmp() {
  static const OpenMpThreads o;
  return o;
}
}  // namespace

namespace {
thread_local int set_aside_here = 0;
}

SmallWorkOnOneThread::SmallWorkOnOneThread(long work_items, long parallel_from) {
  if (work_items >= parallel_from || !openmp().get || !openmp().set) return;
  const int now = openmp().get();
  if (now <= 1) return;
  previous_ = now;
  outer_aside_ = set_aside_here;
  set_aside_here = now;
  openmp().set(1);
}

SmallWorkOnOneThread::~SmallWorkOnOneThread() {
  if (previous_ > 0) {
    openmp().set(previous_);
    set_aside_here = outer_aside_;
  }
}

int SmallWorkOnOneThread::threads_set_aside() { return set_aside_here; }

bool restart_with_passive_openmp_waits(char** argv) {
  // libgomp reads OMP_WAIT_POLICY once, when it is loaded (before main), so
  // the only way to change it from inside is to start again with it set.
  // Why: with the default (active) policy each OpenMP thread spins at every
  // barrier; on this project's 2-core machines, shared with other work and
  // with adcorre's own decoding threads, the spinning threads take the cores
  // the others need: `predict --detector none` on 200 crops took 47 s with
  // --threads 2 and 10 s with OMP_WAIT_POLICY=PASSIVE (1 thread: 10 s;
  // docs/benchmarks.md, "threads"). A user's own setting is kept.
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::thread::hardware_concurrency() <= 1) return false;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return false;
  execv("/proc/self/exe", argv);
  unsetenv("OMP_WAIT_POLICY");  // exec failed: carry on as we are
  return false;
}

std::string resolve_device(const std::string& name) {
  if (name == "cpu") return name;
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error("--device " + name + " was asked for, but this LibTorch build has no CUDA or no GPU is visible; "
                  "use --device cpu, or build against a CUDA LibTorch (CMAKE_PREFIX_PATH)");
    try {
      torch::Device d(name);
      (void)d;
    } catch (const c10::Error&) {
      throw Error("bad --device '" + name + "' (expected cpu, cuda or cuda:N)");
    }
    return name;
  }
  throw Error("bad --device '" + name + "' (expected cpu, cuda or cuda:N)");
}

void set_seed(unsigned long long seed) { torch::manual_seed(seed); }

std::string torch_version() {
#ifdef TORCH_VERSION
  return TORCH_VERSION;
#else
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
#endif
}

std::string blas_in_use() {
  std::ifstream maps("/proc/self/maps");
  std::string line, found;
  while (std::getline(maps, line)) {
    for (const char* lib : {"libopenblas", "libblas.so", "libmkl", "libblis"}) {
      auto pos = line.find(lib);
      if (pos != std::string::npos) {
        auto start = line.find('/');
        std::string path = line.substr(start);
        if (found.find(path) == std::string::npos) found += (found.empty() ? "" : ", ") + path;
      }
    }
  }
  // libblas.so.3 is a Debian alternative: resolve the link to the real library.
  std::error_code ec;
  auto real = std::filesystem::canonical("/usr/lib/x86_64-linux-gnu/libblas.so.3", ec);
  if (!ec) found += (found.empty() ? "" : "; ") + std::string("libblas.so.3 -> ") + real.string();
  return found.empty() ? "unknown" : found;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

bool cuda_available() { return torch::cuda::is_available(); }
bool mkldnn_available() { return at::hasMKLDNN(); }

}  // namespace adcorre::runtime
