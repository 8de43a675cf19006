// A Keras HDF5 file (Keras 2.0 to 2.4 / tf.keras layouts) read into memory:
//
//  - full model (model.save): root attributes keras_version, backend,
//    model_config (the JSON of a functional Model or Sequential);
//    group model_weights with attribute layer_names, one group per layer with
//    attribute weight_names, datasets at <layer>/<weight_name>;
//  - weights only (model.save_weights, e.g. Keras' ImageNet
//    xception_weights_tf_dim_ordering_tf_kernels_notop.h5): the same layer
//    groups and layer_names directly at the root, no model_config.
//
// Weights keep Keras' layouts (NHWC kernels: Conv2D (kh, kw, in, out),
// depthwise (kh, kw, in, multiplier), pointwise (1, 1, in, out), Dense
// (in, out)); converting to LibTorch layouts is the importer's job.
// A weight's `kind` is the last component of its name without ":0"
// ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance",
// "depthwise_kernel", "pointwise_kernel").
//
// Throws adcorre::Error naming the file and the layer/weight at fault for a
// missing, non-HDF5, truncated or corrupt file, or one with no Keras layout.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adcorre/keras/hdf5.h"

namespace adcorre::keras {

struct KerasWeight {
  std::string name;  // as stored, e.g. "block1_conv1/kernel:0"
  std::string kind;  // e.g. "kernel"
  hdf5::FloatArray value;
};

struct KerasFile {
  std::string path;
  std::string keras_version, backend;  // "" when the file does not say
  nlohmann::json model_config;         // {"class_name", "config"}; null for weights-only files
  std::vector<std::string> layer_names;  // every layer, in the file's order
  std::map<std::string, std::vector<KerasWeight>> weights;  // layer -> its weights, in stored order

  bool weights_only() const { return model_config.is_null(); }
  // The layer's weights ({} for a layer without weights or not in the file).
  const std::vector<KerasWeight>& layer_weights(const std::string& layer) const;
  // The weight of `kind` in `layer`, or nullptr.
  const KerasWeight* find(const std::string& layer, const std::string& kind) const;
  // Like find, but throws an Error naming the file, layer and kind when absent.
  const KerasWeight& get(const std::string& layer, const std::string& kind) const;
};

// The file is read first in a child process, so that a file on which
// libhdf5 itself crashes gets an adcorre::Error instead of killing the caller
// (ADCORRE_HDF5_IN_PROCESS=1 skips that check).
KerasFile read_keras_file(const std::string& path);

namespace detail {
// The same read, in this process only (what the child process runs; for
// looking at libhdf5's own crashes).
KerasFile read_keras_file_in_process(const std::string& path);
}  // namespace detail

// "kernel" from "block1_conv1_1/kernel:0".
std::string weight_kind(const std::string& weight_name);

}  // namespace adcorre::keras
