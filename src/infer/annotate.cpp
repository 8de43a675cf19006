#include "adcorre/infer/annotate.h"

#include <algorithm>
#include <cstdio>

#include <opencv2/imgproc.hpp>

namespace adcorre::infer {

cv::Mat draw_faces(const cv::Mat& image, const std::vector<Face>& faces) {
  cv::Mat out;
  if (image.channels() == 1) cv::cvtColor(image, out, cv::COLOR_GRAY2BGR);
  else if (image.channels() == 4) cv::cvtColor(image, out, cv::COLOR_BGRA2BGR);
  else out = image.clone();
  // Line width and text size follow the image size (1 px lines on 640x480).
  const double unit = std::max(1.0, std::max(out.cols, out.rows) / 640.0);
  const int thickness = std::max(1, static_cast<int>(std::lround(2 * unit)));
  const double font_scale = 0.5 * unit;
  const cv::Scalar green(0, 220, 0), black(0, 0, 0);
  for (const auto& f : faces) {
    cv::rectangle(out, f.box, green, thickness);
    char text[96];
    std::snprintf(text, sizeof text, "%s %.2f", f.label.c_str(), f.score);
    int baseline = 0;
    const cv::Size ts = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font_scale, thickness, &baseline);
    // Above the box when there is room, else inside its top edge.
    int top = f.box.y - ts.height - baseline - 2 * thickness;
    if (top < 0) top = f.box.y;
    const cv::Rect label_bg(f.box.x, top, ts.width + 2 * thickness, ts.height + baseline + 2 * thickness);
    cv::rectangle(out, label_bg & cv::Rect(0, 0, out.cols, out.rows), green, cv::FILLED);
    cv::putText(out, text, cv::Point(f.box.x + thickness, top + ts.height + thickness), cv::FONT_HERSHEY_SIMPLEX, font_scale, black,
                std::max(1, thickness / 2), cv::LINE_AA);
  }
  return out;
}

}  // namespace adcorre::infer
