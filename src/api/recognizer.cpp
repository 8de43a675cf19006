#include "adcorre/api/recognizer.h"

#include <torch/torch.h>

#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/data/preprocess.h"
#include "adcorre/eval/evaluate.h"
#include "adcorre/infer/predictor.h"
#include "adcorre/models/model_file.h"
#include "adcorre/util/error.h"

namespace adcorre::api {

namespace {

infer::PredictOptions predict_options(const RecognizerOptions& o) {
  infer::PredictOptions p;
  p.detector = o.detector;
  p.margin = o.margin;
  p.align = o.align;
  p.tta = o.tta;
  return p;
}

}  // namespace

struct Recognizer::Impl {
  RecognizerOptions opts;
  std::string model_path;
  // The same network as the predictor's (FerModel is a shared handle): the
  // predictor classifies photos, evaluate() runs batches through it directly.
  models::LoadedModel model;
  std::unique_ptr<infer::Predictor> predictor;

  void load(const std::string& path) {
    const std::string resolved = models::resolve_model_path(path);
    auto loaded = models::load_model_for_inference(resolved, opts.device);
    auto next = std::make_unique<infer::Predictor>(loaded, predict_options(opts));
    model = std::move(loaded);
    predictor = std::move(next);
    model_path = resolved;
  }
};

nlohmann::json Evaluation::to_json() const {
  auto j = metrics.to_json();
  j["dropped_classes"] = dropped_classes;
  j["skipped_images"] = skipped_images;
  return j;
}

Recognizer::Recognizer(RecognizerOptions opts) : impl_(std::make_unique<Impl>()) {
  infer::validate(predict_options(opts));  // before the (slow) load, so a bad option fails fast
  impl_->opts = std::move(opts);
  impl_->load(impl_->opts.model);
}

Recognizer::Recognizer(Recognizer&&) noexcept = default;
Recognizer& Recognizer::operator=(Recognizer&&) noexcept = default;
Recognizer::~Recognizer() = default;

void Recognizer::load_model(const std::string& path) {
  impl_->load(path);
  impl_->opts.model = path;
}

std::vector<infer::Face> Recognizer::predict(const cv::Mat& image) { return impl_->predictor->predict(image); }

std::vector<infer::Face> Recognizer::predict_file(const std::string& path) {
  return impl_->predictor->predict(data::decode_image(path, 3));
}

Evaluation Recognizer::evaluate(const std::string& data, const std::string& kind, const std::string& split,
                                const std::string& tta) {
  const auto& cfg = impl_->model.config;
  auto ds = eval::match_classes(data::read_dataset(data, kind, split), cfg.class_names);
  auto cache = data::build_cache(ds, cfg, {0, false, true});
  auto r = eval::evaluate_cache(*impl_->model.net, cfg, cache, tta, impl_->opts.device);
  return {r.metrics, r.dropped_classes, r.skipped_images};
}

ModelInfo Recognizer::info() const {
  const auto& cfg = impl_->model.config;
  return {impl_->model_path, cfg.arch, cfg.class_names, cfg.input_size, cfg.in_channels, cfg.to_json()};
}

const std::vector<std::string>& Recognizer::class_names() const { return impl_->model.config.class_names; }

const RecognizerOptions& Recognizer::options() const { return impl_->opts; }

}  // namespace adcorre::api
