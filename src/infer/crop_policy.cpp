#include "adcorre/infer/crop_policy.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "adcorre/util/error.h"

namespace adcorre::infer {

nlohmann::json CropPolicy::to_json() const {
  return {{"scale", scale}, {"shift_x", shift_x}, {"shift_y", shift_y}, {"source", source}};
}

CropPolicy crop_policy_for(const std::string& kind) {
  // Fitted by `adcorre eval --scenes --fit-crop` on scenes made from FER-2013
  // TRAINING images (docs/predict.md, "Crop policy"): the median map from
  // each detector's box to the pasted training square.
  // 300 single-style scenes, seed 101, shipped model, margin 0, IoU >= 0.4:
  //   build/adcorre make-scenes --data ../shared/data/fer2013/train --out train-single --count 300 --style single --seed 101
  //   build/adcorre eval --scenes train-single --crops 0 --fit-crop --detectors haar,lbp,dlib
  // Haar's box already is the FER framing; dlib's is ~14 % smaller and sits
  // low (its top is at the eyebrows), LBP's is smaller still.
  static const char* kSource = "fit on FER-2013 TRAINING scenes (300 single, seed 101)";
  if (kind == "haar") return {1.034, 0.005, 0.006, std::string(kSource) + ", 137 faces"};
  if (kind == "lbp") return {1.432, 0.005, -0.100, std::string(kSource) + ", 124 faces"};
  if (kind == "dlib") return {1.161, 0.005, -0.081, std::string(kSource) + ", 230 faces"};
  // BlazeFace's box spans brows to chin like dlib's and sits a little lower
  // (the same 300 scenes, 2026-12-02: `--detectors blazeface`).
  if (kind == "blazeface") return {1.158, 0.004, -0.103, std::string(kSource) + ", 276 faces"};
  return {1.0, 0.0, 0.0, "identity"};
}

CropPolicy margin_policy(double margin) {
  check(margin >= 0, "crop margin must be >= 0 (got " + std::to_string(margin) + ")");
  return {1 + 2 * margin, 0.0, 0.0, "margin " + std::to_string(margin)};
}

cv::Rect crop_square(const cv::Rect& box, const CropPolicy& p) {
  check(box.width > 0 && box.height > 0, "crop: empty face box");
  check(p.scale > 0 && std::isfinite(p.scale), "crop: policy scale must be > 0 (got " + std::to_string(p.scale) + ")");
  const int side = std::max(1, static_cast<int>(std::lround(std::max(box.width, box.height) * p.scale)));
  const double cx = box.x + box.width / 2.0 + p.shift_x * box.width;
  const double cy = box.y + box.height / 2.0 + p.shift_y * box.height;
  return {static_cast<int>(std::lround(cx - side / 2.0)), static_cast<int>(std::lround(cy - side / 2.0)), side, side};
}

cv::Mat crop_with_policy(const cv::Mat& image, const cv::Rect& box, const CropPolicy& p, double angle_deg) {
  check(!image.empty(), "crop: empty image");
  const cv::Rect r = crop_square(box, p);
  cv::Mat out;
  if (angle_deg == 0 && (r & cv::Rect(0, 0, image.cols, image.rows)) == r) {
    image(r).copyTo(out);  // the common case: a plain copy, no resampling
    return out;
  }
  const cv::Point2f centre(static_cast<float>(r.x + r.width / 2.0), static_cast<float>(r.y + r.height / 2.0));
  cv::Mat m = cv::getRotationMatrix2D(centre, angle_deg, 1.0);
  m.at<double>(0, 2) -= r.x;
  m.at<double>(1, 2) -= r.y;
  cv::warpAffine(image, out, m, r.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  return out;
}

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
}  // namespace

CropPolicy fit_crop_policy(const std::vector<std::pair<cv::Rect, cv::Rect>>& pairs) {
  check(!pairs.empty(), "crop policy fit: no detected faces matched to a true face");
  std::vector<double> scale, dx, dy;
  for (const auto& [d, t] : pairs) {
    check(d.width > 0 && d.height > 0 && t.width > 0 && t.height > 0, "crop policy fit: empty box");
    scale.push_back(std::max(t.width, t.height) / static_cast<double>(std::max(d.width, d.height)));
    dx.push_back((t.x + t.width / 2.0 - (d.x + d.width / 2.0)) / d.width);
    dy.push_back((t.y + t.height / 2.0 - (d.y + d.height / 2.0)) / d.height);
  }
  return {median(scale), median(dx), median(dy), "fit on " + std::to_string(pairs.size()) + " matched faces"};
}

}  // namespace adcorre::infer
