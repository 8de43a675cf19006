// `adcorre bench`: adcorre's speed, side by side with the Python stack, in
// one run on one machine (docs/benchmarks.md shows a run and how to read it).
//
// Sections (each result records the machine, threads, BLAS, LibTorch and
// commit; see bench/machine.h):
//   inference  latency at batch 1 and throughput at batch N per preset, in
//              eval mode under InferenceMode, channels_last;
//   training   img/s of whole steps (forward, Ad-Corre loss, backward, Adam
//              step) per preset, on a fixed random batch;
//   loss       the Ad-Corre loss's forward+backward at B 64, k 7, d 256, C 7,
//              and its share of the first preset's training step;
//   loader     FER-2013 decode into the cache (build_cache) and batch assembly
//              + strong augmentation, in img/s;
//   predict    whole-image latency (detection + classification) on a 640x480
//              photo with one face;
//   model      (--model FILE) the speed of a real model file, as predict runs
//              it (BatchNorm folded): batch-1 latency and batch-64 throughput
//              of Predictor::classify at the run's threads and at 1 thread,
//              the unfolded network beside it, `adcorre predict --detector
//              none` on a folder of face crops (faces/s end to end, and after
//              start-up), a 640x480 photo with one face (ms), and
//              `adcorre predict` on a 640x480 MJPEG video (frames/s).
// The Python counterparts (bench/python/, PyTorch and numpy) run as
// subprocesses in the same run; each pair gets a speedup = Python time /
// adcorre time (> 1: adcorre faster). Targets are recorded, never asserted.
//
// Quick mode (seconds, for CI) runs every section on small sizes (fer-tiny,
// batch 8, a few hundred images) to prove the benchmark works; its numbers
// are not meant to be compared.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace adcorre::bench {

struct BenchOptions {
  bool quick = false;
  std::vector<std::string> presets;   // empty: fer-compact, xception (quick: fer-tiny)
  std::vector<std::string> sections;  // empty: all of inference, training, loss, loader, predict
  int batch = 64;                     // inference throughput batch (quick: 8)
  int train_batch = 64;               // training batch of presets with input < 128 (quick: 8)
  int large_train_batch = 16;         // training batch of presets with input >= 128 (memory; quick: 2)
  double min_time = 3.0;              // seconds each small measurement runs at least (quick: 0)
  int large_iters = 3;                // timed iterations for presets with input >= 128 (quick: 1)
  int loader_images = 0;              // decode at most this many images (0: all; quick: 256)
  std::string out_dir = "bench-results";
  std::string python;                 // interpreter (empty: find one)
  std::string python_scripts;         // folder of bench_python.py (empty: <source>/bench/python)
  bool no_python = false;
  std::string data;                   // FER-2013 train folder (empty: <shared>/data/fer2013/train)
  std::string image;                  // predict photo source (empty: examples/astronaut.jpg or skimage's)
  std::string model;                  // model file of the "model" section (empty: that section is skipped)
  std::string crops;                  // folder of face crops for it (empty: <shared>/data/fer2013/val)
  int crop_count = 1000;              // crops predicted end to end (quick: 32)
  int video_frames = 100;             // frames of the 640x480 test video (quick: 10)
  std::string adcorre_binary;         // the CLI that runs the end-to-end rows (empty: those rows are skipped)
  uint64_t seed = 1;

  // Applies the quick-mode defaults to fields left at their defaults.
  void apply_quick_defaults();
  // Throws adcorre::Error naming the bad option.
  void validate() const;
};

std::vector<std::string> section_names();

// Runs the selected sections; writes scratch files (Python requests, the
// predict photo, a synthetic dataset when FER-2013 is absent) under out_dir.
nlohmann::json run_benchmarks(const BenchOptions& opts);

// The Markdown report of a result (tables, targets, machine).
std::string markdown_report(const nlohmann::json& result);

// Writes <out_dir>/bench.json and <out_dir>/bench.md (atomically).
void write_results(const nlohmann::json& result, const std::string& out_dir);

}  // namespace adcorre::bench
