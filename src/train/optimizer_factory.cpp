#include "adcorre/train/optimizer_factory.h"

#include <sstream>
#include <type_traits>

#include <torch/torch.h>

#include "adcorre/util/error.h"

namespace adcorre::train {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& c, torch::nn::Module& model) {
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : model.parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  using torch::optim::OptimizerParamGroup;
  if (c.optimizer == "adam") {
    // Adam's weight_decay is L2 added to the gradient (the paper's optimiser; wd 0 by default).
    std::vector<OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(c.lr).weight_decay(c.weight_decay)));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(c.lr).weight_decay(0)));
    return std::make_unique<torch::optim::Adam>(std::move(groups), torch::optim::AdamOptions(c.lr));
  }
  if (c.optimizer == "adamw") {
    std::vector<OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(c.lr).weight_decay(c.weight_decay)));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(c.lr).weight_decay(0)));
    return std::make_unique<torch::optim::AdamW>(std::move(groups), torch::optim::AdamWOptions(c.lr));
  }
  if (c.optimizer == "sgd") {
    std::vector<OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(c.lr).momentum(c.momentum).nesterov(true).weight_decay(c.weight_decay)));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(c.lr).momentum(c.momentum).nesterov(true).weight_decay(0)));
    return std::make_unique<torch::optim::SGD>(std::move(groups), torch::optim::SGDOptions(c.lr));
  }
  throw Error("unknown optimizer '" + c.optimizer + "' (known: adam, adamw, sgd)");
}

void set_learning_rate(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
}

namespace {
// The optimizer's state is keyed by the parameter's TensorImpl: its address as
// text in LibTorch 1.x, the address itself in 2.x. The key type is taken
// from the map, so one source serves both.
using StateKey = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;
template <typename Key>
Key key_of(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;  // what c10::guts::to_string (1.x) wrote
    os << p.unsafeGetTensorImpl();
    return os.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}
StateKey state_key(const torch::Tensor& p) { return key_of<StateKey>(p); }
torch::Tensor read_or_undefined(torch::serialize::InputArchive& a, const std::string& key) {
  torch::Tensor t;
  if (!a.try_read(key, t)) return torch::Tensor();
  return t.clone();
}

// Adam and AdamW keep the same per-parameter state under two types.
template <typename AdamState>
void write_adam_state(torch::serialize::OutputArchive& a, const std::string& k, AdamState& s) {
  a.write(k + "step", torch::tensor(s.step()));
  a.write(k + "exp_avg", s.exp_avg());
  a.write(k + "exp_avg_sq", s.exp_avg_sq());
  if (s.max_exp_avg_sq().defined()) a.write(k + "max_exp_avg_sq", s.max_exp_avg_sq());
}
template <typename AdamState>
std::unique_ptr<AdamState> make_adam_state(int64_t step, const torch::Tensor& exp_avg, const torch::Tensor& exp_avg_sq,
                                           const torch::Tensor& max_exp_avg_sq) {
  auto s = std::make_unique<AdamState>();
  s->step(step);
  s->exp_avg(exp_avg);
  s->exp_avg_sq(exp_avg_sq);
  if (max_exp_avg_sq.defined()) s->max_exp_avg_sq(max_exp_avg_sq);
  return s;
}
}  // namespace

void save_optimizer_state(torch::serialize::OutputArchive& a, torch::optim::Optimizer& opt,
                          const std::vector<torch::Tensor>& params) {
  auto& state = opt.state();
  for (size_t i = 0; i < params.size(); ++i) {
    auto it = state.find(state_key(params[i]));
    if (it == state.end()) continue;
    const std::string k = "p" + std::to_string(i) + ".";
    if (auto* s = dynamic_cast<torch::optim::AdamParamState*>(it->second.get())) {
      write_adam_state(a, k, *s);
    } else if (auto* s = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get())) {
      write_adam_state(a, k, *s);
    } else if (auto* s = dynamic_cast<torch::optim::SGDParamState*>(it->second.get())) {
      if (s->momentum_buffer().defined()) a.write(k + "momentum_buffer", s->momentum_buffer());
    }
  }
}

void load_optimizer_state(torch::serialize::InputArchive& a, torch::optim::Optimizer& opt,
                          const std::vector<torch::Tensor>& params) {
  auto& state = opt.state();
  state.clear();
  const bool adam = dynamic_cast<torch::optim::Adam*>(&opt) != nullptr;
  const bool adamw = dynamic_cast<torch::optim::AdamW*>(&opt) != nullptr;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string k = "p" + std::to_string(i) + ".";
    if (adam || adamw) {
      auto step = read_or_undefined(a, k + "step");
      if (!step.defined()) continue;
      auto exp_avg = read_or_undefined(a, k + "exp_avg"), exp_avg_sq = read_or_undefined(a, k + "exp_avg_sq");
      auto max_sq = read_or_undefined(a, k + "max_exp_avg_sq");
      check(exp_avg.defined() && exp_avg_sq.defined() && exp_avg.sizes() == params[i].sizes(),
            "checkpoint: optimizer state of parameter " + std::to_string(i) + " is malformed");
      exp_avg = exp_avg.to(params[i].device()).contiguous(params[i].suggest_memory_format());
      exp_avg_sq = exp_avg_sq.to(params[i].device()).contiguous(params[i].suggest_memory_format());
      if (max_sq.defined()) max_sq = max_sq.to(params[i].device());
      if (adam)
        state[state_key(params[i])] =
            make_adam_state<torch::optim::AdamParamState>(step.item<int64_t>(), exp_avg, exp_avg_sq, max_sq);
      else
        state[state_key(params[i])] =
            make_adam_state<torch::optim::AdamWParamState>(step.item<int64_t>(), exp_avg, exp_avg_sq, max_sq);
    } else {
      auto mb = read_or_undefined(a, k + "momentum_buffer");
      if (!mb.defined()) continue;
      auto s = std::make_unique<torch::optim::SGDParamState>();
      s->momentum_buffer(mb.to(params[i].device()).contiguous(params[i].suggest_memory_format()));
      state[state_key(params[i])] = std::move(s);
    }
  }
}

}  // namespace adcorre::train
