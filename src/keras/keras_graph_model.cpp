// The generic Keras graph module: one op per call of a Keras layer, run in
// topological order over numbered tensor slots. See keras/keras_graph.h.
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>

#include <torch/torch.h>

#include "adcorre/keras/keras_graph.h"
#include "adcorre/models/layers.h"
#include "adcorre/util/error.h"
#include "tensor_layout.h"

namespace adcorre::keras {

using nlohmann::json;
namespace F = torch::nn::functional;

namespace {

// ---------- config helpers ----------

std::pair<int64_t, int64_t> int_pair(const json& cfg, const char* key, const std::string& layer, int64_t dflt) {
  if (!cfg.contains(key) || cfg.at(key).is_null()) return {dflt, dflt};
  const json& v = cfg.at(key);
  if (v.is_number_integer()) return {v.get<int64_t>(), v.get<int64_t>()};
  if (v.is_array() && v.size() == 2) return {v[0].get<int64_t>(), v[1].get<int64_t>()};
  throw Error("Keras model: layer '" + layer + "' has a malformed " + key + ": " + v.dump());
}

std::string padding_of(const json& cfg, const std::string& layer) {
  const std::string p = cfg.value("padding", "valid");
  if (p != "same" && p != "valid")
    throw Error("Keras model: layer '" + layer + "' has padding '" + p + "' (same or valid)");
  return p;
}

const std::vector<std::string>& activations() {
  static const std::vector<std::string> a = {"linear", "relu", "softmax", "sigmoid", "tanh", "elu",
                                             "selu", "softplus", "softsign", "hard_sigmoid", "swish", "exponential"};
  return a;
}

std::string activation_of(const json& cfg, const std::string& layer) {
  json a = cfg.contains("activation") ? cfg.at("activation") : json("linear");
  if (a.is_null()) return "linear";
  if (a.is_object()) a = a.value("config", json::object()).value("name", a.value("class_name", json("?")));
  std::string name = a.is_string() ? a.get<std::string>() : a.dump();
  if (name == "silu") name = "swish";
  if (std::find(activations().begin(), activations().end(), name) == activations().end())
    throw Error("Keras model: layer '" + layer + "' uses the unsupported activation '" + name + "'");
  return name;
}

// Keras' activations; softmax is over the last Keras axis = channels = dim 1.
torch::Tensor activate(const std::string& a, const torch::Tensor& x) {
  if (a == "linear") return x;
  if (a == "relu") return torch::relu(x);
  if (a == "softmax") return torch::softmax(x, 1);
  if (a == "sigmoid") return torch::sigmoid(x);
  if (a == "tanh") return torch::tanh(x);
  if (a == "elu") return torch::elu(x);
  if (a == "selu") return torch::selu(x);
  if (a == "softplus") return torch::softplus(x);
  if (a == "softsign") return x / (x.abs() + 1);
  if (a == "hard_sigmoid") return (x * 0.2 + 0.5).clamp(0, 1);  // Keras 2's definition
  if (a == "swish") return x * torch::sigmoid(x);
  if (a == "exponential") return torch::exp(x);
  throw Error("unsupported activation " + a);
}

// Keras' axis (counting the batch) of a rank-`rank` tensor -> torch dim in NCHW.
int64_t torch_dim(int64_t axis, int64_t rank, const std::string& layer) {
  if (axis < 0) axis += rank;
  if (axis <= 0 || axis >= rank) throw Error("Keras model: layer '" + layer + "' uses axis " + std::to_string(axis));
  if (rank == 4) return axis == 3 ? 1 : axis + 1;
  return axis;
}

std::string module_name(const std::string& keras_name) {
  std::string s = keras_name;
  for (auto& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) s = "l_" + s;
  return s;
}

// Shapes without the batch, in Keras order: {H, W, C} or {F}.
using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s) {
  std::string r = "(None";
  for (auto d : s) r += ", " + std::to_string(d);
  return r + ")";
}

int64_t conv_out(int64_t size, int64_t k, int64_t s, int64_t d, bool same, const std::string& layer) {
  const int64_t eff = (k - 1) * d + 1;
  const int64_t out = same ? (size + s - 1) / s : (size - eff) / s + 1;
  if (out < 1 || (!same && size < eff))
    throw Error("Keras model: layer '" + layer + "' gets an input of " + std::to_string(size) +
                " pixels, too small for its window of " + std::to_string(eff));
  return out;
}

// TF 'same' padding of a 4-D NCHW tensor for a k x k window: {l, r, t, b}.
std::vector<int64_t> same_pads(const torch::Tensor& x, std::pair<int64_t, int64_t> k, std::pair<int64_t, int64_t> s,
                               std::pair<int64_t, int64_t> d) {
  auto [t, b] = models::tf_same_padding(x.size(2), k.first, s.first, d.first);
  auto [l, r] = models::tf_same_padding(x.size(3), k.second, s.second, d.second);
  return {l, r, t, b};
}

torch::Tensor conv_tf(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                      std::pair<int64_t, int64_t> k, std::pair<int64_t, int64_t> s, std::pair<int64_t, int64_t> d,
                      bool same, int64_t groups) {
  std::vector<int64_t> pad{0, 0};
  torch::Tensor in = x;
  if (same) {
    auto p = same_pads(x, k, s, d);
    if (p[0] == p[1] && p[2] == p[3]) pad = {p[2], p[0]};  // symmetric: let the conv pad
    else in = F::pad(x, F::PadFuncOptions(p));
  }
  return torch::conv2d(in, w, b, {s.first, s.second}, pad, {d.first, d.second}, groups);
}

// ---------- layers with weights ----------

class WeightedLayer : public torch::nn::Module {
 public:
  explicit WeightedLayer(std::string keras_name) : keras_name_(std::move(keras_name)) {}
  virtual void load(const KerasFile& f) = 0;
  const std::string& keras_name() const { return keras_name_; }

