// Placeholder until infer's face detectors land.
#include "adcorre/eval/eval_detect.h"

#include "adcorre/util/error.h"

namespace adcorre::eval {
data::ImageCache cache_with_detection(const data::Dataset&, const models::ModelConfig&, const std::string& detector) {
  throw Error("--detect " + detector + " is not available in this build yet");
}
}  // namespace adcorre::eval
