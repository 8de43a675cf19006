// Face: one recognised face, as Predictor and the public API (api/recognizer.h)
// return it. Plain data with no LibTorch type, so headers that only hand
// results around stay light.
#pragma once
#include <string>
#include <vector>

#include <opencv2/core/types.hpp>

namespace adcorre::infer {

struct Face {
  cv::Rect box;                      // in the coordinates of the image given to predict()
  std::string label;                 // the most probable class
  double score = 0;                  // probability of `label`
  std::vector<double> probs;         // one per class, in class_names order, sums to 1
};

}  // namespace adcorre::infer