 protected:
  void copy(torch::Tensor& dst, const KerasFile& f, const char* kind, layout::Kind lk) {
    layout::copy_weight(dst, f.get(keras_name_, kind), lk, f.path, keras_name_);
  }
  std::string keras_name_;
};

class ConvLayer : public WeightedLayer {
 public:
  // kind: "Conv2D", "SeparableConv2D", "DepthwiseConv2D".
  ConvLayer(const std::string& name, const std::string& cls, const json& c, int64_t in_ch) : WeightedLayer(name), cls_(cls) {
    k_ = int_pair(c, "kernel_size", name, 1);
    s_ = int_pair(c, "strides", name, 1);
    d_ = int_pair(c, "dilation_rate", name, 1);
    same_ = padding_of(c, name) == "same";
    act_ = activation_of(c, name);
    const bool bias = c.value("use_bias", true);
    if (cls == "Conv2D") {
      groups_ = c.value("groups", 1);
      const int64_t filters = c.at("filters").get<int64_t>();
      if (in_ch % groups_ || filters % groups_)
        throw Error("Keras model: layer '" + name + "': channels not divisible by groups");
      weight = register_parameter("weight", torch::zeros({filters, in_ch / groups_, k_.first, k_.second}));
      out_ch_ = filters;
    } else {
      mult_ = c.value("depth_multiplier", 1);
      groups_ = in_ch;
      const std::string dw_name = cls == "SeparableConv2D" ? "depthwise_weight" : "weight";
      auto& dw = cls == "SeparableConv2D" ? depthwise : weight;
      dw = register_parameter(dw_name, torch::zeros({in_ch * mult_, 1, k_.first, k_.second}));
      out_ch_ = in_ch * mult_;
      if (cls == "SeparableConv2D") {
        out_ch_ = c.at("filters").get<int64_t>();
        pointwise = register_parameter("pointwise_weight", torch::zeros({out_ch_, in_ch * mult_, 1, 1}));
      }
    }
    if (bias) this->bias = register_parameter("bias", torch::zeros({out_ch_}));
  }

