// Data-parallel training on PyTorch's own distributed engine (c10d): a
// TCPStore rendezvous and ProcessGroupGloo on CPU (ProcessGroupNCCL where the
// LibTorch is a CUDA build with NCCL), configured by the environment torchrun
// uses: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK.
//
// Represents: this process's membership of a group of WORLD_SIZE processes.
//   Rank 0 hosts the TCPStore at MASTER_ADDR:MASTER_PORT; every rank connects
//   to it and the process group is built over it.
// Requires: every rank calls the collectives in the same order with tensors of
//   the same count, shapes and dtypes (the trainer guarantees this).
// Ensures:
//   - average_gradients(): bucketed all-reduce (tensors flattened into buffers
//     of about `bucket_mb`, grouped by dtype and device; all buckets are in
//     flight at once), then divided by the world size; every rank ends with
//     the same values.
//   - broadcast(): rank 0's values everywhere (bucketed the same way).
//   - sum(): in-place all-reduce sum of one tensor (CPU tensors are staged on
//     the GPU for NCCL).
//   - Failure is bounded: a collective that does not complete within
//     `timeout_s` (a rank died, hung, or the network broke), and the
//     rendezvous when not every rank arrives within `timeout_s`, throw
//     adcorre::Error naming this rank, the operation and the likely cause. A
//     peer that dies is usually seen at once (its sockets close); a peer that
//     hangs is seen at the timeout. With NCCL the same bound comes from
//     NCCL_ASYNC_ERROR_HANDLING (set to 1 unless already set).
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "adcorre/train/collective.h"

namespace adcorre::train {

struct DistributedEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// Reads RANK and WORLD_SIZE (required), LOCAL_RANK (default RANK),
// MASTER_ADDR (default 127.0.0.1), MASTER_PORT (default 29500). Throws
// adcorre::Error naming the missing or bad variable.
DistributedEnv distributed_env_from_environment();

struct DistributedOptions {
  double timeout_s = 300;      // per collective, and for the rendezvous
  double bucket_mb = 25;       // gradient bucket size
  std::string backend = "auto";  // auto (nccl for cuda devices when built with it, else gloo) | gloo | nccl
};

// Throws adcorre::Error naming the missing/bad variable, an unreachable
// rendezvous, or a build without c10d support. For NCCL it makes
// cuda:LOCAL_RANK the current device, so "cuda" means this rank's GPU.
std::shared_ptr<Collective> make_distributed_collective_from_env(const std::string& device,
                                                                 const DistributedOptions& options);
std::shared_ptr<Collective> make_distributed_collective_from_env(const std::string& device);

// The bucket plan used by average_gradients() and broadcast(): groups of
// tensor indices, each of one dtype and device and at most `bucket_bytes` (a
// single larger tensor gets a bucket of its own); indices keep their order
// within a group. Every index appears exactly once. Exposed for tests.
std::vector<std::vector<size_t>> plan_buckets(const std::vector<at::Tensor>& tensors, size_t bucket_bytes);

}  // namespace adcorre::train
