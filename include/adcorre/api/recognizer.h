// Recognizer: adcorre's public entry point for the common job, for programs
// that embed it (and for the Python module). Load a model once, then find
// every face in a photo and classify its expression; or score a labelled
// dataset. This header needs no LibTorch include: only OpenCV's core types
// and nlohmann::json. It wraps infer::Predictor (detector -> crop -> model ->
// softmax, exactly as `adcorre predict`) and the `adcorre eval` path.
//
// Requires: images are 8-bit gray, BGR or BGRA (OpenCV's channel order).
// Ensures:  predict() gives the same faces, labels and probabilities as
//           `adcorre predict` with the same options; faces come largest first;
//           no face gives an empty vector.
// Errors:   adcorre::Error (util/error.h) naming the file or field at fault:
//           a missing or corrupt model file, an unreadable image, an empty
//           image, an unknown detector or tta, a dataset that cannot be read.
// Thread safety: predict() and predict_file() may run in several threads at
// once; load_model() and evaluate() must not overlap any other call.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>

#include "adcorre/eval/metrics.h"
#include "adcorre/infer/face.h"
#include "adcorre/infer/face_detector.h"

namespace adcorre::api {

struct RecognizerOptions {
  std::string model;                 // model file, or a shipped model's bare name ("fer2013-fast"); empty: the shipped default (models::resolve_model_path)
  infer::DetectorOptions detector;   // kind haar | lbp | dlib | none (the image is one face crop)
  std::optional<double> margin;      // unset: the detector's fitted crop policy; set: box grown by this fraction per side
  bool align = false;                // level the eyes first (needs dlib)
  std::string tta = "none";          // none | flip, for predict()
  std::string device = "cpu";        // cpu | cuda | cuda:N
};

struct ModelInfo {
  std::string path;                  // the file that was loaded
  std::string arch;                  // preset name, or "ensemble"
  std::vector<std::string> class_names;
  int input_size = 0;                // side of the square model input, in pixels
  int channels = 0;                  // 1: gray, 3: BGR
  nlohmann::json config;             // the model file's whole ModelConfig
};

struct Evaluation {
  eval::Metrics metrics;             // accuracy, mean class accuracy, per class P/R/F1, confusion
  std::vector<std::string> dropped_classes;  // dataset classes the model does not have (left out)
  int64_t skipped_images = 0;        // unreadable images (left out)
  nlohmann::json to_json() const;    // the same fields as `adcorre eval --json`
};

class Recognizer {
 public:
  // Validates the options, then loads the model (throws adcorre::Error).
  explicit Recognizer(RecognizerOptions opts = {});
  Recognizer(Recognizer&&) noexcept;
  Recognizer& operator=(Recognizer&&) noexcept;
  ~Recognizer();

  // Replaces the model (empty path: the shipped one); the options stay.
  void load_model(const std::string& path);

  // Every face in `image` with its box, label, score and class probabilities.
  std::vector<infer::Face> predict(const cv::Mat& image);
  // The same for an image file (decoded to BGR as `adcorre predict` does).
  std::vector<infer::Face> predict_file(const std::string& path);

  // Scores the model on a labelled dataset (class folders, FER-2013 CSV,
  // FER+, RAF-DB, AffectNet: data::read_dataset's kinds), without face
  // detection, as `adcorre eval`. tta: none | flip | tencrop.
  Evaluation evaluate(const std::string& data, const std::string& kind = "auto", const std::string& split = "",
                      const std::string& tta = "none");

  ModelInfo info() const;
  const std::vector<std::string>& class_names() const;
  const RecognizerOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace adcorre::api
