// ONNX export of an adcorre model: one self-contained .onnx file that gives
// the model's class probabilities, for OpenCV DNN, onnxruntime and the like.
//
// What it represents: the network in eval mode (BatchNorm folded into the
// preceding convolution, dropout gone) as an ONNX opset-11 graph with
//   input  "input":         float [N, C, H, W], H = W = config.input_size,
//                            C = config.in_channels (3: config.color_order),
//                            x = (pixel / 255 - mean[c]) / std[c] -- exactly
//                            what data::images_to_input makes; detection,
//                            cropping and resizing stay outside the graph;
//   output "probabilities": float [N, num_classes], softmax of the logits, in
//                            config.class_names order (what `predict` reports).
// An ensemble is one graph: the mean of its members' softmax outputs.
// TensorFlow 'same' padding (asymmetric for stride 2) becomes explicit pads.
// The model's config JSON is stored in the metadata under "adcorre_config".
// Only operators OpenCV 4.6's ONNX importer runs are used (Conv, Relu, Add,
// MaxPool, GlobalAveragePool, Flatten, Gemm, Mul, Sqrt, Div, Concat, Softmax,
// Sum).
//
// Requires: arch xception or resnet50 (any preset or scaling), or an ensemble
// of those; other archs (an imported keras_graph) throw adcorre::Error.
// Ensures: write_onnx writes atomically: on any error no file (and no temp
// file) is left at `path`, and the error names `path`.
// No torch in this header.
#pragma once
#include <string>

#include "adcorre/models/model_config.h"

namespace adcorre::models {
class FerModelImpl;
}

namespace adcorre::onnx {

struct OnnxExportOptions {
  // true: the batch dimension is named "N" (any batch size); false: fixed.
  bool dynamic_batch = false;
  int batch = 1;  // the fixed batch size (>= 1), when !dynamic_batch
};

// The serialised ONNX ModelProto.
std::string onnx_model_bytes(const models::ModelConfig& config, models::FerModelImpl& net,
                             const OnnxExportOptions& options = {});

// onnx_model_bytes written atomically to `path`.
void write_onnx(const std::string& path, const models::ModelConfig& config, models::FerModelImpl& net,
                const OnnxExportOptions& options = {});

}  // namespace adcorre::onnx
