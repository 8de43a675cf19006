#include "adcorre/infer/predictor.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>

#include <torch/torch.h>

#include "adcorre/data/preprocess.h"
#include "adcorre/models/bn_fold.h"
#include "adcorre/infer/face_align.h"
#include "infer/opencv_classifier.h"
#include "adcorre/util/error.h"
#include "adcorre/util/runtime.h"

namespace adcorre::infer {

void validate(const PredictOptions& o) {
  if (o.margin) check(*o.margin >= 0 && *o.margin <= 2, "margin must be between 0 and 2 (got " + std::to_string(*o.margin) + ")");
  check(o.tta == "none" || o.tta == "flip", "tta must be none or flip (got '" + o.tta + "')");
  check(o.top_k >= 0, "top_k must be >= 0 (got " + std::to_string(o.top_k) + ")");
  check(o.detector.min_face >= 1, "min_face must be >= 1 (got " + std::to_string(o.detector.min_face) + ")");
  const auto kinds = detector_kinds();
  if (std::find(kinds.begin(), kinds.end(), o.detector.kind) == kinds.end()) {
    std::string known;
    for (const auto& k : kinds) known += (known.empty() ? "" : ", ") + k;
    throw Error("unknown face detector '" + o.detector.kind + "' (known: " + known + ")");
  }
  if (o.align && !dlib_available()) throw Error("align needs dlib: adcorre was built without it");
}

CropPolicy crop_policy_of(const PredictOptions& o) {
  return o.margin ? margin_policy(*o.margin) : crop_policy_for(o.detector.kind);
}

cv::Mat crop_for_model(const cv::Mat& image, const cv::Rect& box, const PredictOptions& o, double angle_deg) {
  if (o.detector.kind == "none") return image;  // already a face crop: nothing to reframe
  return crop_with_policy(image, box, crop_policy_of(o), angle_deg);
}

struct Predictor::Impl {
  models::LoadedModel model;
  PredictOptions opts;
  torch::Device device{torch::kCPU};

  // OpenCV DNN for a few faces on the CPU (infer/opencv_classifier.h). Its
  // ONNX form costs ~0.1 s to make for the shipped ensemble, more than it
  // saves on one face (~16 ms), so the first few-face call runs on LibTorch
  // and the second makes it: a one-photo command never pays for it, a video,
  // a folder or the service does once. null: LibTorch only.
  bool opencv_allowed = true;  // ADCORRE_CLASSIFIER_RUNTIME, read (and checked) when the Predictor is made
  std::atomic<int> few_face_calls{0};
  std::once_flag opencv_once;
  std::unique_ptr<detail::OpenCvClassifier> opencv;
  detail::OpenCvClassifier* opencv_classifier() {
    if (few_face_calls.fetch_add(1) < 1) return nullptr;
    std::call_once(opencv_once, [&] {
      if (!device.is_cpu() || !opencv_allowed) return;
      opencv = detail::OpenCvClassifier::try_make(model.config, *model.net);
    });
    return opencv.get();
  }

  // Detectors are not thread-safe, and making one costs a file load, so each
  // call borrows an idle one for its settings and gives it back afterwards.
  std::mutex mutex;
  std::map<std::string, std::vector<std::unique_ptr<FaceDetector>>> idle;
  static constexpr size_t kMaxIdlePerKey = 16;

  static std::string key_of(const DetectorOptions& d) {
    return d.kind + "/" + std::to_string(d.min_face) + "/" + std::to_string(d.max_side) + "/" + std::to_string(d.cascade_neighbors) +
           "/" + std::to_string(d.cascade_step) + "/" + std::to_string(d.dlib_threshold) + "/" + std::to_string(d.blazeface_score) + "/" + std::to_string(d.blazeface_tiles);
  }
  std::unique_ptr<FaceDetector> borrow(const DetectorOptions& d) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      auto& list = idle[key_of(d)];
      if (!list.empty()) {
        auto det = std::move(list.back());
        list.pop_back();
        return det;
      }
    }
    return make_detector(d);  // outside the lock: loading a cascade takes a while
  }
  void give_back(const DetectorOptions& d, std::unique_ptr<FaceDetector> det) {
    std::lock_guard<std::mutex> lock(mutex);
    auto& list = idle[key_of(d)];
    if (list.size() < kMaxIdlePerKey) list.push_back(std::move(det));
  }
};

Predictor::Predictor(models::LoadedModel model, PredictOptions opts) : impl_(std::make_unique<Impl>()) {
  validate(opts);
  check(model.net != nullptr, "predictor: no network in the loaded model");
  impl_->model = std::move(model);
  impl_->opts = std::move(opts);
  auto params = impl_->model.net->parameters();
  if (!params.empty()) impl_->device = params.front().device();
  impl_->opencv_allowed = detail::opencv_classifier_enabled();  // a bad value fails here, not mid-stream
  impl_->model.net->eval();
  // Inference only from here: BatchNorm folded into the convolutions (a
  // no-op when the caller loaded it with load_model_for_inference).
  models::fold_batchnorm(*impl_->model.net);
}

Predictor Predictor::from_file(const std::string& model_path, PredictOptions opts, const std::string& device) {
  validate(opts);  // before the (slow) load, so a bad option fails fast
  return Predictor(models::load_model_for_inference(model_path, device), std::move(opts));
}

