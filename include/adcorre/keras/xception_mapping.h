// Keras Xception <-> adcorre's own Xception (models/xception.h) + Ad-Corre
// head (models/adcorre_head.h), by layer names.
//
// adcorre's modules carry Keras' layer names, so most parameters map by name:
//   backbone.<L>.conv.weight           <- L/kernel            (block1_conv1, block1_conv2)
//   backbone.<L>.depthwise.conv.weight <- L/depthwise_kernel  (blockN_sepconvM)
//   backbone.<L>.pointwise.weight      <- L/pointwise_kernel
//   backbone.<L>_bn.{weight, bias, running_mean, running_var}
//                                      <- <L>_bn/{gamma, beta, moving_mean, moving_variance}
// Keras leaves the residual shortcuts unnamed (conv2d / conv2d_1 / ..., and
// batch_normalization / ...): backbone.blockN_shortcut(_bn) takes the i-th
// unnamed 1x1 Conv2D (BatchNormalization) in the file's layer order, i = the
// rank of block N among the blocks with a shortcut (a layer actually named
// blockN_shortcut(_bn) wins). The head maps from the graph of a full model:
//   head.embed.i     <- the Dense feeding the i-th input of the Concatenate
//                       (through its l2_normalize Lambda)
//   head.classifier  <- the final Dense (softmax) after the Dropout.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "adcorre/keras/keras_file.h"
#include "adcorre/models/fer_model.h"
#include "adcorre/models/model_file.h"

namespace adcorre::keras {

// The Ad-Corre head of a full Keras model: GlobalAveragePooling2D -> k x
// (Dense d -> l2_normalize Lambda) -> Concatenate -> [Dropout] -> Dense C.
struct AdCorreHeadLayout {
  std::vector<std::string> embed_dense;  // k Dense layer names, in Concatenate order
  std::string out_dense;
  int d = 0, classes = 0;
  double dropout = 0.0;
};

// The adcorre config (arch xception, width 1, exact channel counts) that a
// Keras Xception file describes, plus its head when it has the Ad-Corre one.
struct XceptionMatch {
  models::ModelConfig config;  // class_names are placeholders (class0, ...)
  AdCorreHeadLayout head;
  models::FerModel net;        // built from config, every weight copied from the file
};

// nullopt (and *why) when the file is not a Keras Xception with an Ad-Corre
// head whose every weight lands in adcorre's modules (the caller then uses
// the generic graph). Needs a full model (model_config). Only names and
// shapes are checked here: the importer also compares outputs with the
// generic graph.
std::optional<XceptionMatch> match_keras_xception(const KerasFile& file, std::string* why = nullptr);

// Copies the file's weights into an adcorre Xception model by the rules above.
// `head` (optional) maps the head. Shapes are checked; nothing is copied into
// a mismatched tensor. Returns what matched.
models::InitReport copy_xception_weights(models::FerModelImpl& net, const KerasFile& file,
                                         const AdCorreHeadLayout* head);

// `--init` from a Keras file: a full Keras Xception model (head included when
// it has the Ad-Corre head with matching shapes) or a weights-only file such
// as Keras' ImageNet xception_weights_tf_dim_ordering_tf_kernels_notop.h5.
// `net` must be an adcorre Xception model. Throws adcorre::Error when nothing
// of the backbone matches.
models::InitReport init_from_keras(models::FerModelImpl& net, const std::string& path);

// Writes an adcorre Xception model as a Keras (tf.keras 2.4 layout) HDF5 file:
// a full model (functional model_config laid out as keras.applications'
// Xception + the Ad-Corre head of Fard & Mahoor's code, model_weights) or,
// with weights_only, the backbone only with layer_names at the root (the
// layout of Keras' ImageNet "notop" weights).
void write_keras_xception(const std::string& path, const models::ModelConfig& config, models::FerModelImpl& net,
                          bool weights_only = false);

}  // namespace adcorre::keras
