// The TensorFlow.js graph-model interpreter of tfjs_graph.h.
#include "infer/tfjs_graph.h"

#include <cstring>
#include <functional>
#include <limits>

#include <nlohmann/json.hpp>
#include <torch/nn/functional.h>
#include <torch/torch.h>

#include "adcorre/onnx/onnx_writer.h"
#include "adcorre/util/base64.h"
#include "adcorre/util/error.h"

namespace adcorre::infer::detail {
namespace F = torch::nn::functional;

namespace {

using util::base64_decode;  // graph-model attributes hold strings in base64 (TensorFlow's proto JSON)

std::vector<int64_t> int_list(const nlohmann::json& attr, const char* key) {
  std::vector<int64_t> v;
  if (!attr.contains(key)) return v;
  const auto& l = attr.at(key).value("list", nlohmann::json::object());
  for (const auto& x : l.value("i", nlohmann::json::array())) v.push_back(x.is_string() ? std::stoll(x.get<std::string>()) : x.get<int64_t>());
  return v;
}

std::string str_attr(const nlohmann::json& attr, const char* key) {
  if (!attr.contains(key) || !attr.at(key).contains("s")) return "";
  return base64_decode(attr.at(key).at("s").get<std::string>());
}

torch::Tensor to_nchw(const torch::Tensor& x) { return x.permute({0, 3, 1, 2}); }
torch::Tensor to_nhwc(const torch::Tensor& x) { return x.permute({0, 2, 3, 1}); }

// TensorFlow's SAME padding for one spatial dimension: {before, after}.
std::pair<int64_t, int64_t> same_pad(int64_t in, int64_t k, int64_t stride, int64_t dilation) {
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + (k - 1) * dilation + 1 - in, 0);
  return {total / 2, total - total / 2};
}

}  // namespace

