#include "adcorre/eval/evaluate.h"

#include <torch/torch.h>

#include "adcorre/data/class_names.h"
#include "adcorre/data/normalize.h"
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"

namespace adcorre::eval {
namespace F = torch::nn::functional;

static at::Tensor softmax_of(models::FerModelImpl& net, const at::Tensor& x) {
  return torch::softmax(net.forward(x).logits.to(torch::kFloat), 1);
}

at::Tensor predict_probs(models::FerModelImpl& net, const models::ModelConfig& cfg, const at::Tensor& pixels_u8,
                         const std::string& tta, int batch, const std::string& device) {
  check(tta == "none" || tta == "flip" || tta == "tencrop", "unknown --tta '" + tta + "' (known: none, flip, tencrop)");
  torch::NoGradGuard ng;
  const bool was_training = net.is_training();
  net.eval();
  const int64_t N = pixels_u8.size(0), S = cfg.input_size;
  std::vector<at::Tensor> out;
  for (int64_t s = 0; s < N; s += batch) {
    auto x = data::normalize(pixels_u8.slice(0, s, std::min(N, s + batch)), cfg).to(torch::Device(device));
    if (device == "cpu") x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    at::Tensor p = softmax_of(net, x);
    if (tta == "flip") {
      p = (p + softmax_of(net, x.flip({3}))) / 2;
    } else if (tta == "tencrop") {
      const int64_t c = static_cast<int64_t>(std::lround(S * 0.9));
      const int64_t o = S - c, m = o / 2;
      const std::vector<std::pair<int64_t, int64_t>> corners{{0, 0}, {0, o}, {o, 0}, {o, o}, {m, m}};
      p = torch::zeros_like(p);
      for (auto [y, xo] : corners) {
        auto crop = x.slice(2, y, y + c).slice(3, xo, xo + c);
        auto view = F::interpolate(crop, F::InterpolateFuncOptions().size(std::vector<int64_t>{S, S})
                                             .mode(torch::kBilinear).align_corners(false));
        if (device == "cpu") view = view.contiguous(torch::MemoryFormat::ChannelsLast);
        p += softmax_of(net, view) + softmax_of(net, view.flip({3}));
      }
      p /= 10.0;
    }
    out.push_back(p.cpu());
  }
  net.train(was_training);
  return out.empty() ? torch::zeros({0, cfg.num_classes()}) : torch::cat(out);
}

#ifdef ADCORRE_HAVE_OPENCV
data::Dataset match_classes(const data::Dataset& ds, const std::vector<std::string>& model_classes) {
  auto m = data::map_classes(ds.classes, model_classes);
  std::vector<std::string> dropped;
  for (size_t i = 0; i < m.size(); ++i)
    if (m[i] < 0) dropped.push_back(ds.classes[i]);
  if (!dropped.empty()) {
    std::string names;
    for (auto& d : dropped) names += (names.empty() ? "" : ", ") + d;
    log::warn("dataset classes the model does not know are left out of the scores: " + names);
  }
  auto out = ds.restricted_to(model_classes);
  if (out.samples.empty()) throw Error("no sample of " + ds.root + " belongs to a class the model knows");
  return out;
}
#endif

nlohmann::json EvalResult::to_json() const {
  auto j = metrics.to_json();
  j["dropped_classes"] = dropped_classes;
  j["skipped_images"] = skipped_images;
  return j;
}

EvalResult evaluate_cache(models::FerModelImpl& net, const models::ModelConfig& cfg, const data::ImageCache& cache,
                          const std::string& tta, const std::string& device) {
  auto probs = predict_probs(net, cfg, cache.pixels, tta, 256, device);
  auto pred = probs.argmax(1).contiguous();
  auto lab = cache.labels.contiguous();
  std::vector<int64_t> t(lab.data_ptr<int64_t>(), lab.data_ptr<int64_t>() + lab.numel());
  std::vector<int64_t> p(pred.data_ptr<int64_t>(), pred.data_ptr<int64_t>() + pred.numel());
  EvalResult r;
  r.metrics = compute_metrics(cfg.class_names, t, p);
  r.skipped_images = static_cast<int64_t>(cache.skipped.size());
  r.probs = probs;
  return r;
}

}  // namespace adcorre::eval
