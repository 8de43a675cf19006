// FaceDetector: finds faces in an 8-bit image, with nothing downloaded at run
// time. Kinds: "haar" (OpenCV's frontal-face cascade from Debian's
// opencv-data), "lbp" (OpenCV's LBP cascade), "blazeface" (MediaPipe's
// BlazeFace network from the npm package @vladmandic/human, compiled into the
// library, run by LibTorch; the default, chosen on the scene benchmark of
// docs/predict.md), "dlib" (dlib's HOG detector, no model file; only when
// adcorre is built with dlib), "none" (the
// whole image is one face: for inputs that are already face crops).
//
// Requires: an 8-bit gray, BGR or BGRA image.
// Ensures:  boxes lie inside the image, in its own coordinates (images larger
//           than max_side are searched downscaled and the boxes mapped back;
//           blazeface always sees the picture letterboxed to 256x256),
//           are at least about min_face pixels wide, and come largest first.
// A detector object is NOT thread-safe (OpenCV's cascades and dlib's scanner
// keep scratch state): use one per thread (Predictor keeps a pool).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace adcorre::infer {

// "blazeface": the most faces found, no phantom boxes and the least time on
// the scene benchmark (docs/predict.md).
std::string default_detector_kind();

struct DetectorOptions {
  std::string kind = default_detector_kind();
  int min_face = 40;          // pixels, in the original image (smaller faces carry little expression
                              // for a 48 px model; 24 doubles the Haar time on 640x480)
  int max_side = 1280;        // larger images are downscaled for detection; boxes are mapped back
  // Detector tuning, measured on scenes made from TRAINING images (docs/predict.md):
  int cascade_neighbors = 5;       // haar/lbp: OpenCV's minNeighbors (fewer: more faces, more false ones)
  double cascade_step = 1.1;       // haar/lbp: scale step between pyramid levels (> 1)
  double dlib_threshold = 0.0;     // dlib: added to the SVM threshold (negative: more faces, more false ones)
  double blazeface_score = 0.5;    // blazeface: the least face probability kept, in (0, 1)
  int blazeface_tiles = 1;         // blazeface: also search an N x N grid of overlapping tiles (1: the whole
                                   // picture only); finds faces under ~8 % of the longer side, N*N+1 passes
};

class FaceDetector {
 public:
  virtual ~FaceDetector() = default;
  // Boxes in the coordinates of `image`, largest first.
  virtual std::vector<cv::Rect> detect(const cv::Mat& image) = 0;
};

// Throws adcorre::Error for an unknown kind, bad sizes, dlib asked for in a
// build without it, or a missing cascade file (naming the file and the Debian
// package that provides it).
std::unique_ptr<FaceDetector> make_detector(const DetectorOptions& opts);

// The kinds this build supports ("dlib" only with ADCORRE_HAVE_DLIB).
std::vector<std::string> detector_kinds();

// The cascade file for "haar" or "lbp": $ADCORRE_CASCADE_DIR, else the
// opencv-data install locations (/usr/share/opencv4/...). Throws adcorre::Error
// naming the file and the package when it is absent.
std::string cascade_file(const std::string& kind);

// The factor (<= 1) by which an image of `size` is shrunk so that its longer
// side is at most max_side (max_side <= 0: never shrink).
double detection_scale(cv::Size size, int max_side);

}  // namespace adcorre::infer
