// Predictor: image -> every face's box, label and class probabilities.
// detector -> crop in the detector's training framing (crop_policy.h; or an
// explicit margin), optional eye alignment -> model input
// (data::images_to_input, exactly as in training) -> one batch per image ->
// softmax. Thread-safe: predict(), detect() and classify() may be called from several
// threads at once (the HTTP service does); each call borrows a detector from
// a pool, the model itself is read-only in eval mode.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>

#include "adcorre/infer/crop_policy.h"
#include "adcorre/infer/face.h"
#include "adcorre/infer/face_detector.h"
#include "adcorre/models/model_file.h"

namespace adcorre::infer {

struct PredictOptions {
  DetectorOptions detector;
  // Unset: the detector's fitted crop policy (crop_policy_for). Set: the box
  // grown by this fraction per side into a square (0 .. 2), overriding it.
  std::optional<double> margin;
  bool align = false;                // rotate so the eyes are level (dlib landmarks)
  int top_k = 0;                     // 0: all classes in JSON
  std::string tta = "none";          // none | flip (average with the mirrored face)
};

// Throws adcorre::Error naming the bad field (margin < 0, unknown tta, ...).
void validate(const PredictOptions& opts);

// The crop policy these options use: the explicit margin when set, else the
// detector's fitted one (crop_policy.h).
CropPolicy crop_policy_of(const PredictOptions& opts);

// The crop step of predict(): box -> the square the model classifies, under
// crop_policy_of(opts), rotated by angle_deg (eye alignment). "none": the
// whole image, untouched. Shared by predict(), `eval --detect` and `eval --scenes`.
cv::Mat crop_for_model(const cv::Mat& image, const cv::Rect& box, const PredictOptions& opts, double angle_deg = 0);

// The faces of one image found and cropped, not yet classified: what
// predict() does before classify(). crops[i] is the model's view of
// boxes[i] (margin, alignment); a crop may share the image's pixels.
struct DetectedFaces {
  std::vector<cv::Rect> boxes;  // largest first
  std::vector<cv::Mat> crops;
};

class Predictor {
 public:
  // Validates opts; loads nothing else (detectors are made on first use).
  Predictor(models::LoadedModel model, PredictOptions opts);
  // Throws adcorre::Error naming the file when it is missing or not a model.
  static Predictor from_file(const std::string& model_path, PredictOptions opts, const std::string& device = "cpu");
  Predictor(Predictor&&) noexcept;
  Predictor& operator=(Predictor&&) noexcept;
  ~Predictor();

  // Detection + classification; faces largest first. No face: empty vector.
  // Throws adcorre::Error for an empty image.
  std::vector<Face> predict(const cv::Mat& image);
  std::vector<Face> predict(const cv::Mat& image, const PredictOptions& per_call);
  // predict() in two steps, so that a caller can detect several images at
  // once (on other threads: detect is thread-safe) and classify all their
  // faces as one batch: predict(image) == faces_from(d.boxes, classify(d.crops))
  // with d = detect(image).
  DetectedFaces detect(const cv::Mat& image);
  DetectedFaces detect(const cv::Mat& image, const PredictOptions& per_call);
  // Faces (box, label, score, probs) from detect's boxes and classify's
  // probabilities of their crops, in the same order.
  std::vector<Face> faces_from(const std::vector<cv::Rect>& boxes, const std::vector<std::vector<double>>& probs) const;
  // Classifies already-cropped faces (any size, gray/BGR/BGRA) as one batch;
  // one probability vector per face, in class_names order.
  std::vector<std::vector<double>> classify(const std::vector<cv::Mat>& faces);
  std::vector<std::vector<double>> classify(const std::vector<cv::Mat>& faces, const std::string& tta);

  const models::ModelConfig& config() const;
  const PredictOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The JSON schema shared by `predict` and `serve`:
// {"box":[x,y,w,h],"label":..,"score":..,"probs":{"angry":..,...}}
// top_k > 0 keeps only the K most probable classes in "probs".
// Probabilities are rounded to 6 decimals.
nlohmann::json face_to_json(const Face& f, const std::vector<std::string>& class_names, int top_k = 0);

// Indices of the k largest probabilities, most probable first (k <= 0: all).
std::vector<int> top_classes(const std::vector<double>& probs, int k);

}  // namespace adcorre::infer