  torch::Tensor pre_activation(const torch::Tensor& x) {
    if (cls_ == "SeparableConv2D") {
      auto y = conv_tf(x, depthwise, {}, k_, s_, d_, same_, groups_);
      return torch::conv2d(y, pointwise, bias);
    }
    return conv_tf(x, weight, bias, k_, s_, d_, same_, groups_);
  }
  const std::string& activation() const { return act_; }

  Shape out_shape(const Shape& in) const {
    return {conv_out(in[0], k_.first, s_.first, d_.first, same_, keras_name_),
            conv_out(in[1], k_.second, s_.second, d_.second, same_, keras_name_), out_ch_};
  }

  void load(const KerasFile& f) override {
    if (cls_ == "Conv2D") copy(weight, f, "kernel", layout::Kind::conv);
    else if (cls_ == "DepthwiseConv2D") copy(weight, f, "depthwise_kernel", layout::Kind::depthwise);
    else {
      copy(depthwise, f, "depthwise_kernel", layout::Kind::depthwise);
      copy(pointwise, f, "pointwise_kernel", layout::Kind::pointwise);
    }
    if (bias.defined()) copy(bias, f, "bias", layout::Kind::vector);
  }

  torch::Tensor weight, depthwise, pointwise, bias;

 private:
  std::string cls_, act_;
  std::pair<int64_t, int64_t> k_, s_, d_;
  bool same_ = false;
  int64_t groups_ = 1, mult_ = 1, out_ch_ = 0;
};

class DenseLayer : public WeightedLayer {
 public:
  DenseLayer(const std::string& name, const json& c, int64_t in) : WeightedLayer(name) {
    const int64_t units = c.at("units").get<int64_t>();
    act_ = activation_of(c, name);
    weight = register_parameter("weight", torch::zeros({units, in}));
    if (c.value("use_bias", true)) bias = register_parameter("bias", torch::zeros({units}));
    units_ = units;
  }
  torch::Tensor pre_activation(const torch::Tensor& x) { return torch::linear(x, weight, bias); }
  const std::string& activation() const { return act_; }
  int64_t units() const { return units_; }
  void load(const KerasFile& f) override {
    copy(weight, f, "kernel", layout::Kind::dense);
    if (bias.defined()) copy(bias, f, "bias", layout::Kind::vector);
  }
  torch::Tensor weight, bias;

 private:
  std::string act_;
  int64_t units_ = 0;
};

class BatchNormLayer : public WeightedLayer {
 public:
  BatchNormLayer(const std::string& name, const json& c, int64_t channels) : WeightedLayer(name) {
    eps_ = c.value("epsilon", 1e-3);
    momentum_ = 1.0 - c.value("momentum", 0.99);  // PyTorch's convention
    if (c.value("scale", true)) weight = register_parameter("weight", torch::ones({channels}));
    if (c.value("center", true)) bias = register_parameter("bias", torch::zeros({channels}));
    running_mean = register_buffer("running_mean", torch::zeros({channels}));
    running_var = register_buffer("running_var", torch::ones({channels}));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum_, eps_,
                             /*cudnn_enabled=*/true);
  }
  void load(const KerasFile& f) override {
    if (weight.defined()) copy(weight, f, "gamma", layout::Kind::vector);
    if (bias.defined()) copy(bias, f, "beta", layout::Kind::vector);
    copy(running_mean, f, "moving_mean", layout::Kind::vector);
    copy(running_var, f, "moving_variance", layout::Kind::vector);
  }
  torch::Tensor weight, bias, running_mean, running_var;

 private:
  double eps_ = 1e-3, momentum_ = 0.01;
};

// ---------- the op list ----------

using Core = std::function<torch::Tensor(const std::vector<torch::Tensor>&, bool training)>;

// One call of a Keras layer: out = activate(act, core(inputs)).
struct Op {
  std::string layer, class_name;
  std::vector<int> in;        // slots read
  int out = -1;               // slot written
  int pre = -1;               // slot keeping core()'s value before the activation, or -1
  std::string act = "linear";
  Core core;
};

struct GraphOutputs {
  torch::Tensor logits, embeddings, features;
};

