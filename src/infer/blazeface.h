// Internal: the BlazeFace face detector (kind "blazeface"), MediaPipe's
// BlazeFace network ("back" model, 256x256 input, 896 anchors) as shipped in
// the npm package @vladmandic/human 3.3.6 (models/detectors/blazeface.*,
// compiled into the library), run by the TensorFlow.js interpreter of
// tfjs_graph.h.
//
// The picture is letterboxed onto a black square (top-left), resized to
// 256x256 RGB in [-1, 1]; each anchor's face probability is sigmoid(logit),
// its box is the anchor centre moved by the regressed offset, with the
// regressed size (Human's decoding, src/face/blazeface.ts); boxes above the
// score threshold go through weighted non-maximum suppression (IoU 0.3).
// With blazeface_tiles N > 1 the network also runs on an N x N grid of
// overlapping squares (each 1.25 x side / N), for faces too small in the
// whole view; all passes' boxes share one suppression.
#pragma once
#include <memory>
#include <vector>

#include <opencv2/core/mat.hpp>
#include <opencv2/dnn/dnn.hpp>
#include <torch/types.h>

#include "adcorre/infer/face_detector.h"
#include "infer/tfjs_graph.h"

namespace adcorre::infer::detail {

// The built-in graph, parsed once (thread-safe).
const TfjsGraph& blazeface_graph();

// The network's input for a 256x256 8-bit RGB image: [1, 256, 256, 3], x / 127.5 - 1.
torch::Tensor blazeface_input(const cv::Mat& rgb256);

// The raw outputs for that input, in anchor order (the 16x16 grid's 512 anchors,
// then the 8x8 grid's 384): logits [896] and regressors [896, 16].
std::pair<torch::Tensor, torch::Tensor> blazeface_raw(const torch::Tensor& input);

// The same network as OpenCV DNN runs it (the graph's ONNX form, tfjs_graph.h),
// which is what the detector uses: 2-4x faster than the LibTorch interpreter
// here. A Net is not thread-safe: one per detector. Setting the environment
// variable ADCORRE_BLAZEFACE_RUNTIME=libtorch makes detectors use blazeface_raw
// instead (for comparisons).
cv::dnn::Net blazeface_opencv_net();
// blazeface_raw's outputs for a 256x256 8-bit RGB picture, through `net`.
std::pair<torch::Tensor, torch::Tensor> blazeface_raw_opencv(cv::dnn::Net& net, const cv::Mat& rgb256);

// The anchor centres in input pixels [896, 2] (strides 16 and 32; 2 and 6 per cell).
torch::Tensor blazeface_anchors();

std::unique_ptr<FaceDetector> make_blazeface_detector(const DetectorOptions& opts);

}  // namespace adcorre::infer::detail
