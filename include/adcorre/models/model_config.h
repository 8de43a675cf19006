// ModelConfig: everything about a model that is not a weight. It travels
// inside every model file (as JSON) and decides preprocessing everywhere, so
// train, eval, predict and serve can never disagree about input size,
// channels, normalisation or class order. No torch in this header.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace adcorre::models {

struct ModelConfig {
  // Backbone family: "xception" (scaled by the fields below), "resnet50",
  // "keras_graph" (an imported Keras functional graph held in `graph`), or
  // "ensemble" (the models in `members` answering as one; see
  // models/ensemble_model.h).
  std::string arch = "xception";
  std::string preset;  // the preset name it was made from ("" when custom)

  // Input.
  int input_size = 48;           // square H = W
  int in_channels = 1;           // 1 = gray, 3 = colour
  std::string color_order = "rgb";  // for 3 channels: "rgb" or "bgr"
  // Pixel normalisation: x = (pixel / 255 - mean[c]) / std[c].
  std::vector<double> mean{0.5};
  std::vector<double> std{0.5};

  // Xception scaling (see models/xception.h).
  double width = 1.0;            // channel multiplier (rounded to multiples of 8)
  int stem_conv1 = 32, stem_stride1 = 2;
  int stem_conv2 = 64, stem_stride2 = 1;
  std::string stem_padding = "valid";     // Keras: valid; compact: same
  std::vector<int> entry_blocks{128, 256, 728};
  int middle_blocks = 8;
  int exit_block = 1024;                  // 0: no exit residual block
  std::vector<int> exit_convs{1536, 2048};
  double bn_eps = 1e-3;                   // Keras' BatchNormalization defaults
  double bn_momentum = 0.01;              // PyTorch convention (= 1 - Keras' 0.99)

  // Ad-Corre head: k embeddings of size d, dropout, C logits.
  int k = 7;
  int d = 256;
  double dropout = 0.5;
  std::vector<std::string> class_names{"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"};

  // Arch-specific payload (Keras graph JSON, etc.).
  nlohmann::json graph;
  // arch "ensemble": one config per member (none of them an ensemble); they
  // share this config's input fields and class_names.
  std::vector<ModelConfig> members;
  // Provenance: dataset, epochs, metrics, command, date, ...
  nlohmann::json provenance = nlohmann::json::object();

  int num_classes() const { return static_cast<int>(class_names.size()); }

  nlohmann::json to_json() const;
  // Parses and validates; throws adcorre::Error naming the bad field.
  static ModelConfig from_json(const nlohmann::json& j);
  void validate() const;
};

// Named presets: "xception" (the paper's: 224x224x3, k 7, d 256),
// "fer-compact" (48x48 gray, chosen by measurement, see docs/models.md),
// "fer-tiny" (for tests and smoke runs), "resnet50" (torchvision-style
// ResNet-50 with the paper's head, 224x224x3). Throws adcorre::Error listing the
// known names for an unknown one.
ModelConfig preset(const std::string& name);
std::vector<std::string> preset_names();

}  // namespace adcorre::models
