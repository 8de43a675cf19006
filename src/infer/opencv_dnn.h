// Internal: an in-memory ONNX model as an OpenCV DNN network on the CPU, the
// one way adcorre makes its OpenCV DNN nets (BlazeFace, the few-face
// classifier). Throws adcorre::Error naming `what` when OpenCV does not read
// the bytes. A Net is not thread-safe: one per thread or detector.
#pragma once
#include <string>

#include <opencv2/dnn/dnn.hpp>

#include "adcorre/util/error.h"

namespace adcorre::infer::detail {

inline cv::dnn::Net opencv_cpu_net(const std::string& onnx, const std::string& what) {
  cv::dnn::Net net;
  try {
    net = cv::dnn::readNetFromONNX(onnx.data(), onnx.size());
  } catch (const cv::Exception& e) {
    throw Error(what + ": OpenCV DNN did not take its ONNX form (" + std::string(e.what()) + ")");
  }
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  return net;
}

}  // namespace adcorre::infer::detail
