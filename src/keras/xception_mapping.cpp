#include "adcorre/keras/xception_mapping.h"

#include <cctype>
#include <map>
#include <set>

#include <torch/torch.h>

#include "adcorre/keras/keras_graph.h"
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"
#include "tensor_layout.h"

namespace adcorre::keras {

using nlohmann::json;

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}
// Keras Xception's own layer names: "block<digits>_...".
bool is_block_name(const std::string& s) {
  return starts_with(s, "block") && s.size() > 5 && std::isdigit(static_cast<unsigned char>(s[5]));
}

std::vector<std::string> split_at(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return out;
    start = end + 1;
  }
}

// Where one adcorre tensor comes from in a Keras file.
struct Source {
  std::string layer, kind;
  layout::Kind lk = layout::Kind::vector;
};

class XceptionNames {
 public:
  XceptionNames(models::FerModelImpl& net, const KerasFile& f, const AdCorreHeadLayout* head) : head_(head) {
    // adcorre's shortcut blocks in order, and Keras' unnamed 1x1 convs and BNs in file order.
    std::vector<std::string> blocks;
    for (auto& p : net.named_parameters()) {
      auto parts = split_at(p.key(), '.');
      if (parts.size() == 3 && parts[0] == "backbone" && ends_with(parts[1], "_shortcut") && parts[2] == "weight")
        blocks.push_back(parts[1]);
    }
    std::vector<std::string> convs, bns;
    for (auto& l : f.layer_names) {
      if (is_block_name(l)) continue;
      if (auto* k = f.find(l, "kernel"); k && k->value.shape.size() == 4 && k->value.shape[0] == 1 && k->value.shape[1] == 1)
        convs.push_back(l);
      if (f.find(l, "moving_mean")) bns.push_back(l);
    }
    for (size_t i = 0; i < blocks.size(); ++i) {
      const std::string& b = blocks[i];
      shortcut_conv_[b] = !f.layer_weights(b).empty() ? b : i < convs.size() ? convs[i] : "";
      shortcut_bn_[b + "_bn"] = !f.layer_weights(b + "_bn").empty() ? b + "_bn" : i < bns.size() ? bns[i] : "";
    }
  }

  // nullopt for tensors Keras does not have (num_batches_tracked).
  std::optional<Source> source(const std::string& key) const {
    auto p = split_at(key, '.');
    using K = layout::Kind;
    if (p.size() >= 3 && p[0] == "backbone") {
      const std::string& m = p[1];
      std::vector<std::string> rest(p.begin() + 2, p.end());
      if (rest == std::vector<std::string>{"conv", "weight"}) return Source{m, "kernel", K::conv};
      if (rest == std::vector<std::string>{"depthwise", "conv", "weight"}) return Source{m, "depthwise_kernel", K::depthwise};
      if (rest == std::vector<std::string>{"pointwise", "weight"}) return Source{m, "pointwise_kernel", K::pointwise};
      if (rest.size() == 1 && ends_with(m, "_shortcut") && rest[0] == "weight")
        return Source{lookup(shortcut_conv_, m), "kernel", K::conv};
      if (rest.size() == 1 && ends_with(m, "_bn")) {
        static const std::map<std::string, std::string> bn = {
            {"weight", "gamma"}, {"bias", "beta"}, {"running_mean", "moving_mean"}, {"running_var", "moving_variance"}};
        auto it = bn.find(rest[0]);
        if (it == bn.end()) return std::nullopt;
        const std::string layer = ends_with(m, "_shortcut_bn") ? lookup(shortcut_bn_, m) : m;
        return Source{layer, it->second, K::vector};
      }
      return Source{m, rest.back(), K::vector};  // unknown: reported missing
    }
    if (p.size() == 4 && p[0] == "head" && p[1] == "embed" && head_) {
      const size_t i = std::stoul(p[2]);
      if (i >= head_->embed_dense.size()) return Source{"", p[3], K::vector};
      return p[3] == "weight" ? Source{head_->embed_dense[i], "kernel", K::dense}
                              : Source{head_->embed_dense[i], "bias", K::vector};
    }
    if (p.size() == 3 && p[0] == "head" && p[1] == "classifier" && head_)
      return p[2] == "weight" ? Source{head_->out_dense, "kernel", K::dense} : Source{head_->out_dense, "bias", K::vector};
    if (p.size() >= 1 && p[0] == "head" && !head_) return Source{"", "", K::vector};  // no head in the file
    if (p.back() == "num_batches_tracked") return std::nullopt;
    return Source{"", p.back(), K::vector};
  }

