// Importing a Keras HDF5 model into an adcorre model (config + network) that
// models::save_model writes and eval / predict / serve / info then use like
// any other.
//
// Two routes:
//  - "xception": a Keras Xception with the Ad-Corre head (Fard & Mahoor's
//    released models) becomes adcorre's own Xception + head (arch xception),
//    so `adcorre train --init` can fine-tune it. The import runs the generic
//    graph on the same weights as well and refuses the result unless both
//    give the same outputs on a random batch (max |dp| <= 1e-4);
//  - "graph": any other supported functional / Sequential graph runs through
//    the generic module (arch keras_graph, inference; see keras_graph.h).
// mode "auto" takes "xception" when the file matches it, else "graph".
//
// Class names: `classes` when given (must match the model's output count),
// else FER-2013's order for a 7-output model (with a note), else an Error.
// Names are mapped to adcorre's canonical names where known (anger -> angry).
//
// Preprocessing (--preprocess): a comma-separated list of
//   unit            x / 255                       (mean 0, std 1)
//   tf              x / 127.5 - 1                 (mean 0.5, std 0.5; Keras' Xception "tf" mode)
//   torch           ImageNet mean/std             (0.485,0.456,0.406 / 0.229,0.224,0.225)
//   caffe           BGR, x - (103.939, 116.779, 123.68) on the 0..255 scale
//   mean=A/B/C, std=A/B/C   explicit values on the 0..1 scale
//   rgb | bgr       channel order of 3-channel models
// Default: "unit" (RGB) for the Ad-Corre Xception route (the released models
// take RGB scaled to [0, 1]), "tf" for the graph route (with a note).
#pragma once
#include <string>
#include <vector>

#include "adcorre/models/fer_model.h"
#include "adcorre/models/model_config.h"

namespace adcorre::keras {

struct ImportOptions {
  std::vector<std::string> classes;
  std::string preprocess;     // "" = default for the route
  std::string mode = "auto";  // auto | xception | graph
  int input_size = 0;         // for a Keras input of unknown size
};

struct ImportResult {
  models::ModelConfig config;
  models::FerModel net;                // eval mode, CPU
  std::string mode;                    // "xception" or "graph"
  std::vector<std::string> notes;      // assumptions made, for the user
  double self_check_max_diff = -1;     // xception route: max |p_xception - p_graph|
};

// Throws adcorre::Error naming the file and the layer / field at fault: not
// HDF5, truncated, weights-only (use --init), unsupported layer, mismatched
// weights, wrong class count.
ImportResult import_keras(const std::string& path, const ImportOptions& options = {});

// Applies a --preprocess spec (see above) to `config`; throws adcorre::Error
// for an unknown word or a value count that does not fit in_channels.
void apply_preprocess(models::ModelConfig& config, const std::string& spec);

}  // namespace adcorre::keras
