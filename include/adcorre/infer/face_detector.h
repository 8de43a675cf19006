// FaceDetector: finds faces in an 8-bit image, with nothing downloaded at run
// time. Kinds: "haar" (OpenCV's frontal-face cascade from Debian's
// opencv-data, the default), "lbp" (OpenCV's LBP cascade), "dlib" (dlib's HOG
// detector, no model file), "none" (the whole image is one face).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace adcorre::infer {

struct DetectorOptions {
  std::string kind = "haar";
  int min_face = 24;          // pixels, in the original image
  int max_side = 1280;        // larger images are downscaled for detection; boxes are mapped back
};

class FaceDetector {
 public:
  virtual ~FaceDetector() = default;
  // Boxes in the coordinates of `image`, largest first.
  virtual std::vector<cv::Rect> detect(const cv::Mat& image) = 0;
};

// Throws adcorre::Error for an unknown kind or a missing cascade file (naming
// the file and the Debian package that provides it).
std::unique_ptr<FaceDetector> make_detector(const DetectorOptions& opts);

}  // namespace adcorre::infer
