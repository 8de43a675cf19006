// Internal: a model's network run by OpenCV DNN, the path Predictor::classify
// takes for a few faces on the CPU.
//
// What it represents: the function softmax(net.forward(x).logits) of an
// inference-ready network (eval mode, BatchNorm folded or not), through its
// ONNX form (onnx::onnx_model_bytes: batch dimension free, an ensemble as one
// graph averaging its members' probabilities) and OpenCV DNN's own CPU
// kernels. Why: for one face LibTorch 1.13's layers are small enough that
// their dispatch and oneDNN's set-up cost more than the arithmetic; OpenCV
// DNN runs the same network about twice as fast there (docs/benchmarks.md,
// "classifier runtime"), while at 8 faces and more LibTorch is ahead.
// Preprocessing is not here: the input is data::images_to_input's tensor, the
// one code path every command uses.
//
// Requires: x a float CPU tensor [N, C, H, W] as data::images_to_input makes
// for the network's config, N >= 1.
// Ensures: probabilities(x) is [N, num_classes] float, equal to LibTorch's
// within 1e-5 (tests/test-predict.cpp, on a trained network and the shipped
// ensemble). try_make returns nullptr (and says why) for networks without an
// ONNX form (an imported keras_graph) or one OpenCV does not read; callers
// then keep LibTorch. Thread-safe: each call borrows a Net of its own (Nets
// are made from the same bytes as calls need them; a Net is not thread-safe).
// The environment variable ADCORRE_CLASSIFIER_RUNTIME=libtorch turns the path
// off (Predictor reads it when it is made); any other value but "opencv" is
// an error there.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <opencv2/dnn/dnn.hpp>
#include <torch/types.h>

#include "adcorre/models/model_config.h"

namespace adcorre::models {
class FerModelImpl;
}

namespace adcorre::infer::detail {

// Predictor uses OpenCV DNN for fewer faces than this (then LibTorch), from
// its second such call on (the first runs on LibTorch: predictor.cpp).
constexpr size_t kOpenCvClassifierBelow = 8;

// Whether ADCORRE_CLASSIFIER_RUNTIME allows the OpenCV path (unset or
// "opencv": yes; "libtorch": no; anything else throws adcorre::Error).
bool opencv_classifier_enabled();

class OpenCvClassifier {
 public:
  static std::unique_ptr<OpenCvClassifier> try_make(const models::ModelConfig& config, models::FerModelImpl& net,
                                                    std::string* why_not = nullptr);
  torch::Tensor probabilities(const torch::Tensor& x);

 private:
  explicit OpenCvClassifier(std::string onnx_bytes, int num_classes);
  std::unique_ptr<cv::dnn::Net> make_net() const;

  std::string onnx_;
  int num_classes_ = 0;
  std::mutex mutex_;
  std::vector<std::unique_ptr<cv::dnn::Net>> idle_;
};

}  // namespace adcorre::infer::detail
