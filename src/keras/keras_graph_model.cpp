// Placeholder until the Keras import lands; create_model reports it clearly.
#include "adcorre/models/fer_model.h"
#include "adcorre/util/error.h"

namespace adcorre::models {
FerModel create_keras_graph_model(const ModelConfig&) { throw Error("arch keras_graph is not available in this build yet"); }
}  // namespace adcorre::models