TfjsGraph::TfjsGraph(std::string_view model_json, std::string_view weights, std::string name) : name_(std::move(name)) {
  nlohmann::json m;
  try {
    m = nlohmann::json::parse(model_json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(name_ + ": not a TensorFlow.js model (JSON: " + e.what() + ")");
  }
  auto fail = [&](const std::string& what) { throw Error(name_ + ": " + what); };
  if (m.value("format", "") != "graph-model") fail("not a TensorFlow.js graph model (format '" + m.value("format", "") + "')");
  if (!m.contains("modelTopology") || !m["modelTopology"].contains("node")) fail("no modelTopology.node");

  // The weights, in manifest order over the concatenated shards.
  std::map<std::string, torch::Tensor> consts;
  size_t offset = 0;
  for (const auto& group : m.value("weightsManifest", nlohmann::json::array()))
    for (const auto& w : group.value("weights", nlohmann::json::array())) {
      const std::string wname = w.value("name", "");
      if (w.contains("quantization")) fail("weight " + wname + " is quantized (not supported)");
      const std::string dtype = w.value("dtype", "float32");
      std::vector<int64_t> shape;
      int64_t count = 1;
      for (const auto& s : w.value("shape", nlohmann::json::array())) {
        const int64_t d = s.get<int64_t>();
        if (d < 0 || d > (1 << 24)) fail("weight " + wname + " has a bad shape");
        shape.push_back(d);
        count *= d;
        if (count > (1 << 26)) fail("weight " + wname + " is too large");
      }
      if (dtype != "float32" && dtype != "int32") fail("weight " + wname + " has dtype " + dtype + " (supported: float32, int32)");
      const size_t bytes = static_cast<size_t>(count) * 4;
      if (offset + bytes > weights.size())
        fail("the weights end at byte " + std::to_string(weights.size()) + ", before weight " + wname + " (needs bytes " +
             std::to_string(offset) + ".." + std::to_string(offset + bytes) + ")");
      auto t = torch::empty(shape, dtype == "float32" ? torch::kFloat32 : torch::kInt32);
      std::memcpy(t.data_ptr(), weights.data() + offset, bytes);
      offset += bytes;
      consts[wname] = t;
    }
  if (offset != weights.size())
    fail("the weight data has " + std::to_string(weights.size()) + " bytes, the manifest describes " + std::to_string(offset));

  // Nodes by name, then a depth-first topological order from every node.
  const auto& jnodes = m["modelTopology"]["node"];
  std::map<std::string, const nlohmann::json*> by_name;
  for (const auto& n : jnodes) by_name[n.value("name", "")] = &n;
  std::map<std::string, int> state;  // 1 visiting, 2 done
  std::function<void(const std::string&)> visit = [&](const std::string& nm) {
    auto& s = state[nm];
    if (s == 2) return;
    if (s == 1) fail("the graph has a cycle through node " + nm);
    s = 1;
    const auto it = by_name.find(nm);
    if (it == by_name.end()) fail("node input '" + nm + "' names no node");
    const nlohmann::json& jn = *it->second;
    Node n;
    n.name = nm;
    n.op = jn.value("op", "");
    for (const auto& in : jn.value("input", nlohmann::json::array())) {
      std::string src = in.get<std::string>();
      if (!src.empty() && src[0] == '^') continue;  // a control dependency
      if (const auto colon = src.find(':'); colon != std::string::npos) {
        if (src.substr(colon + 1) != "0") fail("node " + nm + " uses output " + src + " (only first outputs are supported)");
        src = src.substr(0, colon);
      }
      visit(src);
      n.inputs.push_back(index_.at(src));
    }
    const nlohmann::json attr = jn.value("attr", nlohmann::json::object());
    auto need_inputs = [&](size_t k) {
      if (n.inputs.size() != k) fail("node " + nm + " (" + n.op + ") has " + std::to_string(n.inputs.size()) + " inputs, not " + std::to_string(k));
    };
    auto const_of = [&](int input) -> torch::Tensor {
      const Node& c = nodes_.at(static_cast<size_t>(n.inputs.at(static_cast<size_t>(input))));
      if (c.op != "Const") fail("node " + nm + " (" + n.op + "): input " + std::to_string(input) + " must be a constant");
      return c.value;
    };
    auto conv_attrs = [&] {
      if (const auto fmt = str_attr(attr, "data_format"); !fmt.empty() && fmt != "NHWC") fail("node " + nm + ": data_format " + fmt + " (only NHWC)");
      const std::string pad = str_attr(attr, "padding");
      if (pad != "SAME" && pad != "VALID") fail("node " + nm + ": padding '" + pad + "' (supported: SAME, VALID)");
      n.same = pad == "SAME";
      const auto st = int_list(attr, "strides"), di = int_list(attr, "dilations"), ks = int_list(attr, "ksize");
      if (st.size() == 4) n.strides = {st[1], st[2]};
      if (di.size() == 4) n.dilations = {di[1], di[2]};
      if (ks.size() == 4) n.ksize = {ks[1], ks[2]};
      for (auto v : {n.strides[0], n.strides[1], n.dilations[0], n.dilations[1], n.ksize[0], n.ksize[1]})
        if (v < 1 || v > 64) fail("node " + nm + ": stride, dilation or kernel size " + std::to_string(v) + " out of range");
    };
    if (n.op == "Const") {
      const auto c = consts.find(nm);
      if (c == consts.end()) fail("constant " + nm + " has no weights in the manifest");
      n.value = c->second;
    } else if (n.op == "Placeholder") {
      if (input_node_ >= 0) fail("more than one input (Placeholder) node");
      input_node_ = static_cast<int>(nodes_.size());
      for (const auto& d : attr.value("shape", nlohmann::json::object()).value("shape", nlohmann::json::object()).value("dim", nlohmann::json::array()))
        input_shape_.push_back(d.contains("size") ? std::stoll(d["size"].get<std::string>()) : -1);
    } else if (n.op == "_FusedConv2D" || n.op == "Conv2D") {
      conv_attrs();
      need_inputs(n.op == "Conv2D" ? 2 : 3);
      n.weight = const_of(1).permute({3, 2, 0, 1}).contiguous();  // HWIO -> OIHW
      if (n.weight.scalar_type() != torch::kFloat32 || n.weight.dim() != 4) fail("node " + nm + ": filter must be 4-D float32");
      if (n.op == "_FusedConv2D") {
        std::vector<std::string> fused;
        for (const auto& s : attr.value("fused_ops", nlohmann::json::object()).value("list", nlohmann::json::object()).value("s", nlohmann::json::array()))
          fused.push_back(base64_decode(s.get<std::string>()));
        if (fused.empty() || fused[0] != "BiasAdd" || fused.size() > 2) fail("node " + nm + ": fused ops other than BiasAdd[, Relu|Relu6]");
        if (fused.size() == 2) {
          if (fused[1] == "Relu") n.activation = 1;
          else if (fused[1] == "Relu6") n.activation = 2;
          else fail("node " + nm + ": fused activation " + fused[1] + " (supported: Relu, Relu6)");
        }
        n.bias = const_of(2).reshape({-1});
        if (n.bias.size(0) != n.weight.size(0)) fail("node " + nm + ": bias size differs from the filter's output channels");
      }
    } else if (n.op == "DepthwiseConv2dNative") {
      conv_attrs();
      need_inputs(2);
      const auto f = const_of(1);  // H, W, C, multiplier
      if (f.dim() != 4 || f.scalar_type() != torch::kFloat32) fail("node " + nm + ": filter must be 4-D float32");
      n.weight = f.permute({2, 3, 0, 1}).reshape({f.size(2) * f.size(3), 1, f.size(0), f.size(1)}).contiguous();
    } else if (n.op == "MaxPool") {
      conv_attrs();
      need_inputs(1);
    } else if (n.op == "Pad") {
      need_inputs(2);
      n.value = const_of(1).to(torch::kInt64);
      if (n.value.numel() != 8) fail("node " + nm + ": paddings must be 4x2");
    } else if (n.op == "Reshape") {
      need_inputs(2);
      n.value = const_of(1).to(torch::kInt64);
    } else if (n.op == "AddV2" || n.op == "Add") {
      need_inputs(2);
    } else if (n.op == "Relu" || n.op == "Relu6" || n.op == "Identity") {
      need_inputs(1);
    } else {
      fail("node " + nm + " has op " + n.op + ", which adcorre's TensorFlow.js interpreter does not support");
    }
    index_[nm] = static_cast<int>(nodes_.size());
    nodes_.push_back(std::move(n));
    s = 2;
  };
  for (const auto& n : jnodes) visit(n.value("name", ""));
  if (input_node_ < 0) fail("no input (Placeholder) node");
}

torch::Tensor TfjsGraph::eval_node(const Node& n, const std::vector<torch::Tensor>& vals, const std::vector<bool>& nchw,
                                   bool& out_nchw) const {
  auto in = [&](size_t i) { return vals[static_cast<size_t>(n.inputs[i])]; };
  auto in_nchw = [&](size_t i) {
    const auto& t = in(i);
    return nchw[static_cast<size_t>(n.inputs[i])] ? t : to_nchw(t);
  };
  auto in_nhwc = [&](size_t i) {
    const auto& t = in(i);
    return nchw[static_cast<size_t>(n.inputs[i])] ? to_nhwc(t) : t;
  };
  auto padded = [&](torch::Tensor x, int64_t kh, int64_t kw, double fill) {
    if (!n.same) return x;
    const auto [t, b] = same_pad(x.size(2), kh, n.strides[0], n.dilations[0]);
    const auto [l, r] = same_pad(x.size(3), kw, n.strides[1], n.dilations[1]);
    if (t == 0 && b == 0 && l == 0 && r == 0) return x;
    return F::pad(x, F::PadFuncOptions({l, r, t, b}).value(fill));
  };
  out_nchw = true;
  if (n.op == "Const") {
    out_nchw = false;
    return n.value;
  }
  if (n.op == "_FusedConv2D" || n.op == "Conv2D" || n.op == "DepthwiseConv2dNative") {
    const bool depthwise = n.op == "DepthwiseConv2dNative";
    auto x = in_nchw(0);
    std::vector<int64_t> pad{0, 0};
    if (n.same) {
      // Symmetric SAME padding goes to the convolution itself (no copy); only
      // the odd extra pixel of a strided layer needs an explicit pad.
      const auto [t, b] = same_pad(x.size(2), n.weight.size(2), n.strides[0], n.dilations[0]);
      const auto [l, r] = same_pad(x.size(3), n.weight.size(3), n.strides[1], n.dilations[1]);
      if (t == b && l == r) pad = {t, l};
      else x = F::pad(x, F::PadFuncOptions({l, r, t, b}));
    }
    auto y = torch::conv2d(x, n.weight, n.bias.defined() ? n.bias : torch::Tensor(), n.strides, pad, n.dilations,
                           depthwise ? x.size(1) : 1);
    if (n.activation == 1) y.relu_();
    if (n.activation == 2) y.clamp_(0, 6);
    return y;
  }
  if (n.op == "MaxPool") {
    auto x = padded(in_nchw(0), n.ksize[0], n.ksize[1], -std::numeric_limits<double>::infinity());
    return torch::max_pool2d(x, n.ksize, n.strides);
  }
  if (n.op == "Pad") {
    const auto p = n.value.reshape({4, 2});
    auto at = [&](int r, int c) { return p[r][c].item<int64_t>(); };
    // NHWC paddings; F::pad lists the last NCHW dimension first.
    return F::pad(in_nchw(0), F::PadFuncOptions({at(2, 0), at(2, 1), at(1, 0), at(1, 1), at(3, 0), at(3, 1), at(0, 0), at(0, 1)}));
  }
  if (n.op == "AddV2" || n.op == "Add") {
    const bool a4 = nchw[static_cast<size_t>(n.inputs[0])], b4 = nchw[static_cast<size_t>(n.inputs[1])];
    if (a4 && b4) return in(0) + in(1);
    out_nchw = false;
    return in_nhwc(0) + in_nhwc(1);
  }
  if (n.op == "Relu" || n.op == "Relu6" || n.op == "Identity") {
    out_nchw = nchw[static_cast<size_t>(n.inputs[0])];
    const auto& x = in(0);
    return n.op == "Relu" ? torch::relu(x) : n.op == "Relu6" ? torch::clamp(x, 0, 6) : x;
  }
  if (n.op == "Reshape") {
    out_nchw = false;
    std::vector<int64_t> shape(n.value.data_ptr<int64_t>(), n.value.data_ptr<int64_t>() + n.value.numel());
    return in_nhwc(0).contiguous().reshape(shape);
  }
  throw Error(name_ + ": node " + n.name + ": op " + n.op + " cannot be run");
}

std::vector<torch::Tensor> TfjsGraph::run(const torch::Tensor& input, const std::vector<std::string>& outputs) const {
  check(input.dim() == static_cast<int64_t>(input_shape_.size()), name_ + ": input has " + std::to_string(input.dim()) +
                                                                         " dimensions, the model takes " + std::to_string(input_shape_.size()));
  for (size_t i = 0; i < input_shape_.size(); ++i)
    check(input_shape_[i] < 0 || input.size(static_cast<int64_t>(i)) == input_shape_[i],
          name_ + ": input dimension " + std::to_string(i) + " is " + std::to_string(input.size(static_cast<int64_t>(i))) +
              ", the model takes " + std::to_string(input_shape_[i]));
  std::vector<int> want;
  for (const auto& o : outputs) {
    const auto it = index_.find(o);
    check(it != index_.end(), name_ + ": no node named " + o);
    want.push_back(it->second);
  }
  // Only the nodes the outputs depend on (every node precedes its users).
  std::vector<bool> needed(nodes_.size(), false);
  for (int w : want) needed[static_cast<size_t>(w)] = true;
  for (size_t i = nodes_.size(); i-- > 0;)
    if (needed[i])
      for (int j : nodes_[i].inputs) needed[static_cast<size_t>(j)] = true;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> vals(nodes_.size());
  std::vector<bool> nchw(nodes_.size(), false);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!needed[i]) continue;
    if (static_cast<int>(i) == input_node_) {
      vals[i] = input.dim() == 4 ? to_nchw(input.to(torch::kFloat32)) : input.to(torch::kFloat32);
      nchw[i] = input.dim() == 4;
      continue;
    }
    bool out_nchw = false;
    vals[i] = eval_node(nodes_[i], vals, nchw, out_nchw);
    nchw[i] = out_nchw && vals[i].dim() == 4;
  }
  std::vector<torch::Tensor> out;
  for (int w : want) out.push_back(nchw[static_cast<size_t>(w)] ? to_nhwc(vals[static_cast<size_t>(w)]).contiguous() : vals[static_cast<size_t>(w)]);
  return out;
}

