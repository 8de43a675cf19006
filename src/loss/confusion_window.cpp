#include "adcorre/loss/confusion_window.h"

#include <torch/torch.h>

#include "adcorre/util/error.h"

namespace adcorre::loss {

ConfusionWindow::ConfusionWindow(int num_classes, int capacity)
    : num_classes_(num_classes), capacity_(capacity) {
  check(num_classes > 0, "confusion window: number of classes must be > 0");
  check(capacity > 0, "confusion window: length must be > 0");
  gt_.assign(capacity, 0);
  pred_.assign(capacity, 0);
  counts_.assign(static_cast<size_t>(num_classes) * num_classes, 0);
}

void ConfusionWindow::clear() {
  head_ = size_ = 0;
  std::fill(counts_.begin(), counts_.end(), 0);
}

void ConfusionWindow::push(int64_t g, int64_t p) {
  check(g >= 0 && g < num_classes_ && p >= 0 && p < num_classes_,
        "confusion window: label " + std::to_string(g) + " / prediction " + std::to_string(p) +
            " out of range 0.." + std::to_string(num_classes_ - 1));
  if (size_ == static_cast<size_t>(capacity_)) {  // evict the oldest pair
    counts_[gt_[head_] * num_classes_ + pred_[head_]]--;
    gt_[head_] = g;
    pred_[head_] = p;
    head_ = (head_ + 1) % capacity_;
  } else {
    size_t slot = (head_ + size_) % capacity_;
    gt_[slot] = g;
    pred_[slot] = p;
    size_++;
  }
  counts_[g * num_classes_ + p]++;
}

void ConfusionWindow::record(const std::vector<int64_t>& labels, const std::vector<int64_t>& preds) {
  check(labels.size() == preds.size(), "confusion window: labels and predictions differ in length");
  for (size_t i = 0; i < labels.size(); ++i) push(labels[i], preds[i]);
}

void ConfusionWindow::record(const at::Tensor& labels, const at::Tensor& preds) {
  auto l = labels.to(torch::kCPU, torch::kLong).contiguous();
  auto p = preds.to(torch::kCPU, torch::kLong).contiguous();
  check(l.numel() == p.numel(), "confusion window: labels and predictions differ in length");
  const int64_t* lp = l.data_ptr<int64_t>();
  const int64_t* pp = p.data_ptr<int64_t>();
  for (int64_t i = 0; i < l.numel(); ++i) push(lp[i], pp[i]);
}

at::Tensor ConfusionWindow::counts() const {
  return torch::tensor(counts_, torch::kLong).to(torch::kDouble).view({num_classes_, num_classes_});
}

at::Tensor ConfusionWindow::matrix_from_counts(const at::Tensor& counts) {
  auto c = counts.to(torch::kDouble);
  auto rows = c.sum(1, /*keepdim=*/true);
  // A class with no sample in the window keeps a zero row (not NaN).
  return torch::where(rows > 0, c / rows.clamp_min(1), torch::zeros_like(c));
}

at::Tensor ConfusionWindow::matrix() const { return matrix_from_counts(counts()); }

at::Tensor ConfusionWindow::state() const {
  std::vector<int64_t> s{capacity_, num_classes_, static_cast<int64_t>(head_), static_cast<int64_t>(size_)};
  s.insert(s.end(), gt_.begin(), gt_.end());
  s.insert(s.end(), pred_.begin(), pred_.end());
  return torch::tensor(s, torch::kLong);
}

void ConfusionWindow::load_state(const at::Tensor& state) {
  auto s = state.to(torch::kCPU, torch::kLong).contiguous();
  check(s.dim() == 1 && s.numel() >= 4, "confusion window state: malformed");
  const int64_t* p = s.data_ptr<int64_t>();
  check(p[0] == capacity_ && p[1] == num_classes_,
        "confusion window state: saved for window " + std::to_string(p[0]) + " / " + std::to_string(p[1]) +
            " classes, but this run uses " + std::to_string(capacity_) + " / " + std::to_string(num_classes_));
  check(s.numel() == 4 + 2 * capacity_, "confusion window state: wrong length");
  head_ = static_cast<size_t>(p[2]);
  size_ = static_cast<size_t>(p[3]);
  check(head_ < static_cast<size_t>(capacity_) && size_ <= static_cast<size_t>(capacity_),
        "confusion window state: head/size out of range");
  gt_.assign(p + 4, p + 4 + capacity_);
  pred_.assign(p + 4 + capacity_, p + 4 + 2 * capacity_);
  std::fill(counts_.begin(), counts_.end(), 0);
  for (size_t i = 0; i < size_; ++i) {
    size_t slot = (head_ + i) % capacity_;
    check(gt_[slot] >= 0 && gt_[slot] < num_classes_ && pred_[slot] >= 0 && pred_[slot] < num_classes_,
          "confusion window state: class out of range");
    counts_[gt_[slot] * num_classes_ + pred_[slot]]++;
  }
}

}  // namespace adcorre::loss
