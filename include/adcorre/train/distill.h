// Knowledge distillation for `adcorre train --teacher MODEL`.
//
// What it represents: a trained model (any adcorre model file, ensembles
// included) whose softened class probabilities are a second target for the
// network being trained. Each step the teacher scores the same augmented
// batch the student sees, and the loss becomes
//   (1 - W) * task + W * T^2 * KL(softmax(t / T) || softmax(s / T))
// with task the run's own loss (CE + Ad-Corre terms, soft labels, class
// weights), s the student's logits, t the teacher's log-probabilities, T the
// temperature and W the weight (Hinton et al. 2015; T^2 keeps the gradient's
// scale independent of T).
//
// Teacher logits: an ensemble's forward already returns the log of its
// members' averaged probabilities (models/ensemble_model.h), and a single
// network's log_softmax differs from its logits by a per-row constant, which
// softmax(. / T) ignores; so log_probs() is log_softmax(forward(x).logits)
// for both, and with tta "flip" the log of the mean of the probabilities of
// the batch and its mirror image.
//
// Requires: the teacher's class names equal the training data's, in order,
// and its input (size, channels, colour order, normalisation) equals the
// student's, since it reads the student's normalised batch; otherwise the
// constructor throws adcorre::Error naming the file and the field.
// The teacher is loaded for inference (eval mode, BatchNorm folded, no
// gradient, channels_last on CPU) and draws no random numbers, so a run with a
// teacher resumes exactly as one without.
#pragma once
#include <memory>
#include <string>

#include <ATen/core/Tensor.h>

#include "adcorre/models/model_config.h"

namespace adcorre::train {

class Teacher {
 public:
  Teacher(const std::string& path, const std::string& tta, const models::ModelConfig& student,
          const std::string& device);
  // The teacher's log-probabilities [B, C] for the student's input batch
  // `x` (normalised by the student's config), without gradient.
  at::Tensor log_probs(const at::Tensor& x) const;
  const std::string& path() const;
  // The model file's checksum (models::LoadedModel::checksum).
  const std::string& checksum() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// T^2 * KL(softmax(teacher_log_probs / T) || softmax(student_logits / T)),
// the mean over the batch (rows); differentiable in student_logits.
at::Tensor distillation_loss(const at::Tensor& student_logits, const at::Tensor& teacher_log_probs,
                             double temperature);

}  // namespace adcorre::train
