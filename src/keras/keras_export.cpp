// Writing an adcorre Xception as a Keras HDF5 file, laid out as tf.keras 2.4
// writes keras.applications' Xception + the Ad-Corre head (see
// xception_mapping.h). The import tests read these files back, and a user can
// hand adcorre-trained weights to Keras.
#include <cstdio>
#include <map>

#include <torch/torch.h>

#include "adcorre/keras/hdf5.h"
#include "adcorre/keras/xception_mapping.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "tensor_layout.h"

namespace adcorre::keras {

using nlohmann::json;

namespace {

// marshal + base64 of `lambda x: tf.math.l2_normalize(x, axis=1)` (how Keras'
// func_dump serializes a Lambda; CPython 3.11 bytecode).
const char* kL2NormalizeLambda =
    "4wEAAAAAAAAAAAAAAAQAAAADAAAA80QAAACXAHQAAAAAAAAAAAAAAGoBAAAAAAAAAACgAgAAAAAA\n"
    "AAAAAAAAAAAAAAAAAAAAfABkAawCpgIAAKsCAAAAAAAAAABTACkDTukBAAAAKQHaBGF4aXMpA9oC\n"
    "dGbaBG1hdGjaDGwyX25vcm1hbGl6ZakB2gF4cwEAAAAg+gg8c3RyaW5nPvoIPGxhbWJkYT5yCgAA\n"
    "AAMAAABzGwAAAIAAjWKMZ9cOItIOIqAxqDHQDiLRDi3UDi2AAPMAAAAA\n";

struct Layer {
  std::string name, cls;
  json config;
  std::vector<std::string> inputs;
  std::vector<std::pair<std::string, torch::Tensor>> weights;  // kind -> Keras-layout tensor
  bool backbone = true;
};

class Builder {
 public:
  Builder(models::FerModelImpl& net) {
    for (auto& p : net.named_parameters()) tensors_[p.key()] = p.value();
    for (auto& b : net.named_buffers()) tensors_[b.key()] = b.value();
  }

  std::string unique(const std::string& base) {
    int& n = counters_[base];
    const std::string name = n == 0 ? base : base + "_" + std::to_string(n);
    ++n;
    return name;
  }
  const torch::Tensor& t(const std::string& key) const {
    auto it = tensors_.find(key);
    if (it == tensors_.end()) throw Error("write_keras_xception: the model has no tensor '" + key + "'");
    return it->second;
  }
  std::string add(Layer l) {
    l.config["name"] = l.name;
    l.config["trainable"] = true;
    l.config["dtype"] = "float32";
    layers_.push_back(std::move(l));
    return layers_.back().name;
  }

  std::string conv(const std::string& name, const std::string& module, int stride, const std::string& padding,
                   const std::string& in) {
    auto w = t("backbone." + module + (tensors_.count("backbone." + module + ".conv.weight") ? ".conv.weight" : ".weight"));
    json c = {{"filters", w.size(0)}, {"kernel_size", {w.size(2), w.size(3)}}, {"strides", {stride, stride}},
              {"padding", padding}, {"data_format", "channels_last"}, {"dilation_rate", {1, 1}}, {"groups", 1},
              {"activation", "linear"}, {"use_bias", false}};
    return add({name, "Conv2D", c, {in}, {{"kernel", layout::to_keras(w, layout::Kind::conv)}}});
  }
  std::string sep(const std::string& module, const std::string& in) {
    auto dw = t("backbone." + module + ".depthwise.conv.weight");
    auto pw = t("backbone." + module + ".pointwise.weight");
    json c = {{"filters", pw.size(0)}, {"kernel_size", {dw.size(2), dw.size(3)}}, {"strides", {1, 1}},
              {"padding", "same"}, {"data_format", "channels_last"}, {"dilation_rate", {1, 1}},
              {"depth_multiplier", 1}, {"activation", "linear"}, {"use_bias", false}};
    return add({module, "SeparableConv2D", c, {in},
                {{"depthwise_kernel", layout::to_keras(dw, layout::Kind::depthwise)},
                 {"pointwise_kernel", layout::to_keras(pw, layout::Kind::pointwise)}}});
  }
  std::string bn(const std::string& name, const std::string& module, const std::string& in, double eps, double momentum) {
    const std::string m = "backbone." + module;
    json c = {{"axis", {3}}, {"momentum", 1.0 - momentum}, {"epsilon", eps}, {"center", true}, {"scale", true}};
    using K = layout::Kind;
    return add({name, "BatchNormalization", c, {in},
                {{"gamma", layout::to_keras(t(m + ".weight"), K::vector)},
                 {"beta", layout::to_keras(t(m + ".bias"), K::vector)},
                 {"moving_mean", layout::to_keras(t(m + ".running_mean"), K::vector)},
                 {"moving_variance", layout::to_keras(t(m + ".running_var"), K::vector)}}});
  }
  std::string act(const std::string& name, const std::string& fn, const std::string& in) {
    return add({name, "Activation", {{"activation", fn}}, {in}, {}});
  }
  std::string pool(const std::string& name, const std::string& in) {
    json c = {{"pool_size", {3, 3}}, {"strides", {2, 2}}, {"padding", "same"}, {"data_format", "channels_last"}};
    return add({name, "MaxPooling2D", c, {in}, {}});
  }
  std::string add_layer(const std::vector<std::string>& ins) { return add({unique("add"), "Add", json::object(), ins, {}}); }