Predictor::Predictor(Predictor&&) noexcept = default;
Predictor& Predictor::operator=(Predictor&&) noexcept = default;
Predictor::~Predictor() = default;

const models::ModelConfig& Predictor::config() const { return impl_->model.config; }
const PredictOptions& Predictor::options() const { return impl_->opts; }

std::vector<std::vector<double>> Predictor::classify(const std::vector<cv::Mat>& faces) {
  return classify(faces, impl_->opts.tta);
}

std::vector<std::vector<double>> Predictor::classify(const std::vector<cv::Mat>& faces, const std::string& tta) {
  check(tta == "none" || tta == "flip", "tta must be none or flip (got '" + tta + "')");
  if (faces.empty()) return {};
  for (size_t i = 0; i < faces.size(); ++i) check(!faces[i].empty(), "classify: face " + std::to_string(i) + " is an empty image");
  const auto& cfg = impl_->model.config;
  torch::InferenceMode guard;
  runtime::SmallWorkOnOneThread small_batch(static_cast<long>(faces.size()));
  // The same conversion as training: config-driven size, channels, order, mean/std.
  torch::Tensor x = data::images_to_input(faces, cfg).to(impl_->device);
  torch::Tensor probs;
  if (faces.size() < detail::kOpenCvClassifierBelow && impl_->opencv_classifier()) {
    probs = impl_->opencv->probabilities(x);
    if (tta == "flip") probs = (probs + impl_->opencv->probabilities(x.flip({3}))) / 2;
  } else {
    probs = torch::softmax(impl_->model.net->forward(x).logits.to(torch::kFloat), 1);
    if (tta == "flip") {
      torch::Tensor mirrored = x.flip({3}).contiguous(torch::MemoryFormat::ChannelsLast);
      probs = (probs + torch::softmax(impl_->model.net->forward(mirrored).logits.to(torch::kFloat), 1)) / 2;
    }
  }
  probs = probs.to(torch::kCPU, torch::kDouble).contiguous();
  const int64_t n = probs.size(0), c = probs.size(1);
  check(c == cfg.num_classes(), "model output has " + std::to_string(c) + " classes, its config names " + std::to_string(cfg.num_classes()));
  std::vector<std::vector<double>> out(n);
  const double* p = probs.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) out[i].assign(p + i * c, p + (i + 1) * c);
  return out;
}

std::vector<Face> Predictor::predict(const cv::Mat& image) { return predict(image, impl_->opts); }

std::vector<Face> Predictor::predict(const cv::Mat& image, const PredictOptions& o) {
  const auto found = detect(image, o);
  if (found.boxes.empty()) return {};
  return faces_from(found.boxes, classify(found.crops, o.tta));
}

DetectedFaces Predictor::detect(const cv::Mat& image) { return detect(image, impl_->opts); }

DetectedFaces Predictor::detect(const cv::Mat& image, const PredictOptions& o) {
  check(!image.empty(), "predict: empty image");
  if (&o != &impl_->opts) validate(o);
  DetectedFaces found;
  std::vector<cv::Rect>& boxes = found.boxes;
  {
    auto detector = impl_->borrow(o.detector);
    boxes = detector->detect(image);
    impl_->give_back(o.detector, std::move(detector));
  }
  if (boxes.empty()) return found;

  std::vector<cv::Mat>& crops = found.crops;
  crops.reserve(boxes.size());
  std::shared_ptr<const FaceAligner> aligner = o.align && o.detector.kind != "none" ? FaceAligner::shared() : nullptr;
  for (const auto& b : boxes) crops.push_back(crop_for_model(image, b, o, aligner ? aligner->eye_angle(image, b) : 0.0));
  return found;
}

std::vector<Face> Predictor::faces_from(const std::vector<cv::Rect>& boxes,
                                        const std::vector<std::vector<double>>& probs) const {
  check(boxes.size() == probs.size(), "faces_from: " + std::to_string(boxes.size()) + " boxes for " +
                                          std::to_string(probs.size()) + " probability vectors");
  const auto& names = impl_->model.config.class_names;
  std::vector<Face> faces(boxes.size());
  for (size_t i = 0; i < boxes.size(); ++i) {
    faces[i].box = boxes[i];
    faces[i].probs = probs[i];
    const auto best = std::max_element(probs[i].begin(), probs[i].end()) - probs[i].begin();
    faces[i].label = names[best];
    faces[i].score = probs[i][best];
  }
  return faces;
}

std::vector<int> top_classes(const std::vector<double>& probs, int k) {
  std::vector<int> order(probs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return probs[a] > probs[b]; });
  if (k > 0 && static_cast<size_t>(k) < order.size()) order.resize(k);
  return order;
}

static double round6(double v) { return std::round(v * 1e6) / 1e6; }

nlohmann::json face_to_json(const Face& f, const std::vector<std::string>& class_names, int top_k) {
  check(f.probs.size() == class_names.size(), "face_to_json: " + std::to_string(f.probs.size()) + " probabilities for " +
                                                  std::to_string(class_names.size()) + " class names");
  nlohmann::json probs = nlohmann::json::object();
  for (int i : top_classes(f.probs, top_k)) probs[class_names[i]] = round6(f.probs[i]);
  return {{"box", {f.box.x, f.box.y, f.box.width, f.box.height}},
          {"label", f.label},
          {"score", round6(f.score)},
          {"probs", probs}};
}

}  // namespace adcorre::infer
