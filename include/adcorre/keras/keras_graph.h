// A Keras model graph (the model_config JSON of a functional Model /
// Functional, or a Sequential) and the generic adcorre module that runs it.
//
// Supported layers: InputLayer, Conv2D, SeparableConv2D, DepthwiseConv2D,
// BatchNormalization, Activation, ReLU, LeakyReLU, Softmax, MaxPooling2D,
// AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, ZeroPadding2D,
// Add, Concatenate, Dense, Dropout, Flatten, and Lambda / TFOpLambda layers
// that are recognisably an L2 normalisation along the last axis. Anything else
// (and channels_first, nested models, Dense on 4-D tensors) is an adcorre::Error
// naming the layer. Activations: linear, relu, softmax, sigmoid, tanh, elu,
// selu, softplus, softsign, hard_sigmoid, swish, exponential.
//
// Semantics are Keras/TensorFlow's exactly: NHWC kernels converted to NCHW,
// TensorFlow 'same' padding (the odd extra row/column at the bottom/right),
// -inf padding for max pooling, 'same' average pooling dividing by the real
// (unpadded) pixel count, BN epsilon from the config, Flatten in NHWC order,
// l2_normalize = x / sqrt(max(sum x^2, 1e-12)).
//
// The module (a models::FerModelImpl) takes NCHW input. Its logits are the
// output of the model's first output layer, taken before its softmax when the
// model ends in one (so softmax(logits) is Keras' prediction); other outputs
// that are L2 normalisations become the embeddings [k, B, d]. Each layer with
// weights is a submodule named after the Keras layer (characters other than
// [A-Za-z0-9_] become '_'), with parameters weight, bias, depthwise_weight,
// pointwise_weight and buffers running_mean, running_var, so
// models::save_model / load_model round-trip it.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adcorre/keras/keras_file.h"
#include "adcorre/models/fer_model.h"
#include "adcorre/models/model_config.h"

namespace adcorre::keras {

struct NodeRef {
  std::string layer;
  int node = 0;
  int tensor = 0;
  nlohmann::json kwargs;  // call arguments (TFOpLambda keeps axis etc. here)
};

struct GraphLayer {
  std::string name, class_name;
  nlohmann::json config;
  std::vector<std::vector<NodeRef>> nodes;  // the inputs of each call of the layer
};

struct KerasGraph {
  std::vector<GraphLayer> layers;  // in the config's order
  std::vector<NodeRef> inputs, outputs;
  const GraphLayer* find(const std::string& name) const;
  // The InputLayer's shape without the batch: {H, W, C}, -1 for None.
  std::vector<int64_t> input_shape() const;
};

// Parses model_config ({"class_name": "Model" | "Functional" | "Sequential",
// "config": ...}); Sequential models become a chain. Throws adcorre::Error
// naming the field or layer at fault, and for an unsupported layer class.
KerasGraph parse_keras_graph(const nlohmann::json& model_config);

std::vector<std::string> supported_layer_classes();

// True when a Lambda / TFOpLambda layer computes an L2 normalisation
// (l2_normalize in its serialized code or function name).
bool is_l2_normalize_layer(const GraphLayer& layer, const nlohmann::json& kwargs = nullptr);

// The generic module for a config with arch "keras_graph" (config.graph holds
// the model_config JSON); random weights until load_graph_weights.
models::FerModel make_graph_model(const models::ModelConfig& config);

// Copies the Keras file's weights into a module from make_graph_model. Every
// weighted layer of the graph must be in the file with the right shapes.
void load_graph_weights(models::FerModelImpl& net, const KerasFile& file);

}  // namespace adcorre::keras
