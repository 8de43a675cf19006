// Parsing a Keras model_config into a KerasGraph (no torch here).
#include <algorithm>
#include <cstdint>
#include <set>

#include "adcorre/keras/keras_graph.h"
#include "adcorre/util/base64.h"
#include "adcorre/util/error.h"

namespace adcorre::keras {

using nlohmann::json;

std::vector<std::string> supported_layer_classes() {
  return {"InputLayer", "Conv2D", "SeparableConv2D", "DepthwiseConv2D", "BatchNormalization", "Activation",
          "ReLU", "LeakyReLU", "Softmax", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
          "GlobalMaxPooling2D", "ZeroPadding2D", "Add", "Concatenate", "Dense", "Dropout", "Flatten",
          "Lambda (L2 normalisation)", "TFOpLambda (l2_normalize)"};
}

const GraphLayer* KerasGraph::find(const std::string& name) const {
  for (auto& l : layers)
    if (l.name == name) return &l;
  return nullptr;
}

std::vector<int64_t> KerasGraph::input_shape() const {
  if (inputs.size() != 1) throw Error("Keras model: " + std::to_string(inputs.size()) + " inputs (adcorre needs 1)");
  const GraphLayer* in = find(inputs[0].layer);
  if (!in) throw Error("Keras model: input layer '" + inputs[0].layer + "' is not among the layers");
  json shape;
  for (const char* key : {"batch_input_shape", "batch_shape"})
    if (in->config.contains(key)) shape = in->config.at(key);
  if (!shape.is_array() || shape.size() != 4)
    throw Error("Keras model: input layer '" + in->name + "' needs a 4-D batch_input_shape (batch, H, W, C), got " +
                shape.dump());
  std::vector<int64_t> out;
  for (size_t i = 1; i < 4; ++i) out.push_back(shape[i].is_null() ? -1 : shape[i].get<int64_t>());
  return out;
}

namespace {

NodeRef parse_ref(const json& r, const std::string& layer) {
  // [name, node_index, tensor_index, kwargs]; kwargs optional.
  if (!r.is_array() || r.size() < 3 || !r[0].is_string())
    throw Error("Keras model: layer '" + layer + "' has a malformed inbound node " + r.dump().substr(0, 120) +
                " (Keras 3 .keras configs are not supported; save with Keras 2 / tf.keras as .h5)");
  NodeRef n;
  n.layer = r[0].get<std::string>();
  n.node = r[1].get<int>();
  n.tensor = r[2].get<int>();
  if (r.size() > 3) n.kwargs = r[3];
  return n;
}

std::vector<NodeRef> parse_io(const json& j, const char* field) {
  // [[name, node, tensor], ...] or, for a single one, [name, node, tensor].
  std::vector<NodeRef> out;
  if (!j.is_array() || j.empty()) throw Error(std::string("Keras model: '") + field + "' is missing or empty");
  if (j[0].is_string()) {
    out.push_back(parse_ref(j, field));
  } else {
    for (auto& r : j) out.push_back(parse_ref(r, field));
  }
  return out;
}

void check_supported(const GraphLayer& l) {
  static const std::set<std::string> plain = {
      "InputLayer", "Conv2D", "SeparableConv2D", "DepthwiseConv2D", "BatchNormalization", "Activation",
      "ReLU", "LeakyReLU", "Softmax", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
      "GlobalMaxPooling2D", "ZeroPadding2D", "Add", "Concatenate", "Dense", "Dropout", "Flatten"};
  if (plain.count(l.class_name)) {
    if (l.config.value("data_format", "channels_last") != "channels_last")
      throw Error("Keras model: layer '" + l.name + "' (" + l.class_name + ") uses data_format " +
                  l.config.value("data_format", "") + "; only channels_last is supported");
    return;
  }
  if (l.class_name == "Lambda" || l.class_name == "TFOpLambda") {
    for (auto& node : l.nodes)
      for (auto& ref : node)
        if (!is_l2_normalize_layer(l, ref.kwargs))
          throw Error("Keras model: layer '" + l.name + "' (" + l.class_name +
                      ") is not recognisably an L2 normalisation; adcorre runs only l2_normalize Lambda layers");
    if (l.nodes.empty() && !is_l2_normalize_layer(l))
      throw Error("Keras model: layer '" + l.name + "' (" + l.class_name +
                  ") is not recognisably an L2 normalisation; adcorre runs only l2_normalize Lambda layers");
    return;
  }
  if (l.class_name == "Model" || l.class_name == "Functional" || l.class_name == "Sequential")
    throw Error("Keras model: layer '" + l.name + "' is a nested model; flatten it in Keras first "
                "(e.g. build the outer model from base_model.input and base_model.output)");
  std::string known;
  for (auto& c : supported_layer_classes()) known += (known.empty() ? "" : ", ") + c;
  throw Error("Keras model: layer '" + l.name + "' has the unsupported class " + l.class_name + " (supported: " +
              known + ")");
}

GraphLayer layer_from_json(const json& lj) {
  GraphLayer l;
  if (!lj.is_object() || !lj.contains("class_name") || !lj.contains("config"))
    throw Error("Keras model: a layer entry has no class_name/config: " + lj.dump().substr(0, 120));
  l.class_name = lj.at("class_name").get<std::string>();
  l.config = lj.at("config");
  if (lj.contains("name")) l.name = lj.at("name").get<std::string>();
  else if (l.config.contains("name")) l.name = l.config.at("name").get<std::string>();
  if (l.name.empty()) throw Error("Keras model: a " + l.class_name + " layer has no name");
  return l;
}

// A Sequential becomes a chain from a synthesized (or its own) InputLayer.
KerasGraph parse_sequential(const json& cfg) {
  const json& layers = cfg.is_array() ? cfg : cfg.value("layers", json::array());
  if (!layers.is_array() || layers.empty()) throw Error("Keras model: Sequential with no layers");
  KerasGraph g;
  size_t first = 0;
  GraphLayer input;
  GraphLayer l0 = layer_from_json(layers[0]);
  if (l0.class_name == "InputLayer") {
    input = l0;
    first = 1;
  } else {
    input.class_name = "InputLayer";
    input.name = "input_for_" + l0.name;
    for (const char* key : {"batch_input_shape", "batch_shape"})
      if (l0.config.contains(key)) input.config["batch_input_shape"] = l0.config.at(key);
    if (!input.config.contains("batch_input_shape"))
      throw Error("Keras model: the first layer of the Sequential ('" + l0.name + "') has no batch_input_shape");
  }
  g.layers.push_back(input);
  g.inputs.push_back({input.name, 0, 0, nullptr});
  std::string prev = input.name;
  for (size_t i = first; i < layers.size(); ++i) {
    GraphLayer l = layer_from_json(layers[i]);
    l.nodes.push_back({NodeRef{prev, 0, 0, nullptr}});
    prev = l.name;
    g.layers.push_back(std::move(l));
  }
  g.outputs.push_back({prev, 0, 0, nullptr});
  return g;
}

}  // namespace

bool is_l2_normalize_layer(const GraphLayer& l, const json& kwargs) {
  auto last_axis = [](const json& axis) {
    if (axis.is_null()) return true;
    if (axis.is_array()) return axis.size() == 1 && (axis[0] == -1 || axis[0] == 1);
    return axis == -1 || axis == 1;
  };
  if (l.class_name == "TFOpLambda") {
    const std::string fn = l.config.value("function", "");
    if (fn.find("l2_normalize") == std::string::npos) return false;
    return !kwargs.is_object() || !kwargs.contains("axis") || last_axis(kwargs.at("axis"));
  }
  if (l.class_name != "Lambda") return false;
  if (l.config.contains("arguments") && l.config.at("arguments").is_object() &&
      l.config.at("arguments").contains("axis") && !last_axis(l.config.at("arguments").at("axis")))
    return false;
  const json& fn = l.config.contains("function") ? l.config.at("function") : json();
  const std::string type = l.config.value("function_type", "lambda");
  if (type == "lambda") {
    // Keras' func_dump: [base64 marshal of the code, defaults, closure]; the
    // code object names the functions it calls.
    std::string code = fn.is_array() && !fn.empty() && fn[0].is_string() ? fn[0].get<std::string>()
                       : fn.is_string()                                     ? fn.get<std::string>()
                                                                            : "";
    return util::base64_decode(code).find("l2_normalize") != std::string::npos;
  }
  // A named module-level function.
  const std::string name = fn.is_string() ? fn.get<std::string>() : "";
  return name.find("l2_norm") != std::string::npos;
}

KerasGraph parse_keras_graph(const json& model_config) {
  if (!model_config.is_object() || !model_config.contains("class_name") || !model_config.contains("config"))
    throw Error("Keras model: model_config needs class_name and config");
  const std::string cls = model_config.at("class_name").get<std::string>();
  const json& cfg = model_config.at("config");
  KerasGraph g;
  try {
    if (cls == "Sequential") {
      g = parse_sequential(cfg);
    } else if (cls == "Model" || cls == "Functional") {
      if (!cfg.contains("layers") || !cfg.at("layers").is_array())
        throw Error("Keras model: the functional config has no layers");
      for (auto& lj : cfg.at("layers")) {
        GraphLayer l = layer_from_json(lj);
        const json& nodes = lj.value("inbound_nodes", json::array());
        for (auto& node : nodes) {
          std::vector<NodeRef> refs;
          if (!node.is_array())
            throw Error("Keras model: layer '" + l.name +
                        "' has a malformed inbound node (Keras 3 configs are not supported; save with Keras 2 / tf.keras as .h5)");
          for (auto& r : node) refs.push_back(parse_ref(r, l.name));
          l.nodes.push_back(std::move(refs));
        }
        g.layers.push_back(std::move(l));
      }
      g.inputs = parse_io(cfg.value("input_layers", json()), "input_layers");
      g.outputs = parse_io(cfg.value("output_layers", json()), "output_layers");
    } else {
      throw Error("Keras model: model class " + cls + " is not supported (Model, Functional or Sequential)");
    }
  } catch (const json::exception& e) {
    throw Error(std::string("Keras model: malformed model_config (") + e.what() + ")");
  }
  std::set<std::string> names;
  for (auto& l : g.layers) {
    if (!names.insert(l.name).second) throw Error("Keras model: two layers are named '" + l.name + "'");
    check_supported(l);
  }
  for (auto& l : g.layers)
    for (auto& node : l.nodes)
      for (auto& r : node)
        if (!names.count(r.layer))
          throw Error("Keras model: layer '" + l.name + "' takes input from unknown layer '" + r.layer + "'");
  for (auto* io : {&g.inputs, &g.outputs})
    for (auto& r : *io)
      if (!names.count(r.layer)) throw Error("Keras model: model input/output '" + r.layer + "' is not a layer");
  if (g.inputs.size() != 1)
    throw Error("Keras model: " + std::to_string(g.inputs.size()) + " inputs (adcorre models take one image)");
  return g;
}

}  // namespace adcorre::keras
