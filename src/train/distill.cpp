#include "adcorre/train/distill.h"

#include <torch/torch.h>

#include "adcorre/models/model_file.h"
#include "adcorre/util/error.h"

namespace adcorre::train {

struct Teacher::Impl {
  std::string path, tta;
  models::LoadedModel model;
};

namespace {

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::string joined(const std::vector<double>& v) {
  std::string s;
  for (double x : v) s += (s.empty() ? "" : ", ") + std::to_string(x);
  return s;
}

}  // namespace

Teacher::Teacher(const std::string& path, const std::string& tta, const models::ModelConfig& student,
                 const std::string& device)
    : impl_(std::make_shared<Impl>()) {
  if (tta != "none" && tta != "flip") throw Error("train option 'teacher_tta' must be none or flip (got '" + tta + "')");
  impl_->path = path;
  impl_->tta = tta;
  impl_->model = models::load_model_for_inference(path, device);
  const auto& t = impl_->model.config;
  const std::string who = "teacher " + path;
  if (t.class_names != student.class_names)
    throw Error(who + " has classes [" + joined(t.class_names) + "] but the training data has [" +
                joined(student.class_names) + "]; a teacher must answer for the same classes in the same order");
  if (t.input_size != student.input_size)
    throw Error(who + " takes " + std::to_string(t.input_size) + "x" + std::to_string(t.input_size) +
                " inputs but the network being trained takes " + std::to_string(student.input_size) + "x" +
                std::to_string(student.input_size) + " (--input-size)");
  if (t.in_channels != student.in_channels)
    throw Error(who + " takes " + std::to_string(t.in_channels) + " channel(s) but the network being trained takes " +
                std::to_string(student.in_channels) + " (choose a --preset with the teacher's input)");
  if (t.in_channels == 3 && t.color_order != student.color_order)
    throw Error(who + " reads " + t.color_order + " images but the network being trained reads " + student.color_order);
  if (t.mean != student.mean || t.std != student.std)
    throw Error(who + " normalises with mean [" + joined(t.mean) + "] std [" + joined(t.std) +
                "] but the network being trained with mean [" + joined(student.mean) + "] std [" + joined(student.std) +
                "]");
}

at::Tensor Teacher::log_probs(const at::Tensor& x) const {
  torch::NoGradGuard ng;
  auto& net = *impl_->model.net;
  auto logp = torch::log_softmax(net.forward(x).logits, 1);
  if (impl_->tta == "flip") {
    auto mirrored = x.flip({3});
    if (x.is_cpu()) mirrored = mirrored.contiguous(torch::MemoryFormat::ChannelsLast);
    auto logp_flip = torch::log_softmax(net.forward(mirrored).logits, 1);
    // log((p + q) / 2), stable.
    logp = torch::logsumexp(torch::stack({logp, logp_flip}), 0) - std::log(2.0);
  }
  return logp;
}

const std::string& Teacher::path() const { return impl_->path; }
const std::string& Teacher::checksum() const { return impl_->model.checksum; }

at::Tensor distillation_loss(const at::Tensor& student_logits, const at::Tensor& teacher_log_probs,
                             double temperature) {
  check(temperature > 0, "distillation temperature must be > 0");
  check(student_logits.sizes() == teacher_log_probs.sizes(), "distillation: student and teacher outputs differ in shape");
  auto log_t = torch::log_softmax(teacher_log_probs.detach() / temperature, 1);
  auto log_s = torch::log_softmax(student_logits / temperature, 1);
  return (log_t.exp() * (log_t - log_s)).sum(1).mean() * (temperature * temperature);
}

}  // namespace adcorre::train
