// adcorre bench: speed of inference, training, the Ad-Corre loss, the loader
// and predict, side by side with the Python stack (see bench/suite.h).
#include <filesystem>
#include <iostream>
#include <sstream>

#include "adcorre/bench/suite.h"
#include "adcorre/models/model_paths.h"
#include "adcorre/util/log.h"
#include "cli.h"

namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

struct BenchCli {
  adcorre::bench::BenchOptions o;
  std::string presets, sections;
};

int run_bench(BenchCli& c) {
  using namespace adcorre;
  c.o.presets = split_list(c.presets);
  c.o.sections = split_list(c.sections);
  if (cli::globals().seed) c.o.seed = cli::globals().seed;
  if (!c.o.model.empty()) {
    c.o.model = models::resolve_model_path(c.o.model);  // a shipped name works too
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) c.o.adcorre_binary = self.string();  // the end-to-end rows run this very CLI
  }
  auto result = bench::run_benchmarks(c.o);
  bench::write_results(result, c.o.out_dir);
  std::cout << bench::markdown_report(result);
  log::info("bench: wrote " + c.o.out_dir + "/bench.json and " + c.o.out_dir + "/bench.md");
  return 0;
}

adcorre::cli::Registrar register_bench(
    {"bench", "benchmarks side by side with Python: inference, training, loss, loader, predict",
     [](CLI::App& app) {
       auto c = std::make_shared<BenchCli>();
       auto& o = c->o;
       app.add_flag("--quick", o.quick, "small sizes, seconds (CI): proves the benchmark works");
       app.add_option("--out", o.out_dir, "folder for bench.json, bench.md and scratch files")->capture_default_str();
       app.add_option("--presets", c->presets, "comma-separated presets (default fer-compact,xception; quick fer-tiny)");
       app.add_option("--sections", c->sections, "comma-separated subset of inference,training,loss,loader,predict");
       app.add_option("--batch", o.batch, "inference throughput batch")->capture_default_str();
       app.add_option("--train-batch", o.train_batch, "training batch (inputs < 128 px)")->capture_default_str();
       app.add_option("--large-train-batch", o.large_train_batch, "training batch (inputs >= 128 px, e.g. xception)")
           ->capture_default_str();
       app.add_option("--min-time", o.min_time, "seconds each small measurement runs at least")->capture_default_str();
       app.add_option("--large-iters", o.large_iters, "timed iterations for inputs >= 128 px")->capture_default_str();
       app.add_option("--loader-images", o.loader_images, "decode at most this many images (0: all)")
           ->capture_default_str();
       app.add_option("--data", o.data, "FER-2013 class folders (default <shared>/data/fer2013/train)");
       app.add_option("--image", o.image, "photo with one face for predict (made 640x480)");
       app.add_option("--model", o.model,
                      "also measure this model file as predict runs it: batch 1/64 (and at 1 thread), folded vs not, "
                      "predict on a folder of crops, a 640x480 photo, a 640x480 video");
       app.add_option("--crops", o.crops, "--model: folder of class folders of face crops (default <shared>/data/fer2013/val)");
       app.add_option("--crops-count", o.crop_count, "--model: crops predicted end to end")->capture_default_str();
       app.add_option("--video-frames", o.video_frames, "--model: frames of the test video")->capture_default_str();
       app.add_option("--python", o.python, "Python interpreter with torch and numpy (default: found)");
       app.add_option("--python-scripts", o.python_scripts, "folder of bench_python.py (default <source>/bench/python)");
       app.add_flag("--no-python", o.no_python, "skip the Python side");
       app.footer("Use the global --threads N before or after `bench` (e.g. adcorre --threads 1 bench); "
                  "the Python side runs with the same number of threads.");
       return [c] { return run_bench(*c); };
     }});

}  // namespace
