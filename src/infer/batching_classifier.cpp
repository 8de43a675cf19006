#include "adcorre/infer/batching_classifier.h"

#include <algorithm>
#include <exception>

#include "adcorre/infer/predictor.h"
#include "adcorre/util/error.h"

namespace adcorre::infer {

struct BatchingClassifier::Waiting {
  const std::vector<cv::Mat>* faces;
  const std::string* tta;
  std::vector<std::vector<double>> probs;
  std::exception_ptr error;
  bool done = false;
};

BatchingClassifier::BatchingClassifier(Predictor& predictor, int max_batch_faces)
    : predictor_(predictor), max_batch_faces_(static_cast<size_t>(std::max(1, max_batch_faces))) {}

std::vector<std::vector<double>> BatchingClassifier::classify(const std::vector<cv::Mat>& faces, const std::string& tta) {
  // A caller's own bad arguments fail that caller only, before it joins a batch.
  check(tta == "none" || tta == "flip", "tta must be none or flip (got '" + tta + "')");
  for (size_t i = 0; i < faces.size(); ++i) check(!faces[i].empty(), "classify: face " + std::to_string(i) + " is an empty image");
  if (faces.empty()) return {};

  Waiting me{&faces, &tta, {}, nullptr, false};
  std::unique_lock<std::mutex> lock(mutex_);
  pending_.push_back(&me);
  while (!me.done) {
    if (!running_) {
      run_batch(lock);  // the next batch, for everyone waiting; may not hold my faces
    } else {
      done_.wait(lock);
    }
  }
  lock.unlock();
  if (me.error) std::rethrow_exception(me.error);
  return std::move(me.probs);
}

// Called with the lock held and no batch running; returns with the lock held.
void BatchingClassifier::run_batch(std::unique_lock<std::mutex>& lock) {
  // Oldest caller first; then every waiting caller with the same tta whose
  // faces still fit. A caller over the limit alone still gets its own pass.
  std::vector<Waiting*> batch;
  size_t n = 0;
  const std::string tta = *pending_.front()->tta;
  for (auto it = pending_.begin(); it != pending_.end();) {
    const size_t k = (*it)->faces->size();
    if (*(*it)->tta == tta && (batch.empty() || n + k <= max_batch_faces_)) {
      batch.push_back(*it);
      n += k;
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  running_ = true;
  lock.unlock();

  std::exception_ptr error;
  std::vector<std::vector<double>> probs;
  try {
    std::vector<cv::Mat> all;
    all.reserve(n);
    for (const Waiting* w : batch) all.insert(all.end(), w->faces->begin(), w->faces->end());
    probs = predictor_.classify(all, tta);
    check(probs.size() == n, "classify returned " + std::to_string(probs.size()) + " rows for " + std::to_string(n) + " faces");
  } catch (...) {
    error = std::current_exception();
  }

  lock.lock();
  size_t row = 0;
  for (Waiting* w : batch) {
    const size_t k = w->faces->size();
    if (error) {
      w->error = error;
    } else {
      w->probs.assign(std::make_move_iterator(probs.begin() + static_cast<long>(row)),
                      std::make_move_iterator(probs.begin() + static_cast<long>(row + k)));
    }
    row += k;
    w->done = true;
  }
  running_ = false;
  ++stats_.batches;
  stats_.requests += static_cast<long long>(batch.size());
  stats_.faces += static_cast<long long>(n);
  stats_.largest_batch = std::max(stats_.largest_batch, static_cast<int>(batch.size()));
  done_.notify_all();  // the callers served, and the next leader
}

BatchingClassifier::Stats BatchingClassifier::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace adcorre::infer
