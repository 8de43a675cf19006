#include "adcorre/train/data_parallel.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "adcorre/eval/evaluate.h"
#include "adcorre/util/error.h"

namespace adcorre::train {

eval::Metrics evaluate_sharded(models::FerModelImpl& net, const models::ModelConfig& cfg,
                               const data::ImageCache& cache, const std::string& device, Collective& coll) {
  const int world = coll.world_size();
  if (world == 1) return eval::evaluate_cache(net, cfg, cache, "none", device).metrics;
  const int64_t n = cache.size(), C = cfg.num_classes();
  const int64_t begin = n * coll.rank() / world, end = n * (coll.rank() + 1) / world;
  auto counts = torch::zeros({C, C}, torch::kLong);
  if (end > begin) {
    data::ImageCache part;
    part.pixels = cache.pixels.slice(0, begin, end);
    part.labels = cache.labels.slice(0, begin, end);
    part.classes = cache.classes;
    auto m = eval::evaluate_cache(net, cfg, part, "none", device).metrics;
    auto acc = counts.accessor<int64_t, 2>();
    for (int64_t g = 0; g < C; ++g)
      for (int64_t p = 0; p < C; ++p) acc[g][p] = m.counts[g][p];
  }
  coll.sum(counts);
  // Metrics are computed from (truth, prediction) pairs: expand the counts.
  std::vector<int64_t> truth, pred;
  truth.reserve(n);
  pred.reserve(n);
  auto acc = counts.accessor<int64_t, 2>();
  for (int64_t g = 0; g < C; ++g)
    for (int64_t p = 0; p < C; ++p)
      for (int64_t k = 0; k < acc[g][p]; ++k) {
        truth.push_back(g);
        pred.push_back(p);
      }
  return eval::compute_metrics(cfg.class_names, truth, pred);
}

void average_running_stats(Collective& coll, torch::nn::Module& net, torch::nn::Module* ema) {
  if (coll.world_size() == 1) return;
  torch::NoGradGuard ng;
  std::vector<at::Tensor> stats;
  for (auto& b : net.buffers())
    if (b.is_floating_point()) stats.push_back(b);
  coll.average_gradients(stats);  // the same bucketed all-reduce + divide
  if (ema) {
    auto src = net.buffers();
    auto dst = ema->buffers();
    for (size_t i = 0; i < dst.size() && i < src.size(); ++i) dst[i].copy_(src[i]);
  }
}

void sum_over_ranks(Collective& coll, const std::vector<double*>& values) {
  if (coll.world_size() == 1 || values.empty()) return;
  auto t = torch::empty({static_cast<int64_t>(values.size())}, torch::kDouble);
  for (size_t i = 0; i < values.size(); ++i) t[i] = *values[i];
  coll.sum(t);
  for (size_t i = 0; i < values.size(); ++i) *values[i] = t[i].item<double>();
}

void sum_counts_over_ranks(Collective& coll, const std::vector<int64_t*>& values) {
  if (coll.world_size() == 1 || values.empty()) return;
  auto t = torch::empty({static_cast<int64_t>(values.size())}, torch::kLong);
  for (size_t i = 0; i < values.size(); ++i) t[i] = *values[i];
  coll.sum(t);
  for (size_t i = 0; i < values.size(); ++i) *values[i] = t[i].item<int64_t>();
}

void mean_over_ranks(Collective& coll, const std::vector<double*>& values) {
  if (coll.world_size() == 1) return;
  sum_over_ranks(coll, values);
  for (double* v : values) *v /= coll.world_size();
}

namespace {

// Row layout: [len(window), len(aug), len(torch), window..., aug bytes..., torch bytes...].
at::Tensor pack(const loss::ConfusionWindow& window, at::Generator& aug_gen) {
  auto w = window.state().to(torch::kLong);
  auto a = aug_gen.get_state().to(torch::kLong);
  at::Generator global_gen = at::detail::getDefaultCPUGenerator();
  auto g = global_gen.get_state().to(torch::kLong);
  auto head = torch::tensor({w.numel(), a.numel(), g.numel()}, torch::kLong);
  return torch::cat({head, w, a, g});
}

}  // namespace

at::Tensor gather_rank_states(Collective& coll, const loss::ConfusionWindow& window, at::Generator& aug_gen) {
  auto row = pack(window, aug_gen);
  auto all = torch::zeros({coll.world_size(), row.numel()}, torch::kLong);
  all[coll.rank()].copy_(row);
  coll.sum(all);  // an all-gather: every other row is zero on each rank
  return all;
}

void check_group_size(torch::serialize::InputArchive& checkpoint, const std::string& path, Collective& coll) {
  at::Tensor states;
  const int64_t saved = checkpoint.try_read("rank_states", states) ? states.size(0) : 1;
  if (saved != coll.world_size())
    throw Error("checkpoint " + path + " was written by a group of " + std::to_string(saved) +
                " process(es); resume it with the same number (its data shards, confusion windows and position "
                "depend on it), e.g. adcorre launch --nproc " + std::to_string(saved) + " -- train --resume DIR");
}

void restore_rank_state(torch::serialize::InputArchive& checkpoint, Collective& coll, loss::ConfusionWindow& window,
                        at::Generator& aug_gen) {
  at::Tensor states;
  if (!checkpoint.try_read("rank_states", states)) return;
  check(states.dim() == 2 && states.size(0) == coll.world_size(), "checkpoint rank_states: wrong shape");
  auto row = states[coll.rank()].contiguous();
  const int64_t nw = row[0].item<int64_t>(), na = row[1].item<int64_t>(), ng = row[2].item<int64_t>();
  check(nw > 0 && na > 0 && ng > 0 && 3 + nw + na + ng <= row.numel(), "checkpoint rank_states: malformed row");
  window.load_state(row.slice(0, 3, 3 + nw));
  aug_gen.set_state(row.slice(0, 3 + nw, 3 + nw + na).to(torch::kByte));
  at::Generator global_gen = at::detail::getDefaultCPUGenerator();
  global_gen.set_state(row.slice(0, 3 + nw + na, 3 + nw + na + ng).to(torch::kByte));
}

}  // namespace adcorre::train