 private:
  static std::string lookup(const std::map<std::string, std::string>& m, const std::string& k) {
    auto it = m.find(k);
    return it == m.end() ? "" : it->second;
  }
  const AdCorreHeadLayout* head_;
  std::map<std::string, std::string> shortcut_conv_, shortcut_bn_;
};

const GraphLayer& layer_of(const KerasGraph& g, const std::string& name) {
  const GraphLayer* l = g.find(name);
  if (!l) throw Error("Keras model: no layer '" + name + "'");
  return *l;
}

const GraphLayer& single_input(const KerasGraph& g, const GraphLayer& l) {
  if (l.nodes.size() != 1 || l.nodes[0].size() != 1)
    throw Error("layer '" + l.name + "' does not have exactly one input");
  return layer_of(g, l.nodes[0][0].layer);
}

std::string activation_name(const json& c) {
  if (!c.contains("activation") || c.at("activation").is_null()) return "linear";
  return c.at("activation").is_string() ? c.at("activation").get<std::string>() : c.at("activation").dump();
}

// Throws Error (caught by the caller) explaining why the head is not Ad-Corre's.
AdCorreHeadLayout find_adcorre_head(const KerasGraph& g) {
  AdCorreHeadLayout h;
  const GraphLayer& out = layer_of(g, g.outputs[0].layer);
  if (out.class_name != "Dense") throw Error("the first output '" + out.name + "' is not a Dense layer");
  if (!out.config.value("use_bias", true)) throw Error("the output Dense has no bias");
  const std::string act = activation_name(out.config);
  if (act != "softmax" && act != "linear") throw Error("the output Dense has activation " + act);
  h.out_dense = out.name;
  h.classes = out.config.at("units").get<int>();
  const GraphLayer* x = &single_input(g, out);
  if (x->class_name == "Dropout") {
    h.dropout = x->config.value("rate", 0.0);
    x = &single_input(g, *x);
  }
  std::vector<const GraphLayer*> lambdas;
  if (x->class_name == "Concatenate") {
    const int axis = x->config.value("axis", -1);
    if (axis != -1 && axis != 1) throw Error("the Concatenate is not along the features");
    if (x->nodes.size() != 1) throw Error("the Concatenate is called more than once");
    for (auto& r : x->nodes[0]) lambdas.push_back(&layer_of(g, r.layer));
  } else {
    lambdas.push_back(x);
  }
  std::string pool;
  for (auto* l : lambdas) {
    if ((l->class_name != "Lambda" && l->class_name != "TFOpLambda") || !is_l2_normalize_layer(*l, l->nodes.empty() || l->nodes[0].empty() ? json() : l->nodes[0][0].kwargs))
      throw Error("'" + l->name + "' is not an L2-normalising Lambda");
    const GraphLayer& dense = single_input(g, *l);
    if (dense.class_name != "Dense" || activation_name(dense.config) != "linear" || !dense.config.value("use_bias", true))
      throw Error("'" + dense.name + "' is not a linear Dense with bias");
    const int d = dense.config.at("units").get<int>();
    if (h.d && d != h.d) throw Error("the embeddings have different sizes");
    h.d = d;
    const GraphLayer& p = single_input(g, dense);
    if (p.class_name != "GlobalAveragePooling2D" || p.config.value("keepdims", false))
      throw Error("'" + dense.name + "' does not take global average pooling");
    if (!pool.empty() && p.name != pool) throw Error("the embeddings pool different tensors");
    pool = p.name;
    h.embed_dense.push_back(dense.name);
  }
  return h;
}

int sepconv_count(const KerasGraph& g, int block) {
  int m = 0;
  while (true) {
    const GraphLayer* l = g.find("block" + std::to_string(block) + "_sepconv" + std::to_string(m + 1));
    if (!l || l->class_name != "SeparableConv2D") return m;
    ++m;
  }
}

