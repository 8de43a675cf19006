// dlib's HOG face detector and 68-point landmark model. Without dlib the
// factories throw a clear error and dlib_available() says false.
#include "dlib_face.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>

#include <opencv2/imgproc.hpp>

#include "adcorre/infer/face_align.h"
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"

#ifdef ADCORRE_HAVE_DLIB
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv/cv_image.h>
#endif

namespace adcorre::infer {

namespace {

cv::Mat gray_of(const cv::Mat& image) {
  if (image.channels() == 1) return image.isContinuous() ? image : image.clone();
  cv::Mat gray;
  cv::cvtColor(image, gray, image.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
  return gray;
}

}  // namespace

bool dlib_available() {
#ifdef ADCORRE_HAVE_DLIB
  return true;
#else
  return false;
#endif
}

std::string landmarks_file() {
  if (const char* env = std::getenv("ADCORRE_DLIB_LANDMARKS"); env && *env) return env;
  return "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";
}

#ifdef ADCORRE_HAVE_DLIB

namespace {

// dlib's detector scans 80x80 windows; one 2x upsampling (the usual setting)
// brings that down to 40 px faces. Smaller min_face values cannot go lower.
constexpr double kDlibWindow = 80.0;
constexpr int kDlibSmallestFace = 40;

#ifdef ADCORRE_HAVE_DLIB_DETECTOR_BLOB
}  // namespace
namespace detail {
extern const unsigned char kDlibFrontalFaceDetector[];
extern const std::size_t kDlibFrontalFaceDetectorSize;
}  // namespace detail
namespace {
#endif

// dlib's detector, made once per process and copied for each DlibDetector:
// get_frontal_face_detector() decodes a compressed model each call (0.3-1 s
// of CPU here); the build's serialized copy (tools/build/
// make_dlib_detector_blob.cpp) deserializes in milliseconds.
const dlib::frontal_face_detector& frontal_face_detector() {
  static const dlib::frontal_face_detector detector = [] {
#ifdef ADCORRE_HAVE_DLIB_DETECTOR_BLOB
    try {
      dlib::frontal_face_detector d;
      std::istringstream in(std::string(reinterpret_cast<const char*>(detail::kDlibFrontalFaceDetector),
                                        detail::kDlibFrontalFaceDetectorSize));
      dlib::deserialize(d, in);
      if (d.num_detectors() > 0) return d;
    } catch (const dlib::serialization_error& e) {
      log::warn(std::string("dlib's compiled-in face detector did not load (") + e.info + "); decoding dlib's own");
    }
#endif
    return dlib::get_frontal_face_detector();
  }();
  return detector;
}

class DlibDetector : public FaceDetector {
 public:
  explicit DlibDetector(const DetectorOptions& opts) : opts_(opts), detector_(frontal_face_detector()) {}

  std::vector<cv::Rect> detect(const cv::Mat& image) override {
    check(!image.empty(), "face detection: empty image");
    const double upsample = kDlibWindow / std::max(opts_.min_face, kDlibSmallestFace);
    const double s = std::min(upsample, opts_.max_side > 0 ? double(opts_.max_side) / std::max(image.cols, image.rows) : upsample);
    cv::Mat gray = gray_of(image), scaled;
    if (std::abs(s - 1.0) < 1e-6) scaled = gray;
    else cv::resize(gray, scaled, cv::Size(), s, s, s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    dlib::cv_image<unsigned char> view(scaled);
    std::vector<dlib::rectangle> found = detector_(view, opts_.dlib_threshold);
    const cv::Rect frame(0, 0, image.cols, image.rows);
    std::vector<cv::Rect> boxes;
    for (const auto& r : found) {
      cv::Rect mapped(cvRound(r.left() / s), cvRound(r.top() / s), cvRound(r.width() / s), cvRound(r.height() / s));
      mapped &= frame;
      if (mapped.width >= opts_.min_face && mapped.height >= opts_.min_face) boxes.push_back(mapped);
    }
    std::stable_sort(boxes.begin(), boxes.end(), [](const cv::Rect& a, const cv::Rect& b) { return a.area() > b.area(); });
    return boxes;
  }

 private:
  DetectorOptions opts_;
  dlib::frontal_face_detector detector_;
};

}  // namespace

struct FaceAligner::Model {
  dlib::shape_predictor predictor;
};

namespace detail {
std::unique_ptr<FaceDetector> make_dlib_detector(const DetectorOptions& opts) { return std::make_unique<DlibDetector>(opts); }
}  // namespace detail

std::shared_ptr<const FaceAligner> FaceAligner::shared() {
  static std::mutex mutex;
  static std::shared_ptr<const FaceAligner> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  if (loaded) return loaded;
  const std::string path = landmarks_file();
  if (!std::filesystem::exists(path))
    throw Error("face landmark model " + path + " not found (install the Debian package libdlib-data, or set ADCORRE_DLIB_LANDMARKS)");
  auto model = std::make_shared<Model>();
  try {
    dlib::deserialize(path) >> model->predictor;
  } catch (const std::exception& e) {
    throw Error("cannot read the face landmark model " + path + " (corrupt or compressed? it must be the uncompressed .dat): " + e.what());
  }
  if (model->predictor.num_parts() != 68)
    throw Error("face landmark model " + path + " has " + std::to_string(model->predictor.num_parts()) + " points, expected 68");
  log::debug("loaded face landmarks " + path);
  loaded = std::make_shared<const FaceAligner>(model);
  return loaded;
}

std::vector<cv::Point2f> FaceAligner::landmarks(const cv::Mat& image, const cv::Rect& box) const {
  check(!image.empty(), "face landmarks: empty image");
  cv::Mat gray = gray_of(image);
  dlib::cv_image<unsigned char> view(gray);
  const dlib::rectangle rect(box.x, box.y, box.x + box.width - 1, box.y + box.height - 1);
  const dlib::full_object_detection shape = model_->predictor(view, rect);
  std::vector<cv::Point2f> points;
  points.reserve(shape.num_parts());
  for (unsigned long i = 0; i < shape.num_parts(); ++i) points.emplace_back(shape.part(i).x(), shape.part(i).y());
  return points;
}

#else  // no dlib

struct FaceAligner::Model {};

namespace detail {
std::unique_ptr<FaceDetector> make_dlib_detector(const DetectorOptions&) {
  throw Error("the dlib face detector is not available: adcorre was built without dlib (install libdlib-dev and rebuild)");
}
}  // namespace detail

std::shared_ptr<const FaceAligner> FaceAligner::shared() {
  throw Error("face alignment (--align) needs dlib: adcorre was built without it (install libdlib-dev and libdlib-data and rebuild)");
}

std::vector<cv::Point2f> FaceAligner::landmarks(const cv::Mat&, const cv::Rect&) const {
  throw Error("face landmarks need dlib: adcorre was built without it");
}

#endif

FaceAligner::FaceAligner(std::shared_ptr<Model> model) : model_(std::move(model)) {}

double FaceAligner::eye_angle(const cv::Mat& image, const cv::Rect& box) const {
  const auto pts = landmarks(image, box);
  // iBUG 300-W order: 36..41 the eye on the image's left, 42..47 the other.
  cv::Point2f left(0, 0), right(0, 0);
  for (int i = 36; i < 42; ++i) left += pts[i];
  for (int i = 42; i < 48; ++i) right += pts[i];
  left *= 1.0f / 6, right *= 1.0f / 6;
  return std::atan2(right.y - left.y, right.x - left.x) * 180.0 / M_PI;
}

}  // namespace adcorre::infer
