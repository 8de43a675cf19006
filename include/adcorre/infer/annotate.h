// Drawing predictions onto a picture: a box per face and its label with the
// probability, sized to the image so they stay readable on any resolution.
#pragma once
#include <vector>

#include <opencv2/core/mat.hpp>

#include "adcorre/infer/predictor.h"

namespace adcorre::infer {

// Requires an 8-bit gray, BGR or BGRA image. Returns a BGR copy with the faces drawn.
cv::Mat draw_faces(const cv::Mat& image, const std::vector<Face>& faces);

}  // namespace adcorre::infer
