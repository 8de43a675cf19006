// Model -> ONNX graph. The Xception backbone's forward pass is a list of
// lambdas (not introspectable), so the graph is rebuilt here from the config
// and the modules' Keras-style names, the way XceptionImpl's constructor lays
// them out; ResNet-50 is walked by torchvision's names. test-onnx-export
// compares every preset's graph with the network itself, so a change of
// layout there that is not mirrored here fails that test.
#include "adcorre/onnx/onnx_export.h"

#include <filesystem>
#include <map>

#include <torch/torch.h>
#include <torch/version.h>

#include "adcorre/models/fer_model.h"
#include "adcorre/models/layers.h"
#include "adcorre/onnx/onnx_writer.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"

namespace adcorre::onnx {

namespace {

namespace nn = torch::nn;

std::vector<float> values(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// A feature map: its tensor name and (square) spatial size.
struct Feat {
  std::string name;
  int64_t size = 0;
};

// Emits one network (a model, or one member of an ensemble) into the graph.
class Emitter {
 public:
  Emitter(OnnxGraph& g, const std::map<std::string, nn::Module*>& modules, std::string prefix, std::string tag)
      : g_(g), modules_(modules), prefix_(std::move(prefix)), tag_(std::move(tag)) {}

  // The network's logits [N, classes] for the input tensor `input`.
  std::string logits(const models::ModelConfig& cfg, const std::string& input) {
    Feat x{input, cfg.input_size};
    if (cfg.arch == "xception") x = xception(cfg, x);
    else if (cfg.arch == "resnet50") x = resnet50(x);
    else
      throw Error("ONNX export: arch '" + cfg.arch + "' is not supported (xception and resnet50 models, and ensembles " +
                  "of them, are)");
    return head(x);
  }

 private:
  bool has(const std::string& name) const { return modules_.count(prefix_ + name) > 0; }
  template <class M>
  M& get(const std::string& name) const {
    auto it = modules_.find(prefix_ + name);
    if (it == modules_.end())
      throw Error("ONNX export: the network has no module " + prefix_ + name + " (it does not match its config)");
    auto* m = it->second->as<M>();
    if (!m) throw Error("ONNX export: module " + prefix_ + name + " is not of the expected type");
    return *m;
  }
  std::string constant(const std::string& hint, const torch::Tensor& t) {
    return g_.constant(tag_ + hint, t.sizes().vec(), values(t));
  }
  std::string relu(const std::string& x) { return g_.node("Relu", {x}, {}, tag_ + "relu"); }
  std::string add(const std::string& a, const std::string& b) { return g_.node("Add", {a, b}, {}, tag_ + "add"); }

  // Conv (+ BatchNorm folded in: W' = W s, b' = (b - mean) s + beta with
  // s = gamma / sqrt(var + eps), in double). tf_same: TensorFlow 'same'
  // padding for this input size (asymmetric for stride 2 on an even size),
  // else the conv's own symmetric padding.
  Feat conv(const Feat& x, const std::string& conv_name, const std::string& bn_name, bool tf_same) {
    auto& c = get<nn::Conv2dImpl>(conv_name);
    const auto& o = c.options;
    const int64_t k = (*o.kernel_size())[0], s = (*o.stride())[0];
    check((*o.kernel_size())[1] == k && (*o.stride())[1] == s && (*o.dilation())[0] == 1 && (*o.dilation())[1] == 1,
          "ONNX export: " + prefix_ + conv_name + " is not square with dilation 1");
    int64_t before = 0, after = 0;
    if (tf_same) {
      std::tie(before, after) = models::tf_same_padding(x.size, k, s);
    } else {
      // The padding is a c10::variant in LibTorch 1.x and a std::variant in 2.x.
#if TORCH_VERSION_MAJOR >= 2
      const auto* p = std::get_if<torch::ExpandingArray<2>>(&o.padding());
#else
      const auto* p = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
#endif
      check(p && (**p)[0] == (**p)[1], "ONNX export: " + prefix_ + conv_name + " has a padding mode the exporter does not know");
      before = after = (**p)[0];
    }
    torch::NoGradGuard ng;
    auto w = c.weight.detach().to(torch::kDouble);
    torch::Tensor b = c.bias.defined() ? c.bias.detach().to(torch::kDouble) : torch::Tensor();
    if (!bn_name.empty()) {
      auto folded = models::fold_batchnorm_into_conv(c.weight, c.bias, get<nn::BatchNorm2dImpl>(bn_name));
      w = folded.weight;
      b = folded.bias;
    }
    std::vector<std::string> inputs{x.name, constant(conv_name + ".weight", w)};
    if (b.defined()) inputs.push_back(constant(conv_name + ".bias", b));
    auto y = g_.node("Conv", inputs,
                     {attr("kernel_shape", std::vector<int64_t>{k, k}), attr("strides", std::vector<int64_t>{s, s}),
                      attr("pads", std::vector<int64_t>{before, before, after, after}),  // top, left, bottom, right
                      attr("group", o.groups())},
                     tag_ + conv_name);
    return {y, (x.size + before + after - k) / s + 1};
  }
  // MaxPool: ONNX pads never win a max, as the -inf padding of max_pool_tf.
  Feat max_pool(const Feat& x, int64_t k, int64_t s, int64_t before, int64_t after) {
    auto y = g_.node("MaxPool", {x.name},
                     {attr("kernel_shape", std::vector<int64_t>{k, k}), attr("strides", std::vector<int64_t>{s, s}),
                      attr("pads", std::vector<int64_t>{before, before, after, after})},
                     tag_ + "maxpool");
    return {y, (x.size + before + after - k) / s + 1};
  }
  // Keras SeparableConv2D (depthwise 3x3 'same', pointwise 1x1) + BN.
  Feat sepconv(const Feat& x, const std::string& name, const std::string& bn) {
    auto y = conv(x, name + ".depthwise.conv", "", /*tf_same=*/true);
    return conv(y, name + ".pointwise", bn, false);
  }
  Feat relu(Feat x) {
    x.name = relu(x.name);
    return x;
  }

  Feat xception(const models::ModelConfig& cfg, Feat x) {
    const std::string b = "backbone.";
    const bool stem_same = cfg.stem_padding == "same";
    x = relu(conv(x, b + "block1_conv1.conv", b + "block1_conv1_bn", stem_same));
    x = relu(conv(x, b + "block1_conv2.conv", b + "block1_conv2_bn", stem_same));
    int block = 2;
    auto down = [&](const Feat& in, bool pre_relu) {
      const std::string p = b + "block" + std::to_string(block++);
      auto r = conv(in, p + "_shortcut", p + "_shortcut_bn", false);
      auto y = relu(sepconv(pre_relu ? relu(in) : in, p + "_sepconv1", p + "_sepconv1_bn"));
      y = sepconv(y, p + "_sepconv2", p + "_sepconv2_bn");
      auto [t, bo] = models::tf_same_padding(y.size, 3, 2);
      y = max_pool(y, 3, 2, t, bo);
      check(y.size == r.size, "ONNX export: " + prefix_ + p + ": pooled and shortcut sizes differ");
      return Feat{add(y.name, r.name), y.size};
    };
    for (size_t i = 0; i < cfg.entry_blocks.size(); ++i) x = down(x, /*pre_relu=*/i > 0);
    for (int m = 0; m < cfg.middle_blocks; ++m) {
      const std::string p = b + "block" + std::to_string(block++);
      auto y = x;
      for (int i = 1; i <= 3; ++i) y = sepconv(relu(y), p + "_sepconv" + std::to_string(i), p + "_sepconv" + std::to_string(i) + "_bn");
      x = Feat{add(y.name, x.name), x.size};
    }
    if (cfg.exit_block > 0) x = down(x, true);
    const std::string p = b + "block" + std::to_string(block);
    for (size_t i = 1; i <= cfg.exit_convs.size(); ++i)
      x = relu(sepconv(x, p + "_sepconv" + std::to_string(i), p + "_sepconv" + std::to_string(i) + "_bn"));
    return x;
  }

  Feat resnet50(Feat x) {
    x = relu(conv(x, "backbone.conv1", "backbone.bn1", false));
    x = max_pool(x, 3, 2, 1, 1);
    for (int l = 1; has("backbone.layer" + std::to_string(l)); ++l)
      for (int i = 0; has("backbone.layer" + std::to_string(l) + "." + std::to_string(i)); ++i) {
        const std::string p = "backbone.layer" + std::to_string(l) + "." + std::to_string(i) + ".";
        auto y = relu(conv(x, p + "conv1", p + "bn1", false));
        y = relu(conv(y, p + "conv2", p + "bn2", false));
        y = conv(y, p + "conv3", p + "bn3", false);
        auto r = has(p + "downsample") ? conv(x, p + "downsample.0", p + "downsample.1", false) : x;
        x = relu(Feat{add(y.name, r.name), y.size});
      }
    return x;
  }

  // Global average pooling, then the Ad-Corre head: k branches Linear ->
  // L2-normalise, concatenated, Linear -> logits.
  std::string head(const Feat& x) {
    auto f = g_.node("Flatten", {g_.node("GlobalAveragePool", {x.name}, {}, tag_ + "pool")}, {attr("axis", int64_t{1})},
                     tag_ + "features");
    std::vector<std::string> branches;
    for (int i = 0; has("head.embed." + std::to_string(i)); ++i) {
      const std::string name = "head.embed." + std::to_string(i);
      auto& lin = get<nn::LinearImpl>(name);
      auto e = gemm(f, constant(name + ".weight", lin.weight), constant(name + ".bias", lin.bias), name);
      branches.push_back(l2_normalize(e, lin.weight.size(0)));
    }
    check(!branches.empty(), "ONNX export: " + prefix_ + "head has no embedding branch");
    auto cat = g_.node("Concat", branches, {attr("axis", int64_t{1})}, tag_ + "embeddings");
    auto& cls = get<nn::LinearImpl>("head.classifier");
    return gemm(cat, constant("head.classifier.weight", cls.weight), constant("head.classifier.bias", cls.bias),
                "logits");
  }
  std::string gemm(const std::string& a, const std::string& b, const std::string& c, const std::string& name) {
    std::vector<std::string> in{a, b};
    if (!c.empty()) in.push_back(c);
    return g_.node("Gemm", in, {attr("transB", int64_t{1})}, tag_ + name);
  }
  // e / sqrt(max(sum e^2, 1e-12)) per row, as models::l2_normalize. OpenCV
  // 4.6 cannot broadcast a [N,1] tensor against [N,d] when the batch is
  // dynamic, nor take Max/Clip with a constant, so: the row sum and its
  // spreading back to d columns are Gemms with ones, and the floor is
  // relu(s - 1e-12) + 1e-12 (= max(s, 1e-12); exact in float32 for s >> 1e-12).
  std::string l2_normalize(const std::string& e, int64_t d) {
    if (!ones_.count(d)) {
      ones_[d] = {g_.constant(tag_ + "ones_row" + std::to_string(d), {1, d}, std::vector<float>(d, 1.f)),
                  g_.constant(tag_ + "ones_col" + std::to_string(d), {d, 1}, std::vector<float>(d, 1.f))};
      if (floor_.empty()) {
        floor_ = g_.constant(tag_ + "floor", {1}, {1e-12f});
        neg_floor_ = g_.constant(tag_ + "neg_floor", {1}, {-1e-12f});
        one_ = g_.constant(tag_ + "one", {1, 1}, {1.f});
      }
    }
    const auto& [row, col] = ones_[d];
    auto sq = g_.node("Mul", {e, e}, {}, tag_ + "square");
    auto s = gemm(sq, row, neg_floor_, "sum_sq");
    s = gemm(relu(s), one_, floor_, "sum_sq_floored");
    auto norm = gemm(g_.node("Sqrt", {s}, {}, tag_ + "norm"), col, "", "norm_wide");
    return g_.node("Div", {e, norm}, {}, tag_ + "unit");
  }

  OnnxGraph& g_;
  const std::map<std::string, nn::Module*>& modules_;
  std::string prefix_, tag_;
  std::map<int64_t, std::pair<std::string, std::string>> ones_;
  std::string floor_, neg_floor_, one_;
};

}  // namespace

std::string onnx_model_bytes(const models::ModelConfig& config, models::FerModelImpl& net,
                             const OnnxExportOptions& options) {
  config.validate();
  check(options.dynamic_batch || options.batch >= 1,
        "ONNX export: batch must be >= 1, got " + std::to_string(options.batch));
  std::map<std::string, nn::Module*> modules;
  for (auto& m : net.named_modules("", /*include_self=*/false)) modules[m.key()] = m.value().get();

  OnnxGraph g("adcorre_" + (config.preset.empty() ? config.arch : config.preset));
  const Dim batch = options.dynamic_batch ? Dim{0, "N"} : Dim{options.batch, ""};
  const int64_t s = config.input_size, classes = config.num_classes();
  g.add_input("input", {batch, Dim{config.in_channels, ""}, Dim{s, ""}, Dim{s, ""}});
  const std::string out = "probabilities";
  if (config.arch == "ensemble") {
    // One graph: every member on the same input, mean of their softmax.
    std::vector<std::string> probs;
    for (size_t i = 0; i < config.members.size(); ++i) {
      const std::string p = "members." + std::to_string(i) + ".";
      Emitter member(g, modules, p, "m" + std::to_string(i) + "/");
      probs.push_back(g.node("Softmax", {member.logits(config.members[i], "input")}, {attr("axis", int64_t{1})},
                             "m" + std::to_string(i) + "/probabilities"));
    }
    auto sum = g.node("Sum", probs, {}, "sum_probabilities");
    auto inv = g.constant("inverse_member_count", {1}, {static_cast<float>(1.0 / static_cast<double>(probs.size()))});
    g.node("Mul", {sum, inv}, {}, out);
  } else {
    Emitter e(g, modules, "", "");
    g.node("Softmax", {e.logits(config, "input")}, {attr("axis", int64_t{1})}, out);
  }
  g.add_output(out, {batch, Dim{classes, ""}});
  g.add_metadata("adcorre_config", config.to_json().dump());
  std::string names;
  for (const auto& c : config.class_names) names += (names.empty() ? "" : ",") + c;
  g.add_metadata("class_names", names);
  return g.serialize(/*opset=*/11, ADCORRE_VERSION);
}

void write_onnx(const std::string& path, const models::ModelConfig& config, models::FerModelImpl& net,
                const OnnxExportOptions& options) {
  const auto bytes = onnx_model_bytes(config, net, options);
  try {
    fs::write_file_atomic(path, bytes);
  } catch (const Error& e) {
    std::error_code ec;
    std::filesystem::remove(fs::temp_path_for(path), ec);  // a half-written temp file must not stay behind
    throw Error("cannot write ONNX file " + path + ": " + e.what());
  }
}

}  // namespace adcorre::onnx