  std::vector<Layer>& layers() { return layers_; }

 private:
  std::map<std::string, torch::Tensor> tensors_;
  std::map<std::string, int> counters_;
  std::vector<Layer> layers_;
};

json node_list(const std::vector<std::string>& ins) {
  json node = json::array();
  for (auto& i : ins) node.push_back(json::array({i, 0, 0, json::object()}));
  return json::array({node});
}

}  // namespace

void write_keras_xception(const std::string& path, const models::ModelConfig& cfg, models::FerModelImpl& net,
                          bool weights_only) {
  if (cfg.arch != "xception") throw Error("write_keras_xception: the model is arch '" + cfg.arch + "', not xception");
  torch::NoGradGuard ng;
  Builder b(net);
  const double eps = cfg.bn_eps, mom = cfg.bn_momentum;

  // The graph, block by block, exactly as models/xception.cpp builds it.
  std::string x = b.add({"input_1", "InputLayer",
                         {{"batch_input_shape", {nullptr, cfg.input_size, cfg.input_size, cfg.in_channels}},
                          {"sparse", false}, {"ragged", false}},
                         {}, {}});
  x = b.conv("block1_conv1", "block1_conv1", cfg.stem_stride1, cfg.stem_padding, x);
  x = b.act("block1_conv1_act", "relu", b.bn("block1_conv1_bn", "block1_conv1_bn", x, eps, mom));
  x = b.conv("block1_conv2", "block1_conv2", cfg.stem_stride2, cfg.stem_padding, x);
  x = b.act("block1_conv2_act", "relu", b.bn("block1_conv2_bn", "block1_conv2_bn", x, eps, mom));

  int block = 2;
  auto down_block = [&](bool pre_relu) {
    const std::string p = "block" + std::to_string(block);
    std::string r = b.conv(b.unique("conv2d"), p + "_shortcut", 2, "same", x);
    r = b.bn(b.unique("batch_normalization"), p + "_shortcut_bn", r, eps, mom);
    std::string y = pre_relu ? b.act(p + "_sepconv1_act", "relu", x) : x;
    y = b.bn(p + "_sepconv1_bn", p + "_sepconv1_bn", b.sep(p + "_sepconv1", y), eps, mom);
    y = b.act(p + "_sepconv2_act", "relu", y);
    y = b.bn(p + "_sepconv2_bn", p + "_sepconv2_bn", b.sep(p + "_sepconv2", y), eps, mom);
    y = b.pool(p + "_pool", y);
    x = b.add_layer({y, r});
    block++;
  };
  for (size_t i = 0; i < cfg.entry_blocks.size(); ++i) down_block(i > 0);
  for (int m = 0; m < cfg.middle_blocks; ++m) {
    const std::string p = "block" + std::to_string(block);
    std::string y = x;
    for (int i = 1; i <= 3; ++i) {
      const std::string s = p + "_sepconv" + std::to_string(i);
      y = b.act(s + "_act", "relu", y);
      y = b.bn(s + "_bn", s + "_bn", b.sep(s, y), eps, mom);
    }
    x = b.add_layer({y, x});
    block++;
  }
  if (cfg.exit_block > 0) down_block(true);
  for (size_t i = 1; i <= cfg.exit_convs.size(); ++i) {
    const std::string s = "block" + std::to_string(block) + "_sepconv" + std::to_string(i);
    x = b.act(s + "_act", "relu", b.bn(s + "_bn", s + "_bn", b.sep(s, x), eps, mom));
  }

  // The Ad-Corre head of Fard & Mahoor's cnn_model.py.
  std::vector<std::string> outputs;
  if (!weights_only) {
    using K = layout::Kind;
    const std::string pooled = b.add({"global_average_pooling2d", "GlobalAveragePooling2D",
                                      {{"data_format", "channels_last"}}, {x}, {}});
    std::vector<std::string> embeddings;
    for (int i = 0; i < cfg.k; ++i) {
      const std::string e = "head.embed." + std::to_string(i);
      auto w = b.t(e + ".weight");
      std::string dense = b.add({b.unique("dense"), "Dense",
                                 {{"units", w.size(0)}, {"activation", "linear"}, {"use_bias", true}},
                                 {pooled},
                                 {{"kernel", layout::to_keras(w, K::dense)}, {"bias", layout::to_keras(b.t(e + ".bias"), K::vector)}},
                                 false});
      embeddings.push_back(b.add({b.unique("lambda"), "Lambda",
                                  {{"function", {kL2NormalizeLambda, nullptr, nullptr}}, {"function_type", "lambda"},
                                   {"module", "tensorflow.python.keras.layers.core"}, {"output_shape", nullptr},
                                   {"output_shape_type", "raw"}, {"arguments", json::object()}},
                                  {dense}, {}, false}));
    }
    std::string fused = embeddings[0];
    if (cfg.k > 1) fused = b.add({"concatenate", "Concatenate", {{"axis", 1}}, embeddings, {}, false});
    fused = b.add({"dropout", "Dropout", {{"rate", cfg.dropout}}, {fused}, {}, false});
    auto w = b.t("head.classifier.weight");
    outputs.push_back(b.add({"out", "Dense", {{"units", w.size(0)}, {"activation", "softmax"}, {"use_bias", true}},
                             {fused},
                             {{"kernel", layout::to_keras(w, K::dense)},
                              {"bias", layout::to_keras(b.t("head.classifier.bias"), K::vector)}},
                             false}));
    outputs.insert(outputs.end(), embeddings.begin(), embeddings.end());
  }

  // The file.
  std::vector<std::string> layer_names;
  json layers_json = json::array();
  for (auto& l : b.layers()) {
    layer_names.push_back(l.name);
    layers_json.push_back({{"class_name", l.cls}, {"config", l.config}, {"name", l.name},
                           {"inbound_nodes", l.inputs.empty() ? json::array() : node_list(l.inputs)}});
  }
  const std::string tmp = fs::temp_path_for(path);
  try {
    hdf5::Writer w(tmp);
    w.write_string_attribute("/", "keras_version", "2.4.0");
    w.write_string_attribute("/", "backend", "tensorflow");
    std::string root = "/";
    if (!weights_only) {
      json out_refs = json::array();
      for (auto& o : outputs) out_refs.push_back({o, 0, 0});
      json model = {{"class_name", "Functional"},
                    {"config", {{"name", "model"}, {"layers", layers_json},
                                {"input_layers", json::array({json::array({"input_1", 0, 0})})},
                                {"output_layers", out_refs}}},
                    {"keras_version", "2.4.0"}, {"backend", "tensorflow"}};
      w.write_string_attribute("/", "model_config", model.dump());
      root = "model_weights";
      w.create_group(root);
      w.write_string_attribute(root, "keras_version", "2.4.0");
      w.write_string_attribute(root, "backend", "tensorflow");
    }
    w.write_string_list_attribute(root, "layer_names", layer_names);
    const std::string prefix = root == "/" ? "" : root + "/";
    for (auto& l : b.layers()) {
      w.create_group(prefix + l.name);
      std::vector<std::string> names;
      for (auto& [kind, tensor] : l.weights) {
        const std::string wn = l.name + "/" + kind + ":0";
        names.push_back(wn);
        auto c = tensor.contiguous();
        w.write_floats(prefix + l.name + "/" + wn, std::vector<int64_t>(c.sizes().begin(), c.sizes().end()),
                       c.data_ptr<float>());
      }
      w.write_string_list_attribute(prefix + l.name, "weight_names", names);
    }
    w.close();
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  fs::commit_temp(tmp, path);
}

}  // namespace adcorre::keras
