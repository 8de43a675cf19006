// Placeholder until ResNet-50 lands (issue: models); create_model reports it clearly.
#include "adcorre/models/fer_model.h"
#include "adcorre/util/error.h"

namespace adcorre::models {
FerModel create_resnet50_model(const ModelConfig&) { throw Error("arch resnet50 is not available in this build yet"); }
}  // namespace adcorre::models
