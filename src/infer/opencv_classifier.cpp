#include "infer/opencv_classifier.h"
#include "infer/opencv_dnn.h"

#include <cstdlib>

#include <torch/torch.h>

#include "adcorre/onnx/onnx_export.h"
#include "adcorre/util/error.h"

namespace adcorre::infer::detail {

bool opencv_classifier_enabled() {
  const char* v = std::getenv("ADCORRE_CLASSIFIER_RUNTIME");
  if (!v || !*v || std::string(v) == "opencv") return true;
  if (std::string(v) == "libtorch") return false;
  throw Error("ADCORRE_CLASSIFIER_RUNTIME must be opencv or libtorch (got '" + std::string(v) + "')");
}

OpenCvClassifier::OpenCvClassifier(std::string onnx_bytes, int num_classes)
    : onnx_(std::move(onnx_bytes)), num_classes_(num_classes) {}

std::unique_ptr<cv::dnn::Net> OpenCvClassifier::make_net() const {
  return std::make_unique<cv::dnn::Net>(opencv_cpu_net(onnx_, "the model's classifier"));
}

std::unique_ptr<OpenCvClassifier> OpenCvClassifier::try_make(const models::ModelConfig& config, models::FerModelImpl& net,
                                                             std::string* why_not) {
  try {
    onnx::OnnxExportOptions o;
    o.dynamic_batch = true;
    std::unique_ptr<OpenCvClassifier> c(new OpenCvClassifier(onnx::onnx_model_bytes(config, net, o), config.num_classes()));
    c->idle_.push_back(c->make_net());  // OpenCV reads it now or never
    return c;
  } catch (const std::exception& e) {
    if (why_not) *why_not = e.what();
    return nullptr;
  }
}

torch::Tensor OpenCvClassifier::probabilities(const torch::Tensor& x) {
  check(x.dim() == 4 && x.is_cpu() && x.size(0) >= 1, "OpenCV classifier: the input must be a CPU tensor [N, C, H, W]");
  const torch::Tensor in = x.to(torch::kFloat).contiguous();  // NCHW, as the ONNX graph reads it
  std::unique_ptr<cv::dnn::Net> net;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!idle_.empty()) {
      net = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!net) net = make_net();  // a concurrent caller: a Net of its own
  torch::Tensor out;
  try {
    const int sizes[4] = {static_cast<int>(in.size(0)), static_cast<int>(in.size(1)), static_cast<int>(in.size(2)),
                          static_cast<int>(in.size(3))};
    net->setInput(cv::Mat(4, sizes, CV_32F, const_cast<float*>(in.data_ptr<float>())));
    cv::Mat p = net->forward();
    check(p.type() == CV_32F && p.total() == static_cast<size_t>(in.size(0)) * num_classes_,
          "OpenCV classifier: the network gave " + std::to_string(p.total()) + " values for " + std::to_string(in.size(0)) +
              " faces of " + std::to_string(num_classes_) + " classes");
    out = torch::from_blob(p.ptr<float>(), {in.size(0), num_classes_}, torch::kFloat).clone();
  } catch (const cv::Exception& e) {
    throw Error("OpenCV classifier: " + std::string(e.what()));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  idle_.push_back(std::move(net));
  return out;
}

}  // namespace adcorre::infer::detail
