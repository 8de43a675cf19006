#include "adcorre/models/fer_model.h"

#include <sstream>

#include <torch/torch.h>

#include "adcorre/models/adcorre_head.h"
#include "adcorre/models/xception.h"
#include "adcorre/util/error.h"

namespace adcorre::models {

// Hook for backbones defined elsewhere in the library (ResNet-50, Keras graphs).
FerModel create_resnet50_model(const ModelConfig& cfg);
FerModel create_keras_graph_model(const ModelConfig& cfg);
FerModel create_ensemble_model(const ModelConfig& cfg);

namespace {

// Xception backbone + Ad-Corre head: modules "backbone" and "head".
class XceptionFerImpl : public FerModelImpl {
 public:
  explicit XceptionFerImpl(const ModelConfig& cfg) {
    backbone = register_module("backbone", Xception(cfg));
    head = register_module("head", AdCorreHead(backbone->feature_dim(), cfg.k, cfg.d, cfg.num_classes(), cfg.dropout));
    init_conv_and_linear_weights(*this);
  }
  FerOutput forward(const torch::Tensor& x) override {
    auto h = head->forward(backbone->forward(x));
    return {h.logits, h.embeddings};
  }
  torch::Tensor features(const torch::Tensor& x) override { return backbone->forward(x); }

 private:
  Xception backbone{nullptr};
  AdCorreHead head{nullptr};
};

}  // namespace

void init_conv_and_linear_weights(torch::nn::Module& module) {
  torch::NoGradGuard ng;
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* c = m->as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* l = m->as<torch::nn::LinearImpl>()) {
      torch::nn::init::xavier_uniform_(l->weight);
      torch::nn::init::zeros_(l->bias);
    }
  }
}

FerModel create_model(const ModelConfig& cfg) {
  cfg.validate();
  if (cfg.arch == "xception") return std::make_shared<XceptionFerImpl>(cfg);
  if (cfg.arch == "resnet50") return create_resnet50_model(cfg);
  if (cfg.arch == "keras_graph") return create_keras_graph_model(cfg);
  if (cfg.arch == "ensemble") return create_ensemble_model(cfg);
  throw Error("unknown arch '" + cfg.arch + "'");
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard ng;
  for (auto& p : module.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
  for (auto& b : module.buffers())
    if (b.dim() == 4) b.set_data(b.contiguous(torch::MemoryFormat::ChannelsLast));
}

int64_t count_parameters(torch::nn::Module& module) {
  int64_t n = 0;
  for (auto& p : module.parameters()) n += p.numel();
  return n;
}

int64_t count_keras_style(torch::nn::Module& module) {
  int64_t n = count_parameters(module);
  for (auto& b : module.named_buffers()) {
    const auto& key = b.key();
    if (key.size() >= 12 && (key.find("running_mean") != std::string::npos || key.find("running_var") != std::string::npos))
      n += b.value().numel();
  }
  return n;
}

std::string summary(const ModelConfig& cfg, FerModelImpl& model, int batch) {
  std::ostringstream ss;
  ss << "arch " << cfg.arch << (cfg.preset.empty() ? "" : " (preset " + cfg.preset + ")") << "\n";
  ss << "input " << cfg.input_size << "x" << cfg.input_size << "x" << cfg.in_channels << ", classes "
     << cfg.num_classes() << ": ";
  for (size_t i = 0; i < cfg.class_names.size(); ++i) ss << (i ? "," : "") << cfg.class_names[i];
  ss << "\n";
  if (cfg.arch == "xception") {
    ss << "xception width " << cfg.width << ", stem " << cfg.stem_conv1 << "/s" << cfg.stem_stride1 << " "
       << cfg.stem_conv2 << "/s" << cfg.stem_stride2 << " (" << cfg.stem_padding << "), entry";
    for (int c : cfg.entry_blocks) ss << " " << c;
    ss << ", middle " << cfg.middle_blocks << ", exit block " << cfg.exit_block << ", exit convs";
    for (int c : cfg.exit_convs) ss << " " << c;
    ss << "\nhead k " << cfg.k << ", d " << cfg.d << ", dropout " << cfg.dropout << "\n";
  }
  if (cfg.arch == "ensemble") {
    std::vector<std::shared_ptr<torch::nn::Module>> nets;
    for (auto& c : model.named_children())
      if (c.key() == "members") nets = c.value()->children();
    ss << "ensemble of " << cfg.members.size() << " (mean of their class probabilities)\n";
    for (size_t i = 0; i < cfg.members.size() && i < nets.size(); ++i) {
      const auto& m = cfg.members[i];
      ss << "  member " << i << ": arch " << m.arch << (m.preset.empty() ? "" : " (preset " + m.preset + ")");
      if (m.arch == "xception") ss << " width " << m.width << " k " << m.k << " d " << m.d;
      ss << ", parameters " << count_parameters(*nets[i]) << "\n";
    }
  }
  int64_t backbone = 0, backbone_keras = 0;
  for (auto& c : model.named_children())
    if (c.key() == "backbone") {
      backbone = count_parameters(*c.value());
      backbone_keras = count_keras_style(*c.value());
    }
  ss << "parameters " << count_parameters(model) << " (with BN statistics " << count_keras_style(model) << ")\n";
  if (backbone) ss << "backbone parameters " << backbone << " (with BN statistics, as Keras counts: " << backbone_keras << ")\n";
  // Shapes of one forward pass.
  torch::NoGradGuard ng;
  bool was_training = model.is_training();
  model.eval();
  auto params = model.parameters();  // the probe goes where the model is (a CUDA model's too)
  auto opts = torch::TensorOptions().device(params.empty() ? torch::Device(torch::kCPU) : params[0].device());
  auto out = model.forward(torch::zeros({batch, cfg.in_channels, cfg.input_size, cfg.input_size}, opts));
  model.train(was_training);
  ss << "logits " << out.logits.sizes();
  if (out.embeddings.defined()) ss << ", embeddings " << out.embeddings.sizes();
  ss << "\n";
  return ss.str();
}

}  // namespace adcorre::models
