#include "adcorre/data/stream.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include <torch/torch.h>

#include "adcorre/data/preprocess.h"
#include "adcorre/util/error.h"

namespace adcorre::data {

namespace {

// One sample to model-size pixels: the same steps as build_cache.
cv::Mat sample_pixels(const Sample& s, const models::ModelConfig& cfg) {
  cv::Mat img = s.image.empty() ? decode_image(s.path, cfg.in_channels) : s.image;
  if (!s.crop.empty()) {
    cv::Rect r = s.crop & cv::Rect(0, 0, img.cols, img.rows);
    if (r.area() <= 0) throw Error("face box outside the image");
    img = img(r);
  }
  return to_model_pixels(img, cfg);
}

}  // namespace

struct BatchStream::Impl {
  struct Slot {
    bool done = false;
    Batch batch;
    std::vector<std::string> errors;
    std::exception_ptr error;
  };

  const Dataset& ds;
  models::ModelConfig cfg;
  std::vector<int64_t> order;
  StreamOptions opts;
  int64_t num_batches = 0, prefetch = 1;

  std::mutex mu;
  std::condition_variable cv;
  int64_t claimed = 0;   // next batch a worker takes
  int64_t consumed = 0;  // next batch next() returns
  bool stop = false;
  std::map<int64_t, Slot> slots;
  std::vector<std::string> skipped;
  std::vector<std::thread> workers;

  Impl(const Dataset& d, const models::ModelConfig& c, std::vector<int64_t> o, StreamOptions op)
      : ds(d), cfg(c), order(std::move(o)), opts(op) {}

  void decode(int64_t b, Slot& slot) const {
    const int64_t B = opts.batch_size, begin = b * B, end = std::min<int64_t>(begin + B, order.size());
    const int S = cfg.input_size, C = cfg.in_channels;
    const int64_t K = static_cast<int64_t>(ds.classes.size());
    auto pixels = torch::empty({end - begin, S, S, C}, torch::kUInt8);
    std::vector<int64_t> labels;
    bool any_soft = false;
    for (int64_t i = begin; i < end; ++i) {
      const Sample& s = ds.samples.at(order[i]);
      try {
        cv::Mat m = sample_pixels(s, cfg);
        std::memcpy(pixels[static_cast<int64_t>(labels.size())].data_ptr(), m.data, static_cast<size_t>(S) * S * C);
      } catch (const std::exception& e) {
        if (opts.strict) throw Error("unreadable image (strict mode): " + s.path + ": " + e.what());
        slot.errors.push_back(s.path + ": " + e.what());
        continue;
      }
      labels.push_back(s.label);
      slot.batch.indices.push_back(order[i]);
      any_soft |= !s.soft.empty();
    }
    const int64_t n = static_cast<int64_t>(labels.size());
    slot.batch.pixels = pixels.narrow(0, 0, n).permute({0, 3, 1, 2});
    slot.batch.labels = torch::tensor(labels, torch::kLong);
    if (any_soft) {
      // Same rule as build_cache: a sample without its own distribution gets one-hot.
      auto soft = torch::zeros({n, K});
      for (int64_t j = 0; j < n; ++j) {
        auto& s = ds.samples[slot.batch.indices[j]];
        if (s.soft.size() == static_cast<size_t>(K)) soft[j] = torch::tensor(s.soft);
        else soft[j][s.label] = 1.0;
      }
      slot.batch.soft = soft;
    }
  }

  void work() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return stop || claimed >= num_batches || claimed < consumed + prefetch; });
      if (stop || claimed >= num_batches) return;
      const int64_t b = claimed++;
      Slot& slot = slots[b];  // std::map: references stay valid while others insert
      lock.unlock();
      try {
        decode(b, slot);
      } catch (...) {
        slot.error = std::current_exception();
      }
      lock.lock();
      slot.done = true;
      cv.notify_all();
    }
  }
};

BatchStream::BatchStream(const Dataset& ds, const models::ModelConfig& cfg, std::vector<int64_t> order,
                         StreamOptions opts) {
  check(opts.batch_size > 0, "stream batch size must be > 0, got " + std::to_string(opts.batch_size));
  for (auto i : order)
    check(i >= 0 && i < static_cast<int64_t>(ds.samples.size()),
          "stream order holds sample index " + std::to_string(i) + ", the dataset has " + std::to_string(ds.samples.size()));
  impl_ = std::make_unique<Impl>(ds, cfg, std::move(order), opts);
  const int64_t N = static_cast<int64_t>(impl_->order.size());
  num_batches_ = opts.drop_last ? N / opts.batch_size : (N + opts.batch_size - 1) / opts.batch_size;
  impl_->num_batches = num_batches_;
  const int threads = opts.threads > 0 ? opts.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  impl_->prefetch = opts.prefetch > 0 ? opts.prefetch : 2 * threads;
  for (int t = 0; t < threads; ++t) impl_->workers.emplace_back([this] { impl_->work(); });
}

BatchStream::~BatchStream() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->workers) t.join();
}

bool BatchStream::next(Batch& out) {
  auto& m = *impl_;
  std::unique_lock<std::mutex> lock(m.mu);
  while (m.consumed < m.num_batches) {
    const int64_t b = m.consumed;
    m.cv.wait(lock, [&] { return m.slots.count(b) && m.slots[b].done; });
    Impl::Slot slot = std::move(m.slots[b]);
    m.slots.erase(b);
    m.consumed++;
    m.cv.notify_all();  // a worker may claim one more batch
    m.skipped.insert(m.skipped.end(), slot.errors.begin(), slot.errors.end());
    if (slot.error) std::rethrow_exception(slot.error);
    if (slot.batch.size() == 0) continue;  // every image of this batch was unreadable
    out = std::move(slot.batch);
    return true;
  }
  return false;
}

std::vector<std::string> BatchStream::skipped() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->skipped;
}

std::vector<int64_t> epoch_indices(const Dataset& ds, const EpochPlan& plan) {
  ImageCache labels_only;  // epoch_indices reads only the labels
  std::vector<int64_t> labels;
  labels.reserve(ds.samples.size());
  for (auto& s : ds.samples) labels.push_back(s.label);
  labels_only.labels = torch::tensor(labels, torch::kLong);
  return epoch_indices(labels_only, plan);
}

}  // namespace adcorre::data
