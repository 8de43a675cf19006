// adcorre: facial expression recognition with the Ad-Corre loss.
// Dispatches to the subcommands registered in tools/cmd_*.cpp.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <thread>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <c10/util/Exception.h>

#ifdef ADCORRE_HAVE_OPENCV
#include "adcorre/data/preprocess.h"
#endif
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"
#include "adcorre/util/runtime.h"
#include "cli.h"

namespace adcorre::cli {

static Globals g_globals;
const Globals& globals() { return g_globals; }

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}
Registrar::Registrar(Command c) { registry().push_back(std::move(c)); }

#ifdef ADCORRE_MINIMAL
// The subcommands the dependency-light build leaves out (they decode, draw or
// serve images) still exist, so that `adcorre predict ...` says why it
// cannot run instead of "unknown subcommand".
static const bool kMissingRegistered = [] {
  for (const char* name : {"bench", "data-check", "embed", "make-scenes", "pack", "plot", "predict", "serve", "serve-bench"})
    registry().push_back({name, "(not in this build: ADCORRE_MINIMAL, without OpenCV)", [name](CLI::App& app) {
                            // Everything after the name is its (unparsed) arguments; without
                            // fallthrough(false) a positional falls through to the top-level
                            // app, which refuses it ("argument was not expected").
                            app.fallthrough(false);
                            app.prefix_command();
                            return std::function<int()>([name] {
                              throw Error(std::string("`adcorre ") + name +
                                          "` is not in this build: it was built with ADCORRE_MINIMAL (LibTorch only, "
                                          "no OpenCV/dlib/HDF5), which trains, evaluates, exports and inspects models "
                                          "from packed data only; use a full build for it");
                              return 1;
                            });
                          }});
  return true;
}();
#endif

}  // namespace adcorre::cli

// glibc gives every large block (activations, gradients: MBs each) its own
// mmap and returns it on free, so every training or inference step page-faults
// all of its tensors in again, and memory at the top of the heap is trimmed and
// refaulted. Keeping freed memory in the process instead made a whole training
// step of fer-compact 25-40% faster here (docs/benchmarks.md). Peak memory is
// unchanged; it is just not handed back. ADCORRE_SYSTEM_MALLOC=1 keeps glibc's
// defaults.
static void keep_freed_memory() {
#if defined(__GLIBC__)
  const char* off = std::getenv("ADCORRE_SYSTEM_MALLOC");
  if (off && *off && std::string(off) != "0") return;
  mallopt(M_MMAP_MAX, 0);                // every block from the heap ...
  mallopt(M_TRIM_THRESHOLD, 1 << 30);    // ... which is not given back below 1 GB of free top
#endif
}

int main(int argc, char** argv) {
  adcorre::runtime::restart_with_passive_openmp_waits(argv);  // OpenMP threads sleep at barriers
  keep_freed_memory();
  // OpenCV's own cap on decoded pixels (default 2^30) covers every format,
  // TIFF and PNM too; match adcorre's limit (data::kMaxImagePixels) unless
  // the user set it.
#ifdef ADCORRE_HAVE_OPENCV
  setenv("OPENCV_IO_MAX_IMAGE_PIXELS", std::to_string(adcorre::data::kMaxImagePixels).c_str(), 0);
#endif
  using namespace adcorre;
  auto& g = cli::g_globals;
  CLI::App app{"adcorre: facial expression recognition with the Ad-Corre loss (C++ / LibTorch)"};
  app.set_version_flag("--version", std::string(ADCORRE_VERSION));
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--threads", g.threads, "CPU threads for LibTorch (0: all cores; at most the cores)")
      ->check(cli::at_least(0))->capture_default_str();
  app.add_option("--device", g.device, "cpu | cuda | cuda:N")->capture_default_str();
  app.add_option("--seed", g.seed, "random seed")->capture_default_str();
  app.add_flag("-q,--quiet", g.quiet, "only warnings and errors on stderr");
  app.add_flag("-v,--verbose", g.verbose, "more detail on stderr");

  auto& commands = cli::registry();
  std::sort(commands.begin(), commands.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> subs;
  for (auto& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    subs.emplace_back(sub, c.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    log::set_level(g.quiet ? log::Level::quiet : g.verbose ? log::Level::verbose : log::Level::info);
    // More compute threads than cores only make them wait on each other
    // (--threads 1000 took a minute for one photo).
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (g.threads > cores) {
      log::warn("--threads " + std::to_string(g.threads) + " is more than the " + std::to_string(cores) +
                " cores; using " + std::to_string(cores));
      g.threads = cores;
    }
    runtime::set_threads(g.threads);
    g.device = runtime::resolve_device(g.device);
    if (g.seed) runtime::set_seed(g.seed);
    for (auto& [sub, run] : subs)
      if (sub->parsed()) return run();
    return 2;
  } catch (const adcorre::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