class KerasGraphModelImpl : public models::FerModelImpl {
 public:
  explicit KerasGraphModelImpl(const models::ModelConfig& cfg) : graph_(parse_keras_graph(cfg.graph)) { build(cfg); }

  models::FerOutput forward(const torch::Tensor& x) override {
    auto r = run_all(x);
    return {r.logits, r.embeddings};
  }
  torch::Tensor features(const torch::Tensor& x) override { return run_all(x).features; }

  void load(const KerasFile& f) {
    std::map<std::string, WeightedLayer*> by_name;
    for (auto& w : weighted_) by_name[w->keras_name()] = w.get();
    // Weights in the file for layers the graph does not have mean a mismatch.
    for (auto& [layer, ws] : f.weights)
      if (!ws.empty() && !by_name.count(layer))
        throw Error("Keras file " + f.path + ": it has weights for layer '" + layer + "', which the model graph lacks");
    for (auto& w : weighted_) {
      if (f.layer_weights(w->keras_name()).empty())
        throw Error("Keras file " + f.path + ": no weights for layer '" + w->keras_name() + "'");
      w->load(f);
    }
  }

 private:
  void build(const models::ModelConfig& cfg);
  Op make_op(const GraphLayer& l, int node, const std::vector<int>& ins, Shape& out);
  GraphOutputs run_all(const torch::Tensor& x);

  int add_slot(const Shape& s) {
    shapes_.push_back(s);
    return static_cast<int>(shapes_.size()) - 1;
  }
  template <typename M>
  std::shared_ptr<M> weighted(const std::string& name, std::function<std::shared_ptr<M>()> make) {
    for (auto& w : weighted_)
      if (w->keras_name() == name) return std::dynamic_pointer_cast<M>(w);
    auto m = make();
    std::string mname = module_name(name);
    while (named_children().contains(mname)) mname += "_";
    register_module(mname, m);
    weighted_.push_back(m);
    return m;
  }

  KerasGraph graph_;
  std::vector<Op> ops_;
  std::vector<Shape> shapes_;
  std::vector<std::shared_ptr<WeightedLayer>> weighted_;
  std::vector<size_t> last_use_;  // per slot: the last op reading it; ops_.size() = keep
  int input_slot_ = 0, logits_slot_ = -1, features_slot_ = -1;
  std::vector<int> embedding_slots_;
  Shape input_shape_;
};

