// Internal: a small interpreter for TensorFlow.js graph models (model.json +
// weight shards), enough for convolutional detectors such as BlazeFace.
//
// What it represents: the graph's nodes in an executable order, with their
// constant tensors, run with LibTorch operators (NCHW inside, NHWC at the
// edges, as TensorFlow defines the graph).
// Supported ops: Placeholder, Const, Identity, _FusedConv2D (BiasAdd with an
// optional Relu/Relu6), Conv2D, DepthwiseConv2dNative, AddV2/Add, Relu, Relu6,
// MaxPool, Pad, Reshape; SAME/VALID padding, NHWC, float32 and int32
// weights, no quantization.
// Requires: a graph-model JSON and its weight bytes (all shards concatenated
//           in manifest order).
// Ensures:  construction fails with adcorre::Error naming the model and the
//           node for anything else (an unknown op, attribute or dtype, weights
//           shorter or longer than the manifest says, a dangling input); run()
//           is const and thread-safe.
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <torch/types.h>

namespace adcorre::infer::detail {

class TfjsGraph {
 public:
  // `name` is used in error messages (a file name, or "built-in blazeface").
  TfjsGraph(std::string_view model_json, std::string_view weights, std::string name);

  // Runs the graph on `input` (NHWC float32, the Placeholder's shape) and
  // returns the named outputs (4-D results in NHWC). Throws adcorre::Error for
  // an unknown output name or an input of the wrong shape.
  std::vector<torch::Tensor> run(const torch::Tensor& input, const std::vector<std::string>& outputs) const;

  const std::vector<int64_t>& input_shape() const { return input_shape_; }

  // The same computation as an ONNX model (opset 10, NCHW, batch 1), for
  // OpenCV DNN, which runs BlazeFace's small convolutions several times faster
  // than LibTorch 1.13 on a CPU (docs/benchmarks.md). Each asked output is
  // traced back through trailing Identity/Reshape nodes: the ONNX model's
  // outputs[i] is the 4-D NCHW tensor feeding them, and reshapes[i] the
  // shape to give it after permuting to NHWC (empty: none), so that
  // permute + reshape of ONNX output i equals run()'s output i.
  // Throws adcorre::Error naming the node for anything the ONNX form does not
  // carry (a Reshape inside the graph, a constant used as data).
  struct Onnx {
    std::string model;  // serialized ModelProto
    std::vector<std::string> outputs;
    std::vector<std::vector<int64_t>> reshapes;
  };
  Onnx to_onnx(const std::vector<std::string>& outputs) const;

 private:
  struct Node {
    std::string name, op;
    std::vector<int> inputs;  // indices into nodes_
    // Conv / pool parameters (NCHW order where relevant).
    std::vector<int64_t> strides{1, 1}, dilations{1, 1}, ksize{1, 1};
    bool same = false;
    int activation = 0;  // 0 none, 1 relu, 2 relu6
    torch::Tensor weight, bias, value;  // value: a Const's tensor (weights already in torch layout)
  };
  torch::Tensor eval_node(const Node& n, const std::vector<torch::Tensor>& vals, const std::vector<bool>& nchw,
                          bool& out_nchw) const;

  std::string name_;
  std::vector<Node> nodes_;  // topologically ordered
  std::map<std::string, int> index_;
  int input_node_ = -1;
  std::vector<int64_t> input_shape_;
};

}  // namespace adcorre::infer::detail
