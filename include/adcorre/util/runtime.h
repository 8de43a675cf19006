// Process-wide runtime settings: threads, device, seed. The CLI applies the
// global options through these so every subcommand behaves the same.
#pragma once
#include <string>

namespace c10 { struct Device; }

namespace adcorre::runtime {

// Sets LibTorch's intra-op (OpenMP) threads to n (n <= 0: all cores),
// OpenCV's pool (OpenCV DNN) to n when OpenCV is linked, and OpenBLAS's own
// pool to one thread (see runtime.cpp for why).
// LibTorch defaults to ONE thread here, so every entry point must call this.
void set_threads(int n);
int threads();

// While alive, LibTorch work started from THIS thread runs on one CPU thread
// when `work_items` is below `parallel_from` (other threads keep theirs).
// Why: a batch of one 48x48 face is too small to split; with two OpenMP
// threads each layer's barrier made `predict` 4.5x slower than one thread
// (16x on a busy machine), the threads spinning against each other.
class SmallWorkOnOneThread {
 public:
  explicit SmallWorkOnOneThread(long work_items, long parallel_from = 8);
  ~SmallWorkOnOneThread();
  SmallWorkOnOneThread(const SmallWorkOnOneThread&) = delete;
  SmallWorkOnOneThread& operator=(const SmallWorkOnOneThread&) = delete;

  // The thread count a guard alive on THIS thread set aside (the count the
  // process was given), 0 when none did: work made of independent parts
  // (an ensemble's members) may use that many threads, one part each.
  static int threads_set_aside();

 private:
  int previous_ = 0;  // 0: nothing changed
  int outer_aside_ = 0;  // threads_set_aside() before this guard
};

// For a program's main(), before anything else: when OMP_WAIT_POLICY is not
// set (and the machine has more than one core), sets it to PASSIVE and
// re-executes the program with the same arguments (same process id), since
// the OpenMP runtime reads it only when it loads. Returns false when it did
// not restart (the variable was set, or exec failed); it does not return
// when it restarted. Why: see runtime.cpp.
bool restart_with_passive_openmp_waits(char** argv);

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
