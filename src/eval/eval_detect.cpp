// Evaluation on uncropped photos: each image goes through the same detector and
// crop as `adcorre predict` (largest face, the detector's crop policy), then into the
// usual cache. Images without a face are skipped and reported, never guessed.
#include "adcorre/eval/eval_detect.h"

#include <opencv2/imgproc.hpp>

#include "adcorre/data/preprocess.h"
#include "adcorre/infer/face_align.h"
#include "adcorre/infer/face_detector.h"
#include "adcorre/infer/predictor.h"
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"

namespace adcorre::eval {

data::ImageCache cache_with_detection(const data::Dataset& ds, const models::ModelConfig& cfg,
                                      const std::string& detector) {
  if (ds.samples.empty()) throw Error("dataset " + ds.root + " is empty");
  infer::DetectorOptions dopt;
  dopt.kind = detector;
  auto det = infer::make_detector(dopt);  // throws for an unknown kind or a missing cascade
  infer::PredictOptions popt;  // predict's defaults: the detector's crop policy
  popt.detector = dopt;

  data::Dataset faces = ds;
  faces.samples.clear();
  std::vector<std::string> skipped;
  for (const auto& s : ds.samples) {
    cv::Mat img;
    try {
      img = s.image.empty() ? data::decode_image(s.path, 3) : s.image;
    } catch (const std::exception& e) {
      skipped.push_back(s.path + ": " + e.what());
      continue;
    }
    if (!s.crop.empty()) {
      const cv::Rect r = s.crop & cv::Rect(0, 0, img.cols, img.rows);
      if (r.area() > 0) img = img(r);
    }
    const auto boxes = det->detect(img);
    if (boxes.empty()) {
      skipped.push_back(s.path + ": no face found (" + detector + ")");
      continue;
    }
    data::Sample t = s;
    t.image = infer::crop_for_model(img, boxes[0], popt);  // boxes come largest first
    t.crop = cv::Rect();
    faces.samples.push_back(std::move(t));
  }
  if (!skipped.empty()) {
    std::string first;
    for (size_t i = 0; i < std::min<size_t>(3, skipped.size()); ++i) first += "\n  " + skipped[i];
    log::warn("--detect " + detector + ": skipped " + std::to_string(skipped.size()) + " of " +
              std::to_string(ds.samples.size()) + " image(s) in " + ds.root + ", first:" + first);
  }
  if (faces.samples.empty())
    throw Error("--detect " + detector + ": no face found in any image of " + ds.root +
                " (already cropped faces? use --detect none)");
  auto cache = data::build_cache(faces, cfg);
  cache.skipped.insert(cache.skipped.begin(), skipped.begin(), skipped.end());
  return cache;
}

}  // namespace adcorre::eval
