// ConfusionWindow: the (ground truth, prediction) pairs of the most recent N
// training samples, and the row-normalised confusion matrix M they give.
//
// Represents: a ring buffer of at most `capacity` pairs plus their C x C counts,
//   kept in step (recording a pair past capacity evicts the oldest one).
// Requires: 0 <= label, prediction < num_classes.
// Ensures:  matrix()[g][p] = share of the class-g samples in the window that
//   were predicted p; a class with no sample in the window has a zero row.
//   save()/load() restore the window exactly (order included), so a resumed
//   training run computes the same adaptive weights as an uninterrupted one.
//   Distributed training sums counts() over ranks and builds M with
//   matrix_from_counts(), so every rank uses the global matrix.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace adcorre::loss {

class ConfusionWindow {
 public:
  ConfusionWindow(int num_classes, int capacity);

  // Records one batch: labels and predictions are int64 tensors [B] on any device.
  void record(const at::Tensor& labels, const at::Tensor& predictions);
  void record(const std::vector<int64_t>& labels, const std::vector<int64_t>& predictions);

  // C x C counts as float64 tensor (CPU).
  at::Tensor counts() const;
  // Row-normalised M (float64, CPU) of this window's counts.
  at::Tensor matrix() const;
  // Row-normalised M from any counts (e.g. summed over ranks).
  static at::Tensor matrix_from_counts(const at::Tensor& counts);

  int num_classes() const { return num_classes_; }
  int capacity() const { return capacity_; }
  int64_t size() const { return static_cast<int64_t>(size_); }
  void clear();

  // Exact state as an int64 tensor (capacity, C, head, size, pairs...).
  at::Tensor state() const;
  void load_state(const at::Tensor& state);

 private:
  void push(int64_t gt, int64_t pred);
  int num_classes_;
  int capacity_;
  std::vector<int64_t> gt_, pred_;  // ring buffer storage
  size_t head_ = 0;                 // index of the oldest pair
  size_t size_ = 0;
  std::vector<int64_t> counts_;     // C*C
};

}  // namespace adcorre::loss
