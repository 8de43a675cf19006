#include <cmath>

#include <opencv2/imgproc.hpp>

#include "adcorre/infer/face_align.h"
#include "adcorre/util/error.h"

namespace adcorre::infer {

cv::Mat crop_face(const cv::Mat& image, const cv::Rect& box, double margin, double angle_deg) {
  check(!image.empty(), "crop_face: empty image");
  check(box.width > 0 && box.height > 0, "crop_face: empty face box");
  check(margin >= 0, "crop_face: margin must be >= 0");
  const int side = std::max(1, static_cast<int>(std::lround(std::max(box.width, box.height) * (1 + 2 * margin))));
  // Integer origin, so an unrotated crop is an exact copy of the pixels.
  const double x0 = std::round(box.x + box.width / 2.0 - side / 2.0);
  const double y0 = std::round(box.y + box.height / 2.0 - side / 2.0);
  const cv::Point2f centre(static_cast<float>(x0 + side / 2.0), static_cast<float>(y0 + side / 2.0));
  cv::Mat m = cv::getRotationMatrix2D(centre, angle_deg, 1.0);
  m.at<double>(0, 2) -= x0;
  m.at<double>(1, 2) -= y0;
  cv::Mat out;
  cv::warpAffine(image, out, m, cv::Size(side, side), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  return out;
}

}  // namespace adcorre::infer
