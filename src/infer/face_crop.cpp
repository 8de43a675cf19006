#include "adcorre/infer/crop_policy.h"
#include "adcorre/infer/face_align.h"
#include "adcorre/util/error.h"

namespace adcorre::infer {

cv::Mat crop_face(const cv::Mat& image, const cv::Rect& box, double margin, double angle_deg) {
  check(!image.empty(), "crop_face: empty image");
  check(box.width > 0 && box.height > 0, "crop_face: empty face box");
  check(margin >= 0, "crop_face: margin must be >= 0");
  return crop_with_policy(image, box, margin_policy(margin), angle_deg);
}

}  // namespace adcorre::infer
