// CropPolicy: how a detector's face box becomes the square crop the model
// sees. Each detector frames a face its own way (Haar's box is wider than the
// face, dlib's is tighter, ...), and the classifier only keeps its accuracy
// when the crop matches the framing of its training images (FER-2013: the
// face fills the 48x48 square, forehead to chin). So the transform is
// measured, per detector, on scenes made from TRAINING images: the pasted
// training square is the target framing, and fit_crop_policy() finds the
// scale and centre shift that map the detector's boxes onto it
// (`adcorre eval --scenes DIR --fit-crop`, docs/predict.md).
//
// The fitted values live in one table (crop_policy_for, src/infer/crop_policy.cpp)
// used by predict, serve, the library API and `eval --detect` alike; an
// explicit margin (--margin) overrides it.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>
#include <opencv2/core/types.hpp>

namespace adcorre::infer {

// The crop is a square of side scale * max(w, h), centred on the box centre
// moved by (shift_x * w, shift_y * h); positive shifts go right and down.
// A margin m is the policy {1 + 2m, 0, 0}.
struct CropPolicy {
  double scale = 1.0;
  double shift_x = 0.0;
  double shift_y = 0.0;
  std::string source;  // where the numbers come from (the scene set and its fit), for reports

  nlohmann::json to_json() const;
};

// The table: the fitted policy of a detector kind ("haar", "lbp", "dlib"); a
// kind without a fitted row gets the identity {1, 0, 0}. "none" is never
// cropped (the whole input is the face), so it is the identity too.
CropPolicy crop_policy_for(const std::string& detector_kind);

// {1 + 2 * margin, 0, 0}. Requires margin >= 0 (throws adcorre::Error otherwise).
CropPolicy margin_policy(double margin);

// The square region (x, y, side, side) of `box` under `p`, in image
// coordinates; the origin is rounded to whole pixels, so an unrotated crop is
// an exact copy of image pixels. Requires a non-empty box and scale > 0.
cv::Rect crop_square(const cv::Rect& box, const CropPolicy& p);

// The crop itself: crop_square's region, rotated by angle_deg counter-clockwise
// about its centre (OpenCV's getRotationMatrix2D sign); parts outside the
// image are filled by replicating the border, so an edge face keeps its place.
// Throws adcorre::Error for an empty image or box, or scale <= 0.
cv::Mat crop_with_policy(const cv::Mat& image, const cv::Rect& box, const CropPolicy& p, double angle_deg = 0);

// Fits the policy that maps each detected box onto its true framing
// (pairs of {detected, truth}): scale = median of truth side / max(w, h),
// shift = median of the centre offset over the box size. Medians, so a few
// loose matches do not move it. Throws adcorre::Error for no pairs or an
// empty box.
CropPolicy fit_crop_policy(const std::vector<std::pair<cv::Rect, cv::Rect>>& detected_and_truth);

}  // namespace adcorre::infer
