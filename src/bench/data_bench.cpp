// The loader benchmark: FER-2013 decoded into the in-memory cache
// (data::build_cache), then training batches assembled from it with and
// without strong augmentation, as `adcorre train` does each step.
#include <filesystem>
#include <random>

#include <opencv2/imgcodecs.hpp>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "adcorre/data/augment.h"
#include "adcorre/data/class_names.h"
#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/data/preprocess.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/runtime.h"
#include "sections.h"

namespace adcorre::bench::detail {
namespace sfs = std::filesystem;
namespace {

// A small class-folder dataset of 48x48 gray PNGs (used when FER-2013 is absent,
// as in CI without ../shared): the same decode path, much smaller files.
std::string make_synthetic_faces(const std::string& dir, int per_class, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto& names = data::fer2013_names();
  for (size_t c = 0; c < names.size(); ++c) {
    sfs::create_directories(dir + "/" + names[c]);
    for (int i = 0; i < per_class; ++i) {
      cv::Mat img(48, 48, CV_8UC1);
      cv::randu(img, 0, 256);
      cv::imwrite(dir + "/" + names[c] + "/" + std::to_string(i) + ".png", img);
    }
  }
  return dir;
}

}  // namespace

nlohmann::json loader_section(const BenchOptions& o, const models::ModelConfig& cfg, const Timing& bt) {
  nlohmann::json j;
  std::string root = o.data;
  if (root.empty() && !fs::shared_dir().empty()) root = fs::shared_dir() + "/data/fer2013/train";
  if (root.empty() || !sfs::is_directory(root)) {
    j["note"] = "FER-2013 not found (" + (root.empty() ? std::string("no ../shared") : root) +
                "): a synthetic dataset of 48x48 PNGs was used instead";
    root = make_synthetic_faces(o.out_dir + "/synthetic-faces", o.quick ? 16 : 200, o.seed);
    j["dataset"] = "synthetic";
  } else {
    j["dataset"] = "fer2013";
  }
  j["root"] = root;

  double w0 = wall_seconds();
  auto ds = data::read_class_folders(root);
  j["listing_s"] = wall_seconds() - w0;
  if (o.loader_images > 0 && ds.samples.size() > static_cast<size_t>(o.loader_images)) {
    // An even stride keeps every class in the subset.
    std::vector<data::Sample> keep;
    const double step = static_cast<double>(ds.samples.size()) / o.loader_images;
    for (int i = 0; i < o.loader_images; ++i) keep.push_back(ds.samples[static_cast<size_t>(i * step)]);
    ds.samples = std::move(keep);
  }

  data::CacheOptions co;
  co.threads = runtime::threads();
  co.quiet = true;
  w0 = wall_seconds();
  const double c0 = process_cpu_seconds();
  auto cache = data::build_cache(ds, cfg, co);
  const double decode_s = wall_seconds() - w0, decode_cpu = process_cpu_seconds() - c0;
  const double n = static_cast<double>(cache.size());
  j["decode"] = {{"images", cache.size()},       {"skipped", cache.skipped.size()},
                 {"threads", co.threads},        {"seconds", decode_s},
                 {"cpu_seconds", decode_cpu},    {"items_per_s", n / decode_s},
                 {"items_per_cpu_s", decode_cpu > 0 ? n / decode_cpu : 0.0}};

  // Batches: an index_select from the cache, normalisation, (augmentation),
  // channels_last: what the trainer does before each step.
  const int B = static_cast<int>(std::min<int64_t>(o.train_batch, cache.size()));
  data::EpochPlan plan;
  plan.seed = o.seed;
  auto order = data::epoch_indices(cache, plan);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  size_t pos = 0;
  auto next_indices = [&] {
    if (pos + B > order.size()) pos = 0;
    auto idx = torch::tensor(std::vector<int64_t>(order.begin() + pos, order.begin() + pos + B), torch::kLong);
    pos += B;
    return idx;
  };
  const auto strong = data::augment_preset("strong");
  auto plain = measure([&] {
    auto x = data::normalize(cache.pixels.index_select(0, next_indices()), cfg);
    x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  }, bt);
  auto augmented = measure([&] {
    auto x = data::normalize(cache.pixels.index_select(0, next_indices()), cfg);
    x = data::augment_batch(x, strong, gen).contiguous(torch::MemoryFormat::ChannelsLast);
  }, bt);
  j["batch"] = B;
  j["assembly"] = summarize(plain, B);
  j["assembly_strong_augment"] = summarize(augmented, B);
  return j;
}

}  // namespace adcorre::bench::detail
