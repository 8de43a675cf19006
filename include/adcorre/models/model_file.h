// The adcorre model file: ONE file that holds the weights and the JSON
// ModelConfig. It is a TorchScript archive (zip) written by
// torch::serialize::OutputArchive, so Python can read it with
// torch.jit.load(path): the weights are the module's parameters/buffers
// (under "model.") and the config is the string attribute "config_json".
//
// save_model writes atomically (temp file + rename). Weights are stored in
// float32, or in float16 (half the size) when asked; load_model reads either
// into float32 tensors, and the checksum covers the values as loaded.
// load_model refuses a truncated, corrupt or mismatched file with an
// adcorre::Error that names the file and what is wrong: the zip container's
// CRC-32s are verified before anything is parsed (fs::load_archive_verified),
// the checksum after. Weights with NaN/Inf values are refused on both sides:
// save_model will not write them and load_model will not return them.
#pragma once
#include <string>

#include "adcorre/models/fer_model.h"
#include "adcorre/models/model_paths.h"
#include "adcorre/models/weight_storage.h"

namespace adcorre::models {

struct LoadedModel {
  ModelConfig config;
  FerModel net;
  // The file's checksum of its config and weights (16 hex digits): two files
  // with the same checksum hold the same model.
  std::string checksum;
};

// The name of the first parameter or buffer of `net` with a NaN or infinite
// value, or "" when all are finite.
std::string first_non_finite_tensor(FerModelImpl& net);

void save_model(const std::string& path, const ModelConfig& config, FerModelImpl& net,
                WeightStorage storage = WeightStorage::Float32);
// Loads, moves to `device`, channels_last on CPU, eval mode.
LoadedModel load_model(const std::string& path, const std::string& device = "cpu");
// load_model, then BatchNorm folded into the convolutions (models/bn_fold.h):
// what predict, eval, serve, embed and the library run. Not for training,
// fine-tuning or saving (save_model refuses a folded network).
LoadedModel load_model_for_inference(const std::string& path, const std::string& device = "cpu");
// Reads only the config (fast; for `info`).
ModelConfig read_model_config(const std::string& path);

// default_model_path and resolve_model_path: adcorre/models/model_paths.h.

// Copies parameters from `source` (another model file or a state saved with
// torch::save) into `net` by name and shape; returns a report of what matched.
// A Keras HDF5 file (Keras' ImageNet Xception weights, a Keras Ad-Corre model)
// initialises an adcorre Xception through keras::init_from_keras.
// Throws adcorre::Error naming the file when it is an ensemble (its tensors
// belong to several networks) or when no parameter of the backbone matches
// (another architecture); tensors with another shape (a new head) are reported.
struct InitReport { int matched = 0; std::vector<std::string> missing, unexpected, shape_mismatch; };
InitReport init_from(FerModelImpl& net, const std::string& source_path);

}  // namespace adcorre::models
