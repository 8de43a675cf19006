// Placeholder until the c10d collective lands.
#include "adcorre/train/distributed.h"

#include "adcorre/util/error.h"

namespace adcorre::train {
std::shared_ptr<Collective> make_distributed_collective_from_env(const std::string&) {
  throw Error("--distributed is not available in this build yet");
}
}  // namespace adcorre::train
