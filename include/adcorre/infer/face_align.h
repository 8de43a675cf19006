// Face crops for the classifier: a detected box grown by a margin, optionally
// rotated so the eyes are level (dlib's 68-point landmark model from Debian's
// libdlib-data), ready for data::to_model_pixels.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>
#include <opencv2/core/types.hpp>

namespace adcorre::infer {

// Requires: a non-empty image, a non-empty box, margin >= 0.
// Ensures:  a square crop (side = max(w, h) * (1 + 2 * margin)) centred on the
//           box, rotated by angle_deg counter-clockwise about the box centre
//           (positive = what OpenCV's getRotationMatrix2D calls positive);
//           parts outside the image are filled by replicating the border, so
//           faces at the edge keep their place in the crop.
cv::Mat crop_face(const cv::Mat& image, const cv::Rect& box, double margin, double angle_deg = 0);

// The landmark model file: $ADCORRE_DLIB_LANDMARKS, else
// /usr/share/dlib/shape_predictor_68_face_landmarks.dat (libdlib-data).
std::string landmarks_file();

// True when this build has dlib (alignment and the "dlib" detector).
bool dlib_available();

// Eye-level alignment from dlib's 68-point landmarks. The model (~100 MB) is
// loaded once per process, on first use. Thread-safe (const after loading).
class FaceAligner {
 public:
  // Throws adcorre::Error when adcorre was built without dlib or the model
  // file is missing/corrupt (naming it and the package libdlib-data).
  static std::shared_ptr<const FaceAligner> shared();

  // The 68 landmarks inside `box` (iBUG 300-W order), in image coordinates.
  std::vector<cv::Point2f> landmarks(const cv::Mat& image, const cv::Rect& box) const;
  // The angle (degrees) to pass to crop_face so the eyes end up level: the
  // slope of the line from the image-left eye centre to the image-right one.
  double eye_angle(const cv::Mat& image, const cv::Rect& box) const;

  struct Model;  // dlib's shape predictor (kept out of this header)
  explicit FaceAligner(std::shared_ptr<Model> model);

 private:
  std::shared_ptr<Model> model_;
};

}  // namespace adcorre::infer