Op KerasGraphModelImpl::make_op(const GraphLayer& l, int node, const std::vector<int>& ins, Shape& out) {
  const std::string& name = l.name;
  const std::string& cls = l.class_name;
  const json& c = l.config;
  Op op;
  op.layer = name;
  op.class_name = cls;
  op.in = ins;
  std::vector<Shape> in;
  for (int s : ins) in.push_back(shapes_[s]);
  auto need = [&](size_t rank) {
    for (auto& s : in)
      if (s.size() != rank)
        throw Error("Keras model: layer '" + name + "' (" + cls + ") needs a " + std::to_string(rank + 1) +
                    "-D input, gets " + shape_str(s));
  };
  auto need_one = [&] {
    if (in.size() != 1)
      throw Error("Keras model: layer '" + name + "' (" + cls + ") takes one input, gets " + std::to_string(in.size()));
  };
  auto identity = [](const std::vector<torch::Tensor>& x, bool) { return x[0]; };

  if (cls == "Conv2D" || cls == "SeparableConv2D" || cls == "DepthwiseConv2D") {
    need_one();
    need(3);
    auto m = weighted<ConvLayer>(name, [&] { return std::make_shared<ConvLayer>(name, cls, c, in[0][2]); });
    out = m->out_shape(in[0]);
    op.act = m->activation();
    op.core = [m](const std::vector<torch::Tensor>& x, bool) { return m->pre_activation(x[0]); };
  } else if (cls == "Dense") {
    need_one();
    if (in[0].size() != 1)
      throw Error("Keras model: layer '" + name + "' (Dense) on a " + std::to_string(in[0].size() + 1) +
                  "-D tensor is not supported (add a Flatten or global pooling before it)");
    auto m = weighted<DenseLayer>(name, [&] { return std::make_shared<DenseLayer>(name, c, in[0][0]); });
    out = {m->units()};
    op.act = m->activation();
    op.core = [m](const std::vector<torch::Tensor>& x, bool) { return m->pre_activation(x[0]); };
  } else if (cls == "BatchNormalization") {
    need_one();
    json axis = c.value("axis", json(-1));
    if (axis.is_array()) {
      if (axis.size() != 1) throw Error("Keras model: layer '" + name + "' normalises over several axes");
      axis = axis[0];
    }
    const int64_t rank = static_cast<int64_t>(in[0].size()) + 1;
    int64_t a = axis.get<int64_t>();
    if (a < 0) a += rank;
    if (a != rank - 1)
      throw Error("Keras model: layer '" + name + "' (BatchNormalization) uses axis " + axis.dump() +
                  "; only the channel (last) axis is supported");
    auto m = weighted<BatchNormLayer>(name, [&] { return std::make_shared<BatchNormLayer>(name, c, in[0].back()); });
    out = in[0];
    op.core = [m](const std::vector<torch::Tensor>& x, bool) { return m->forward(x[0]); };
  } else if (cls == "Activation") {
    need_one();
    out = in[0];
    op.act = activation_of(c, name);
    op.core = identity;
  } else if (cls == "ReLU") {
    need_one();
    out = in[0];
    const double slope = c.value("negative_slope", 0.0), threshold = c.value("threshold", 0.0);
    const bool has_max = c.contains("max_value") && !c.at("max_value").is_null();
    const double max_value = has_max ? c.at("max_value").get<double>() : 0.0;
    op.core = [=](const std::vector<torch::Tensor>& v, bool) {
      // Keras' backend relu(x, alpha, max_value, threshold).
      const auto& x = v[0];
      auto y = threshold != 0 ? x * (x > threshold).to(x.scalar_type()) : torch::relu(x);
      if (has_max) y = y.clamp(0, max_value);
      if (slope != 0) y = y - slope * torch::relu(threshold - x);
      return y;
    };
  } else if (cls == "LeakyReLU") {
    need_one();
    out = in[0];
    const double alpha = c.value("alpha", c.value("negative_slope", 0.3));
    op.core = [alpha](const std::vector<torch::Tensor>& x, bool) { return torch::leaky_relu(x[0], alpha); };
  } else if (cls == "Softmax") {
    need_one();
    out = in[0];
    json axis = c.value("axis", json(-1));
    if (axis.is_array() && axis.size() == 1) axis = axis[0];
    const int64_t dim = torch_dim(axis.get<int64_t>(), static_cast<int64_t>(in[0].size()) + 1, name);
    if (dim == 1) {
      op.act = "softmax";
      op.core = identity;
    } else {
      op.core = [dim](const std::vector<torch::Tensor>& x, bool) { return torch::softmax(x[0], dim); };
    }
  } else if (cls == "MaxPooling2D" || cls == "AveragePooling2D") {
    need_one();
    need(3);
    auto k = int_pair(c, "pool_size", name, 2);
    auto s = int_pair(c, "strides", name, 0);
    if (s.first == 0) s = k;  // strides None = pool_size
    const bool same = padding_of(c, name) == "same";
    out = {conv_out(in[0][0], k.first, s.first, 1, same, name), conv_out(in[0][1], k.second, s.second, 1, same, name),
           in[0][2]};
    const bool is_max = cls == "MaxPooling2D";
    op.core = [=](const std::vector<torch::Tensor>& v, bool) {
      const auto& x = v[0];
      if (is_max) {
        auto y = same ? F::pad(x, F::PadFuncOptions(same_pads(x, k, s, {1, 1}))
                                      .value(-std::numeric_limits<double>::infinity()))
                      : x;
        return torch::max_pool2d(y, {k.first, k.second}, {s.first, s.second});
      }
      if (!same) return torch::avg_pool2d(x, {k.first, k.second}, {s.first, s.second});
      // TF divides by the number of real pixels in each window.
      auto p = same_pads(x, k, s, {1, 1});
      auto sum = torch::avg_pool2d(F::pad(x, F::PadFuncOptions(p)), {k.first, k.second}, {s.first, s.second});
      auto ones = F::pad(torch::ones({1, 1, x.size(2), x.size(3)}, x.options()), F::PadFuncOptions(p));
      return sum / torch::avg_pool2d(ones, {k.first, k.second}, {s.first, s.second});
    };
  } else if (cls == "GlobalAveragePooling2D" || cls == "GlobalMaxPooling2D") {
    need_one();
    need(3);
    const bool keep = c.value("keepdims", false);
    out = keep ? Shape{1, 1, in[0][2]} : Shape{in[0][2]};
    const bool is_max = cls == "GlobalMaxPooling2D";
    op.core = [=](const std::vector<torch::Tensor>& x, bool) {
      return is_max ? x[0].amax({2, 3}, keep) : x[0].mean({2, 3}, keep);
    };
  } else if (cls == "ZeroPadding2D") {
    need_one();
    need(3);
    const json& p = c.value("padding", json(1));
    int64_t t, b, lft, r;
    if (p.is_number_integer()) {
      t = b = lft = r = p.get<int64_t>();
    } else if (p.is_array() && p.size() == 2 && p[0].is_number_integer()) {
      t = b = p[0].get<int64_t>();
      lft = r = p[1].get<int64_t>();
    } else if (p.is_array() && p.size() == 2 && p[0].is_array()) {
      t = p[0][0].get<int64_t>();
      b = p[0][1].get<int64_t>();
      lft = p[1][0].get<int64_t>();
      r = p[1][1].get<int64_t>();
    } else {
      throw Error("Keras model: layer '" + name + "' has a malformed padding " + p.dump());
    }
    out = {in[0][0] + t + b, in[0][1] + lft + r, in[0][2]};
    op.core = [=](const std::vector<torch::Tensor>& x, bool) {
      return F::pad(x[0], F::PadFuncOptions({lft, r, t, b}));
    };
  } else if (cls == "Add") {
    if (in.size() < 2) throw Error("Keras model: layer '" + name + "' (Add) needs at least 2 inputs");
    for (auto& s : in)
      if (s != in[0])
        throw Error("Keras model: layer '" + name + "' (Add) adds tensors of different shapes " + shape_str(in[0]) +
                    " and " + shape_str(s));
    out = in[0];
    op.core = [](const std::vector<torch::Tensor>& x, bool) {
      auto y = x[0] + x[1];
      for (size_t i = 2; i < x.size(); ++i) y = y + x[i];
      return y;
    };
  } else if (cls == "Concatenate") {
    if (in.empty()) throw Error("Keras model: layer '" + name + "' (Concatenate) has no inputs");
    const int64_t rank = static_cast<int64_t>(in[0].size()) + 1;
    int64_t axis = c.value("axis", -1);
    if (axis < 0) axis += rank;
    const int64_t dim = torch_dim(axis, rank, name);
    out = in[0];
    out[axis - 1] = 0;
    for (auto& s : in) {
      bool ok = s.size() == in[0].size();
      for (size_t i = 0; ok && i < s.size(); ++i) ok = static_cast<int64_t>(i) == axis - 1 || s[i] == in[0][i];
      if (!ok)
        throw Error("Keras model: layer '" + name + "' (Concatenate) joins incompatible shapes " + shape_str(in[0]) +
                    " and " + shape_str(s));
      out[axis - 1] += s[axis - 1];
    }
    op.core = [dim](const std::vector<torch::Tensor>& x, bool) { return torch::cat(x, dim); };
  } else if (cls == "Dropout") {
    need_one();
    out = in[0];
    const double rate = c.value("rate", 0.5);
    op.core = [rate](const std::vector<torch::Tensor>& x, bool training) { return torch::dropout(x[0], rate, training); };
  } else if (cls == "Flatten") {
    need_one();
    int64_t n = 1;
    for (auto d : in[0]) n *= d;
    out = {n};
    // Keras flattens NHWC: channels vary fastest.
    op.core = [](const std::vector<torch::Tensor>& x, bool) {
      return x[0].dim() == 4 ? x[0].permute({0, 2, 3, 1}).flatten(1) : x[0].flatten(1);
    };
  } else if (cls == "Lambda" || cls == "TFOpLambda") {
    need_one();
    if (in[0].size() != 1)
      throw Error("Keras model: layer '" + name + "' (L2 normalisation) on a " + std::to_string(in[0].size() + 1) +
                  "-D tensor is not supported (only on vectors)");
    out = in[0];
    op.core = [](const std::vector<torch::Tensor>& x, bool) { return models::l2_normalize(x[0]); };
  } else {
    throw Error("Keras model: layer '" + name + "' has the unsupported class " + cls);
  }
  (void)node;
  return op;
}