int filters_of(const KerasGraph& g, const std::string& name) { return layer_of(g, name).config.at("filters").get<int>(); }

}  // namespace

models::InitReport copy_xception_weights(models::FerModelImpl& net, const KerasFile& f, const AdCorreHeadLayout* head) {
  XceptionNames names(net, f, head);
  models::InitReport r;
  std::set<std::pair<std::string, std::string>> used;
  torch::NoGradGuard ng;
  auto one = [&](const std::string& key, torch::Tensor t) {
    auto src = names.source(key);
    if (!src) return;
    const KerasWeight* w = src->layer.empty() ? nullptr : f.find(src->layer, src->kind);
    if (!w) {
      r.missing.push_back(key);
      return;
    }
    used.insert({src->layer, src->kind});
    auto v = layout::to_torch(layout::as_tensor(w->value), src->lk);
    if (v.sizes() != t.sizes()) {
      r.shape_mismatch.push_back(key + " (Keras " + src->layer + "/" + src->kind + " " +
                                 layout::shape_string(w->value.shape) + ")");
      return;
    }
    t.copy_(v);
    r.matched++;
  };
  for (auto& p : net.named_parameters()) one(p.key(), p.value());
  for (auto& b : net.named_buffers()) one(b.key(), b.value());
  for (auto& l : f.layer_names)
    for (auto& w : f.layer_weights(l))
      if (!used.count({l, w.kind})) r.unexpected.push_back(l + "/" + w.kind);
  return r;
}

