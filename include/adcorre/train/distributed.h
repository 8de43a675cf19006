// Data-parallel training on PyTorch's own distributed engine (c10d): a
// TCPStore rendezvous and ProcessGroupGloo on CPU (ProcessGroupNCCL where the
// LibTorch is a CUDA build), configured by the environment torchrun uses:
// RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK.
#pragma once
#include <memory>
#include <string>

#include "adcorre/train/collective.h"

namespace adcorre::train {

// Throws adcorre::Error naming the missing/bad variable, or when this build
// has no c10d support.
std::shared_ptr<Collective> make_distributed_collective_from_env(const std::string& device);

}  // namespace adcorre::train
