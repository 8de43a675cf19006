// Loader throughput on the shared FER-2013 train split (skips without it):
//   BM_BuildCache      decoding all 28,709 JPEGs into the in-memory cache;
//   BM_CachedBatch     one training batch from the cache: index_select +
//                      normalize + augment_batch (preset strong / none),
//                      batch 128, with 2 and 1 LibTorch threads;
//   BM_StreamBatches   the streaming mode (decode from disk every epoch).
// Threads: 2 decode threads (the project's CI box). Time is wall time; the
// CPU column is the whole process's CPU time (all threads), the cost that
// competes with training for the cores.
// Run: build/bench-data [--benchmark_filter=...]; items/s = images/s.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "adcorre/data/augment.h"
#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/data/preprocess.h"
#include "adcorre/data/stream.h"
#include "adcorre/models/model_config.h"
#include "adcorre/util/fs.h"

namespace {

using namespace adcorre;
constexpr int kThreads = 2;
constexpr int64_t kBatch = 128;

const data::Dataset* train_set() {
  static data::Dataset ds;
  static bool tried = false;
  if (!tried) {
    tried = true;
    auto root = fs::shared_dir();
    if (!root.empty()) {
      try {
        ds = data::read_dataset(root + "/data/fer2013", "auto", "train");
      } catch (const std::exception&) {
      }
    }
  }
  return ds.samples.empty() ? nullptr : &ds;
}

const models::ModelConfig& config() {
  static auto cfg = models::preset("fer-compact");
  return cfg;
}

void BM_BuildCache(benchmark::State& state) {
  auto* ds = train_set();
  if (!ds) return state.SkipWithError("no ../shared/data/fer2013 (set ADCORRE_SHARED)");
  for (auto _ : state) {
    auto cache = data::build_cache(*ds, config(), {kThreads, false, true});
    benchmark::DoNotOptimize(cache.pixels.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(ds->samples.size()));
}
BENCHMARK(BM_BuildCache)->Unit(benchmark::kMillisecond)->Iterations(2)->MeasureProcessCPUTime()->UseRealTime();

void BM_CachedBatch(benchmark::State& state) {
  auto* ds = train_set();
  if (!ds) return state.SkipWithError("no ../shared/data/fer2013 (set ADCORRE_SHARED)");
  static auto cache = data::build_cache(*ds, config(), {kThreads, false, true});
  at::set_num_threads(static_cast<int>(state.range(1)));
  auto aug = data::augment_preset(state.range(0) ? "strong" : "none");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  auto order = data::epoch_indices(cache, {});
  int64_t pos = 0;
  for (auto _ : state) {
    if (pos + kBatch > cache.size()) pos = 0;
    auto idx = torch::from_blob(order.data() + pos, {kBatch}, torch::kLong);
    pos += kBatch;
    auto x = data::normalize(cache.pixels.index_select(0, idx), config());
    auto y = cache.labels.index_select(0, idx);
    x = data::augment_batch(x, aug, gen);
    benchmark::DoNotOptimize(x.data_ptr());
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["batches/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
// Args: {strong augmentation?, LibTorch threads}.
BENCHMARK(BM_CachedBatch)
    ->Args({1, kThreads})
    ->Args({0, kThreads})
    ->Args({1, 1})
    ->Args({0, 1})
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

void BM_StreamBatches(benchmark::State& state) {
  auto* ds = train_set();
  if (!ds) return state.SkipWithError("no ../shared/data/fer2013 (set ADCORRE_SHARED)");
  const int64_t batches = 40;  // 5,120 images per iteration
  auto order = data::epoch_indices(*ds, {});
  order.resize(batches * kBatch);
  for (auto _ : state) {
    data::StreamOptions so;
    so.batch_size = kBatch;
    so.threads = kThreads;
    data::BatchStream stream(*ds, config(), order, so);
    data::Batch b;
    while (stream.next(b)) benchmark::DoNotOptimize(b.pixels.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * batches * kBatch);
}
BENCHMARK(BM_StreamBatches)->Unit(benchmark::kMillisecond)->Iterations(2)->MeasureProcessCPUTime()->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
