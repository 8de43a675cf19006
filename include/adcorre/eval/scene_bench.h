// The photo-path benchmark: a scene set (scenes.h) through infer::Predictor,
// exactly as `adcorre predict` runs it, for one or more detector and crop
// settings. Per setting: detection recall (a true face counts as found when a
// box overlaps it with IoU >= iou), extra boxes (matched to no true face),
// phantom boxes (extra boxes lying mostly - over half their area - outside
// every true face: detections of nothing; the other extra boxes are on a true
// face but framed too differently from the pasted square to match it),
// end-to-end accuracy over all true faces (a missed face counts as wrong),
// accuracy of the found faces, and milliseconds per picture (decoding
// excluded). Matching is one-to-one, best IoU first.
//
// An "oracle" row classifies each true box cropped exactly (the pasted
// square, rotated back): the best any detector and crop could do on the set.
// With fit_crop, each setting also reports fit_crop_policy() over its matched
// boxes: the crop policy that would map that detector onto the true framing
// (fit on scenes from TRAINING images only; crop_policy.h).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core/types.hpp>

#include "adcorre/infer/predictor.h"

namespace adcorre::eval {

struct SceneSetting {
  std::string name;                // e.g. "dlib, policy", "haar, margin 0.2"
  infer::PredictOptions predict;
};

struct SceneBenchOptions {
  std::vector<SceneSetting> settings;
  double iou = 0.4;
  bool oracle = true;              // also the true-box row
  bool fit_crop = false;
  int limit = 0;                   // first N pictures only (0: all)
};

// Intersection over union of two boxes (0 when either is empty).
double box_iou(const cv::Rect& a, const cv::Rect& b);

// One-to-one matching, best IoU first; result[i] = index of the detection
// matched to truth[i], or -1 when none reaches min_iou.
std::vector<int> match_boxes(const std::vector<cv::Rect>& truth, const std::vector<cv::Rect>& detected, double min_iou);

// Runs every setting over the set in `dir` (truth.jsonl and its pictures).
// Returns {"scenes":dir,"pictures":N,"faces":M,"iou":..,"results":[{"setting":..,
// "detector":..,"crop":{policy},"recall":..,"found":..,"extra_boxes":..,
// "extra_per_picture":..,"phantom_boxes":..,"phantom_per_picture":..,"accuracy":..,"accuracy_found":..,"ms_per_picture":..,
// ["fitted_crop":{policy}]}, ...]}. Throws adcorre::Error for a missing or
// malformed truth file or picture (naming it), or a true label the model lacks.
nlohmann::json run_scene_bench(infer::Predictor& predictor, const std::string& dir, const SceneBenchOptions& opts);

// The results as a Markdown table (one row per setting).
std::string scene_bench_table(const nlohmann::json& result);

}  // namespace adcorre::eval