void KerasGraphModelImpl::build(const models::ModelConfig& cfg) {
  auto shape = graph_.input_shape();
  const GraphLayer* input_layer = graph_.find(graph_.inputs[0].layer);
  if (input_layer->class_name != "InputLayer")
    throw Error("Keras model: the model input '" + input_layer->name + "' is not an InputLayer");
  for (int i = 0; i < 2; ++i) {
    if (shape[i] < 0) shape[i] = cfg.input_size;
    if (shape[i] != cfg.input_size)
      throw Error("Keras model: input is " + std::to_string(shape[0]) + "x" + std::to_string(shape[1]) +
                  " but the adcorre config says input_size " + std::to_string(cfg.input_size));
  }
  if (shape[2] < 0) shape[2] = cfg.in_channels;
  if (shape[2] != cfg.in_channels)
    throw Error("Keras model: input has " + std::to_string(shape[2]) + " channels but the adcorre config says " +
                std::to_string(cfg.in_channels));
  input_shape_ = shape;

  std::map<std::pair<std::string, int>, int> slot_of;
  input_slot_ = add_slot(shape);
  slot_of[{input_layer->name, 0}] = input_slot_;

  // Topological order: schedule a call once all its inputs exist.
  std::vector<std::pair<const GraphLayer*, int>> pending;
  for (auto& l : graph_.layers)
    if (l.class_name != "InputLayer")
      for (int n = 0; n < static_cast<int>(l.nodes.size()); ++n) pending.push_back({&l, n});
  while (!pending.empty()) {
    bool progress = false;
    for (auto it = pending.begin(); it != pending.end();) {
      const auto& [l, n] = *it;
      std::vector<int> ins;
      bool ready = true;
      for (auto& r : l->nodes[n]) {
        if (r.tensor != 0)
          throw Error("Keras model: layer '" + l->name + "' uses output " + std::to_string(r.tensor) + " of '" +
                      r.layer + "' (multi-output layers are not supported)");
        auto s = slot_of.find({r.layer, r.node});
        if (s == slot_of.end()) {
          ready = false;
          break;
        }
        ins.push_back(s->second);
      }
      if (!ready) {
        ++it;
        continue;
      }
      Shape out;
      Op op = make_op(*l, n, ins, out);
      op.out = add_slot(out);
      slot_of[{l->name, n}] = op.out;
      ops_.push_back(std::move(op));
      it = pending.erase(it);
      progress = true;
    }
    if (!progress) {
      const GraphLayer* l = pending.front().first;
      throw Error("Keras model: layer '" + l->name + "' cannot be computed (an input is never produced or the graph has a cycle)");
    }
  }

  auto slot_for = [&](const NodeRef& r) {
    auto s = slot_of.find({r.layer, r.node});
    if (s == slot_of.end()) throw Error("Keras model: output '" + r.layer + "' is never computed");
    return s->second;
  };
  auto op_writing = [&](int slot) -> Op* {
    for (auto& op : ops_)
      if (op.out == slot) return &op;
    return nullptr;
  };
  // Logits: the first output, before its softmax when it ends in one.
  const int out0 = slot_for(graph_.outputs[0]);
  if (shapes_[out0].size() != 1)
    throw Error("Keras model: the first output '" + graph_.outputs[0].layer + "' has shape " + shape_str(shapes_[out0]) +
                "; adcorre needs a vector of class scores");
  logits_slot_ = out0;
  if (Op* op = op_writing(out0); op && op->act == "softmax") {
    op->pre = add_slot(shapes_[out0]);
    logits_slot_ = op->pre;
  }
  // Features: the last global pooling / flatten before the output; else the logits.
  features_slot_ = logits_slot_;
  for (auto& op : ops_)
    if ((op.class_name == "GlobalAveragePooling2D" || op.class_name == "GlobalMaxPooling2D" ||
         op.class_name == "Flatten") && shapes_[op.out].size() == 1)
      features_slot_ = op.out;
  // Embeddings: the other outputs when all are L2 normalisations of one size.
  for (size_t i = 1; i < graph_.outputs.size(); ++i) {
    const int s = slot_for(graph_.outputs[i]);
    Op* op = op_writing(s);
    if (!op || (op->class_name != "Lambda" && op->class_name != "TFOpLambda") ||
        shapes_[s] != shapes_[slot_for(graph_.outputs[1])]) {
      embedding_slots_.clear();
      break;
    }
    embedding_slots_.push_back(s);
  }
  // Free intermediate tensors after their last reader.
  last_use_.assign(shapes_.size(), 0);
  for (size_t i = 0; i < ops_.size(); ++i)
    for (int s : ops_[i].in) last_use_[s] = i;
  for (int s : {logits_slot_, features_slot_}) last_use_[s] = ops_.size();
  for (int s : embedding_slots_) last_use_[s] = ops_.size();

  // Keras' default initialisers (Glorot uniform kernels, zero biases) until weights are loaded.
  torch::NoGradGuard ng;
  for (auto& p : named_parameters())
    if (p.value().dim() >= 2) torch::nn::init::xavier_uniform_(p.value());
}