TfjsGraph::Onnx TfjsGraph::to_onnx(const std::vector<std::string>& outputs) const {
  Onnx result;
  std::vector<int> want;
  for (const auto& o : outputs) {
    const auto it = index_.find(o);
    check(it != index_.end(), name_ + ": no node named " + o);
    int i = it->second;
    std::vector<int64_t> shape;
    while (nodes_[static_cast<size_t>(i)].op == "Identity" || nodes_[static_cast<size_t>(i)].op == "Reshape") {
      const Node& n = nodes_[static_cast<size_t>(i)];
      if (n.op == "Reshape" && shape.empty())
        shape.assign(n.value.data_ptr<int64_t>(), n.value.data_ptr<int64_t>() + n.value.numel());
      i = n.inputs.at(0);
    }
    want.push_back(i);
    result.reshapes.push_back(shape);
  }
  std::vector<bool> needed(nodes_.size(), false);
  for (int w : want) needed[static_cast<size_t>(w)] = true;
  for (size_t i = nodes_.size(); i-- > 0;)
    if (needed[i] && nodes_[i].op != "Const")
      for (int j : nodes_[i].inputs) needed[static_cast<size_t>(j)] = true;

  // The nodes are run on zeros alongside, for every tensor's shape (SAME
  // padding depends on it; ONNX wants explicit pads).
  onnx::OnnxGraph g(name_);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> vals(nodes_.size());
  std::vector<bool> nchw(nodes_.size(), false);
  std::vector<std::string> names(nodes_.size());
  auto fail = [&](const Node& n, const std::string& what) { throw Error(name_ + ": node " + n.name + " (" + n.op + "): " + what); };
  auto floats = [](const torch::Tensor& t) {
    auto c = t.to(torch::kFloat32).contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  };
  auto data_input = [&](const Node& n, size_t k) -> const std::string& {
    const auto j = static_cast<size_t>(n.inputs.at(k));
    if (!nchw[j] || names[j].empty()) fail(n, "input " + std::to_string(k) + " is not a 4-D activation (not carried to ONNX)");
    return names[j];
  };
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!needed[i]) continue;
    const Node& n = nodes_[i];
    if (static_cast<int>(i) == input_node_) {
      check(input_shape_.size() == 4, name_ + ": the ONNX form needs a 4-D (NHWC) input");
      std::vector<int64_t> nhwc = input_shape_;
      if (nhwc[0] < 0) nhwc[0] = 1;
      for (auto d : nhwc) check(d > 0, name_ + ": the ONNX form needs a fixed input shape");
      vals[i] = torch::zeros({nhwc[0], nhwc[3], nhwc[1], nhwc[2]});
      nchw[i] = true;
      names[i] = "input";
      g.add_input("input", {{nhwc[0], ""}, {nhwc[3], ""}, {nhwc[1], ""}, {nhwc[2], ""}});
      continue;
    }
    bool out_nchw = false;
    if (n.op != "Const") {
      vals[i] = eval_node(n, vals, nchw, out_nchw);
      nchw[i] = out_nchw && vals[i].dim() == 4;
    } else {
      vals[i] = n.value;
      continue;
    }
    auto activation = [&](std::string y, int kind) {
      if (kind == 1) return g.node("Relu", {y});
      if (kind == 2) return g.node("Clip", {y}, {onnx::attr_float("min", 0.f), onnx::attr_float("max", 6.f)});
      return y;
    };
    if (n.op == "_FusedConv2D" || n.op == "Conv2D" || n.op == "DepthwiseConv2dNative") {
      const auto& x = vals[static_cast<size_t>(n.inputs[0])];
      int64_t t = 0, b = 0, l = 0, r = 0;
      if (n.same) {
        std::tie(t, b) = same_pad(x.size(2), n.weight.size(2), n.strides[0], n.dilations[0]);
        std::tie(l, r) = same_pad(x.size(3), n.weight.size(3), n.strides[1], n.dilations[1]);
      }
      const bool depthwise = n.op == "DepthwiseConv2dNative";
      std::vector<std::string> in{data_input(n, 0), g.constant(n.name + "/W", n.weight.sizes().vec(), floats(n.weight))};
      if (n.bias.defined()) in.push_back(g.constant(n.name + "/B", n.bias.sizes().vec(), floats(n.bias)));
      auto y = g.node("Conv", in,
                      {onnx::attr("kernel_shape", std::vector<int64_t>{n.weight.size(2), n.weight.size(3)}),
                       onnx::attr("strides", n.strides), onnx::attr("dilations", n.dilations),
                       onnx::attr("pads", std::vector<int64_t>{t, l, b, r}),
                       onnx::attr("group", depthwise ? x.size(1) : int64_t{1})});
      names[i] = activation(y, n.activation);
    } else if (n.op == "MaxPool") {
      const auto& x = vals[static_cast<size_t>(n.inputs[0])];
      int64_t t = 0, b = 0, l = 0, r = 0;
      if (n.same) {
        std::tie(t, b) = same_pad(x.size(2), n.ksize[0], n.strides[0], 1);
        std::tie(l, r) = same_pad(x.size(3), n.ksize[1], n.strides[1], 1);
      }
      names[i] = g.node("MaxPool", {data_input(n, 0)},
                        {onnx::attr("kernel_shape", n.ksize), onnx::attr("strides", n.strides),
                         onnx::attr("pads", std::vector<int64_t>{t, l, b, r})});
    } else if (n.op == "Pad") {
      const auto p = n.value.reshape({4, 2});
      auto at = [&](int row, int c) { return p[row][c].item<int64_t>(); };
      // TensorFlow's NHWC rows -> ONNX's [N, C, H, W begins, then ends].
      names[i] = g.node("Pad", {data_input(n, 0)},
                        {onnx::attr("pads", std::vector<int64_t>{at(0, 0), at(3, 0), at(1, 0), at(2, 0), at(0, 1), at(3, 1),
                                                                 at(1, 1), at(2, 1)}),
                         onnx::attr_float("value", 0.f)});
    } else if (n.op == "AddV2" || n.op == "Add") {
      names[i] = g.node("Add", {data_input(n, 0), data_input(n, 1)});
    } else if (n.op == "Relu" || n.op == "Relu6") {
      names[i] = activation(data_input(n, 0), n.op == "Relu" ? 1 : 2);
    } else if (n.op == "Identity") {
      names[i] = data_input(n, 0);
    } else {
      fail(n, "not carried to the ONNX form (only at the outputs)");
    }
    if (!nchw[i]) fail(n, "its result is not a 4-D activation");
  }
  for (int w : want) {
    const auto& v = vals[static_cast<size_t>(w)];
    std::vector<onnx::Dim> dims;
    for (auto d : v.sizes()) dims.push_back({d, ""});
    g.add_output(names[static_cast<size_t>(w)], dims);
    result.outputs.push_back(names[static_cast<size_t>(w)]);
  }
  result.model = g.serialize(/*opset=*/10, "adcorre");
  return result;
}

}  // namespace adcorre::infer::detail
