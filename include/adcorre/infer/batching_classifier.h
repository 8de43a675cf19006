// BatchingClassifier: faces of concurrent callers classified in shared batches.
//
// What it represents: a front for Predictor::classify that threads (the HTTP
// service's inference workers) call at once; while one batch runs, the faces
// that arrive wait and go together into the next one, so under load N
// requests cost one forward pass of N faces instead of N passes of one.
// Nothing waits for a batch to fill: an idle service classifies a lone face at
// once, exactly as Predictor::classify would (no added latency). There is no
// thread of its own: the caller that finds no batch running runs the next one
// for everyone waiting (its own faces included) and hands each caller its rows.
//
// Requires: the Predictor outlives this object.
// Ensures: classify(faces, tta) returns what predictor.classify(faces, tta)
// returns (the same rows in the same order; a different batch changes the
// floating-point sums, within 1e-5), or throws adcorre::Error for the caller
// whose arguments are bad (an empty face, an unknown tta) without failing
// the others. A failure of the batch itself is thrown to every caller in it.
// Thread-safe.
#pragma once
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace adcorre::infer {

class Predictor;

class BatchingClassifier {
 public:
  // max_batch_faces: the most faces one pass takes (a caller with more still
  // gets all of its faces in one pass of its own).
  explicit BatchingClassifier(Predictor& predictor, int max_batch_faces = 64);

  std::vector<std::vector<double>> classify(const std::vector<cv::Mat>& faces, const std::string& tta);

  struct Stats {
    long long batches = 0;       // forward passes run
    long long requests = 0;      // classify calls answered by them
    long long faces = 0;
    int largest_batch = 0;       // most callers served by one pass
  };
  Stats stats() const;

 private:
  struct Waiting;
  void run_batch(std::unique_lock<std::mutex>& lock);

  Predictor& predictor_;
  const size_t max_batch_faces_;
  mutable std::mutex mutex_;
  std::condition_variable done_;
  std::deque<Waiting*> pending_;
  bool running_ = false;
  Stats stats_;
};

}  // namespace adcorre::infer