GraphOutputs KerasGraphModelImpl::run_all(const torch::Tensor& x) {
  if (x.dim() != 4 || x.size(1) != input_shape_[2] || x.size(2) != input_shape_[0] || x.size(3) != input_shape_[1]) {
    std::ostringstream ss;
    ss << "Keras graph model: input of shape " << x.sizes() << ", expected [B, " << input_shape_[2] << ", "
       << input_shape_[0] << ", " << input_shape_[1] << "]";
    throw Error(ss.str());
  }
  const bool training = is_training();
  std::vector<torch::Tensor> slots(shapes_.size());
  slots[input_slot_] = x;
  std::vector<torch::Tensor> ins;
  for (size_t i = 0; i < ops_.size(); ++i) {
    const Op& op = ops_[i];
    ins.clear();
    for (int s : op.in) ins.push_back(slots[s]);
    auto y = op.core(ins, training);
    if (op.pre >= 0) slots[op.pre] = y;
    slots[op.out] = activate(op.act, y);
    for (int s : op.in)
      if (last_use_[s] == i) slots[s] = torch::Tensor();
  }
  GraphOutputs r;
  r.logits = slots[logits_slot_];
  r.features = slots[features_slot_];
  if (!embedding_slots_.empty()) {
    std::vector<torch::Tensor> e;
    for (int s : embedding_slots_) e.push_back(slots[s]);
    r.embeddings = torch::stack(e);
  }
  return r;
}

}  // namespace

models::FerModel make_graph_model(const models::ModelConfig& config) {
  if (config.arch != "keras_graph") throw Error("make_graph_model: config arch is '" + config.arch + "'");
  return std::make_shared<KerasGraphModelImpl>(config);
}

void load_graph_weights(models::FerModelImpl& net, const KerasFile& file) {
  auto* g = dynamic_cast<KerasGraphModelImpl*>(&net);
  if (!g) throw Error("load_graph_weights: the model is not a Keras graph model");
  g->load(file);
}

}  // namespace adcorre::keras

// The hook create_model() calls for arch "keras_graph".
namespace adcorre::models {
FerModel create_keras_graph_model(const ModelConfig& cfg) { return keras::make_graph_model(cfg); }
}  // namespace adcorre::models
