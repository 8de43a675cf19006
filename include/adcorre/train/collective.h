// Collective: what the trainer needs from a process group, so distributed
// training is a layer on the one training loop, not a second loop.
// The single-process implementation does nothing; the c10d one (Gloo, NCCL)
// lives in train/distributed.h.
#pragma once
#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>

namespace adcorre::train {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }
  // Copies rank 0's tensors to every rank (initial parameters, buffers).
  virtual void broadcast(std::vector<at::Tensor>& tensors) { (void)tensors; }
  // Averages gradients over ranks (bucketed: few large calls, not one per tensor).
  virtual void average_gradients(std::vector<at::Tensor>& grads) { (void)grads; }
  // Sums a tensor over ranks in place (confusion-window counts, metrics).
  virtual void sum(at::Tensor& t) { (void)t; }
  virtual void barrier() {}
  bool is_main() const { return rank() == 0; }
};

}  // namespace adcorre::train