std::optional<XceptionMatch> match_keras_xception(const KerasFile& f, std::string* why) {
  auto no = [&](const std::string& reason) -> std::optional<XceptionMatch> {
    if (why) *why = reason;
    return std::nullopt;
  };
  if (f.weights_only()) return no("a weights-only file has no graph");
  KerasGraph g;
  try {
    g = parse_keras_graph(f.model_config);
  } catch (const Error& e) {
    return no(e.what());
  }
  for (const char* l : {"block1_conv1", "block1_conv2", "block1_conv1_bn", "block1_conv2_bn", "block2_sepconv1"})
    if (!g.find(l)) return no(std::string("no layer named ") + l + " (not a Keras Xception)");
  AdCorreHeadLayout head;
  try {
    head = find_adcorre_head(g);
  } catch (const Error& e) {
    return no(std::string("no Ad-Corre head: ") + e.what());
  }
  auto shape = g.input_shape();
  if (shape[0] != shape[1] || shape[0] < 32) return no("input is not square and >= 32 pixels");

  models::ModelConfig base;
  base.arch = "xception";
  base.preset = "";
  base.input_size = static_cast<int>(shape[0]);
  base.in_channels = static_cast<int>(shape[2]);
  base.mean.assign(base.in_channels, 0.0);
  base.std.assign(base.in_channels, 1.0);
  base.width = 1.0;
  const json& c1 = layer_of(g, "block1_conv1").config;
  const json& c2 = layer_of(g, "block1_conv2").config;
  base.stem_conv1 = c1.at("filters").get<int>();
  base.stem_conv2 = c2.at("filters").get<int>();
  base.stem_stride1 = c1.value("strides", json::array({1, 1}))[0].get<int>();
  base.stem_stride2 = c2.value("strides", json::array({1, 1}))[0].get<int>();
  base.stem_padding = c1.value("padding", "valid");
  if (c2.value("padding", "valid") != base.stem_padding) return no("the two stem convs pad differently");
  const json& bn = layer_of(g, "block1_conv1_bn").config;
  base.bn_eps = bn.value("epsilon", 1e-3);
  base.bn_momentum = 1.0 - bn.value("momentum", 0.99);
  base.k = static_cast<int>(head.embed_dense.size());
  base.d = head.d;
  base.dropout = head.dropout;
  base.class_names.clear();
  for (int i = 0; i < head.classes; ++i) base.class_names.push_back("class" + std::to_string(i));

  // Blocks 2.. and their separable-conv counts; shortcut count from the unnamed 1x1 convs.
  std::vector<int> m;
  for (int b = 2; sepconv_count(g, b) > 0; ++b) m.push_back(sepconv_count(g, b));
  int shortcuts = 0;
  for (auto& l : g.layers)
    if (l.class_name == "Conv2D" && !is_block_name(l.name) && l.config.value("kernel_size", json::array({0, 0}))[0] == 1)
      ++shortcuts;
  for (auto& l : g.layers)
    if (l.class_name == "Conv2D" && ends_with(l.name, "_shortcut")) ++shortcuts;

  std::string last_reason = "its blocks do not form an Xception";
  for (int exit : {1, 0}) {
    const int entry = shortcuts - exit;
    if (entry < 1 || entry > static_cast<int>(m.size())) continue;
    size_t i = 0;
    models::ModelConfig cfg = base;
    cfg.entry_blocks.clear();
    cfg.exit_convs.clear();
    bool ok = true;
    for (int e = 0; e < entry; ++e, ++i) {
      ok = ok && m[i] == 2;
      if (ok) cfg.entry_blocks.push_back(filters_of(g, "block" + std::to_string(i + 2) + "_sepconv2"));
    }
    cfg.middle_blocks = 0;
    while (ok && i < m.size() && m[i] == 3) {
      cfg.middle_blocks++;
      ++i;
    }
    cfg.exit_block = 0;
    if (ok && exit) {
      ok = i < m.size() && m[i] == 2;
      if (ok) cfg.exit_block = filters_of(g, "block" + std::to_string(i + 2) + "_sepconv2");
      ++i;
    }
    if (ok && i < m.size()) {
      for (int s = 1; s <= m[i]; ++s)
        cfg.exit_convs.push_back(filters_of(g, "block" + std::to_string(i + 2) + "_sepconv" + std::to_string(s)));
      ++i;
    }
    if (!ok || i != m.size()) continue;
    try {
      cfg.validate();
      auto net = models::create_model(cfg);
      auto r = copy_xception_weights(*net, f, &head);
      if (r.missing.empty() && r.shape_mismatch.empty() && r.unexpected.empty()) {
        net->eval();
        return XceptionMatch{cfg, head, net};
      }
      last_reason = "weights do not map: " + std::to_string(r.missing.size()) + " missing, " +
                    std::to_string(r.shape_mismatch.size()) + " of another shape, " +
                    std::to_string(r.unexpected.size()) + " unused" +
                    (r.shape_mismatch.empty() ? r.missing.empty() ? r.unexpected.empty() ? "" : " (" + r.unexpected[0] + ")"
                                                                  : " (" + r.missing[0] + ")"
                                              : " (" + r.shape_mismatch[0] + ")");
    } catch (const Error& e) {
      last_reason = e.what();
    }
  }
  return no(last_reason);
}

models::InitReport init_from_keras(models::FerModelImpl& net, const std::string& path) {
  if (!net.named_parameters().contains("backbone.block1_conv1.conv.weight"))
    throw Error("Keras file " + path + ": Keras weights can initialise adcorre Xception models only (arch xception)");
  KerasFile f = read_keras_file(path);
  std::optional<AdCorreHeadLayout> head;
  if (!f.weights_only()) {
    try {
      head = find_adcorre_head(parse_keras_graph(f.model_config));
    } catch (const Error& e) {
      log::info("Keras file " + path + ": head not mapped (" + e.what() + ")");
    }
  }
  auto r = copy_xception_weights(net, f, head ? &*head : nullptr);
  // A backbone tensor of another shape means another architecture; the head may differ (classes).
  std::vector<std::string> backbone_mismatch;
  for (auto& m : r.shape_mismatch)
    if (starts_with(m, "backbone.")) backbone_mismatch.push_back(m);
  if (r.matched == 0 || !backbone_mismatch.empty())
    throw Error("Keras file " + path + " does not fit this model: " + std::to_string(r.matched) + " tensors match, " +
                std::to_string(backbone_mismatch.size()) + " backbone tensors have another shape" +
                (backbone_mismatch.empty() ? "" : " (first: " + backbone_mismatch[0] + ")"));
  return r;
}

}  // namespace adcorre::keras
