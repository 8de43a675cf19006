// Predictor: image -> every face's box, label and class probabilities.
// detector -> crop with margin (optional eye alignment) -> model input ->
// one batch per image -> softmax. Thread-safe: predict() may be called from
// several threads at once (the HTTP service does).
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>

#include "adcorre/infer/face_detector.h"
#include "adcorre/models/model_file.h"

namespace adcorre::infer {

struct Face {
  cv::Rect box;
  std::string label;
  double score = 0;                  // probability of `label`
  std::vector<double> probs;         // one per class, in class_names order, sums to 1
};

struct PredictOptions {
  DetectorOptions detector;
  double margin = 0.2;               // box grown by this fraction per side before cropping
  bool align = false;                // rotate so the eyes are level (dlib landmarks)
  int top_k = 0;                     // 0: all classes in JSON
  std::string tta = "none";          // none | flip
};

class Predictor {
 public:
  Predictor(models::LoadedModel model, PredictOptions opts);
  static Predictor from_file(const std::string& model_path, PredictOptions opts, const std::string& device = "cpu");

  std::vector<Face> predict(const cv::Mat& image);                 // detection + classification
  std::vector<Face> predict(const cv::Mat& image, const PredictOptions& per_call);
  // Classifies already-cropped faces as one batch.
  std::vector<std::vector<double>> classify(const std::vector<cv::Mat>& faces);

  const models::ModelConfig& config() const { return model_.config; }
  const PredictOptions& options() const { return opts_; }

 private:
  models::LoadedModel model_;
  PredictOptions opts_;
  std::mutex mutex_;                 // guards detector caches
};

// The JSON schema shared by `predict` and `serve`:
// {"box":[x,y,w,h],"label":..,"score":..,"probs":{"angry":..,...}}
nlohmann::json face_to_json(const Face& f, const std::vector<std::string>& class_names, int top_k = 0);

}  // namespace adcorre::infer
