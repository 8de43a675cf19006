#include "adcorre/data/loader.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "adcorre/data/preprocess.h"
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"

namespace adcorre::data {

ImageCache build_cache(const Dataset& ds, const models::ModelConfig& cfg, const CacheOptions& opts) {
  if (ds.samples.empty()) throw Error("dataset " + ds.root + " is empty");
  const int64_t N = static_cast<int64_t>(ds.samples.size());
  const int S = cfg.input_size, C = cfg.in_channels;
  auto pixels = torch::empty({N, S, S, C}, torch::kUInt8);
  std::vector<char> ok(N, 0);
  std::vector<std::string> errors(N);
  std::atomic<int64_t> next{0};
  int threads = opts.threads > 0 ? opts.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto worker = [&] {
    for (int64_t i; (i = next++) < N;) {
      const Sample& s = ds.samples[i];
      try {
        cv::Mat img = s.image.empty() ? decode_image(s.path, C) : s.image;
        if (!s.crop.empty()) {
          cv::Rect r = s.crop & cv::Rect(0, 0, img.cols, img.rows);
          if (r.area() <= 0) throw Error("face box outside the image");
          img = img(r);
        }
        cv::Mat m = to_model_pixels(img, cfg);
        std::memcpy(pixels[i].data_ptr(), m.data, static_cast<size_t>(S) * S * C);
        ok[i] = 1;
      } catch (const std::exception& e) {
        errors[i] = s.path + ": " + e.what();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();

  ImageCache cache;
  cache.classes = ds.classes;
  std::vector<int64_t> keep, labels;
  bool any_soft = false;
  for (int64_t i = 0; i < N; ++i) {
    if (ok[i]) {
      keep.push_back(i);
      labels.push_back(ds.samples[i].label);
      any_soft |= !ds.samples[i].soft.empty();
    } else {
      if (opts.strict) throw Error("unreadable image (strict mode): " + errors[i]);
      cache.skipped.push_back(errors[i]);
    }
  }
  if (!cache.skipped.empty() && !opts.quiet) {
    std::string first;
    for (size_t i = 0; i < std::min<size_t>(3, cache.skipped.size()); ++i) first += "\n  " + cache.skipped[i];
    log::warn("skipped " + std::to_string(cache.skipped.size()) + " unreadable image(s) of " + std::to_string(N) +
              " in " + ds.root + ", first:" + first);
  }
  if (keep.empty()) throw Error("dataset " + ds.root + " has no readable image");
  auto idx = torch::tensor(keep, torch::kLong);
  cache.pixels = (static_cast<int64_t>(keep.size()) == N ? pixels : pixels.index_select(0, idx)).permute({0, 3, 1, 2});
  cache.labels = torch::tensor(labels, torch::kLong);
  for (auto i : keep) cache.keys.push_back(ds.samples[i].key.empty() ? ds.samples[i].path : ds.samples[i].key);
  if (any_soft) {
    const int64_t K = static_cast<int64_t>(ds.classes.size());
    cache.soft = torch::zeros({static_cast<int64_t>(keep.size()), K});
    for (size_t j = 0; j < keep.size(); ++j) {
      auto& s = ds.samples[keep[j]];
      if (s.soft.size() == static_cast<size_t>(K))
        cache.soft[j] = torch::tensor(s.soft);
      else
        cache.soft[j][s.label] = 1.0;
    }
  }
  return cache;
}

}  // namespace adcorre::data
