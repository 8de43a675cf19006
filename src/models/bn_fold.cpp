#include "adcorre/models/bn_fold.h"

#include <map>

#include <torch/torch.h>

#include "adcorre/models/layers.h"

namespace adcorre::models {

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The convolution whose output feeds the BatchNorm named `bn_name` in the
// layouts adcorre's networks build, or nullptr.
torch::nn::Conv2dImpl* conv_before(const std::map<std::string, torch::nn::Module*>& modules, const std::string& bn_name) {
  auto conv_at = [&](const std::string& name) -> torch::nn::Conv2dImpl* {
    auto it = modules.find(name);
    return it == modules.end() ? nullptr : it->second->as<torch::nn::Conv2dImpl>();
  };
  std::vector<std::string> candidates;
  if (ends_with(bn_name, "_bn")) {  // Xception: Conv2dTF ("<base>.conv"), separable ("<base>.pointwise"), 1x1 shortcut
    const auto base = bn_name.substr(0, bn_name.size() - 3);
    candidates = {base + ".conv", base + ".pointwise", base};
  } else if (ends_with(bn_name, "downsample.1")) {  // ResNet-50 projection shortcut
    candidates = {bn_name.substr(0, bn_name.size() - 1) + "0"};
  } else {  // ResNet-50: "...bnK" after "...convK"
    const auto dot = bn_name.rfind('.');
    const auto leaf = bn_name.substr(dot == std::string::npos ? 0 : dot + 1);
    if (leaf.size() == 3 && leaf.compare(0, 2, "bn") == 0)
      candidates = {bn_name.substr(0, bn_name.size() - 3) + "conv" + leaf.substr(2)};
  }
  for (auto& c : candidates)
    if (auto* conv = conv_at(c)) return conv;
  return nullptr;
}

}  // namespace

int fold_batchnorm(torch::nn::Module& net) {
  std::map<std::string, torch::nn::Module*> modules;
  for (auto& m : net.named_modules()) modules[m.key()] = m.value().get();
  torch::NoGradGuard ng;
  int folded = 0;
  for (auto& [name, module] : modules) {
    auto* bn = module->as<FoldableBatchNorm2dImpl>();
    if (!bn || bn->folded()) continue;
    auto* conv = conv_before(modules, name);
    if (!conv || conv->weight.size(0) != bn->running_mean.size(0)) continue;
    auto f = fold_batchnorm_into_conv(conv->weight, conv->bias, *bn);
    // copy_ keeps the weight's memory format (channels_last on CPU).
    conv->weight.copy_(f.weight.to(conv->weight.dtype()));
    auto bias = f.bias.to(conv->weight.device(), conv->weight.scalar_type());
    if (conv->bias.defined()) {
      conv->bias.copy_(bias);
    } else {
      // Not registered: the parameter list (what files, checksums and
      // optimizers see) stays the unfolded network's; Conv2d::forward reads
      // the member, so oneDNN adds it inside the convolution.
      conv->bias = bias;
    }
    bn->mark_folded();
    ++folded;
  }
  return folded;
}

bool has_folded_batchnorm(torch::nn::Module& net) {
  for (auto& m : net.modules())
    if (auto* bn = m->as<FoldableBatchNorm2dImpl>(); bn && bn->folded()) return true;
  return false;
}

}  // namespace adcorre::models
