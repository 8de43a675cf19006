#include "adcorre/infer/face_detector.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "adcorre/infer/face_align.h"
#include "adcorre/util/error.h"
#include "dlib_face.h"

namespace adcorre::infer::detail {
// src/infer/blazeface_detector.cpp (kept apart: it needs LibTorch, this file does not).
std::unique_ptr<FaceDetector> make_blazeface_detector(const DetectorOptions& opts);
}  // namespace adcorre::infer::detail

namespace adcorre::infer {

namespace {

cv::Mat to_gray(const cv::Mat& image) {
  if (image.channels() == 1) return image;
  cv::Mat gray;
  cv::cvtColor(image, gray, image.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
  return gray;
}

void sort_largest_first(std::vector<cv::Rect>& boxes) {
  std::stable_sort(boxes.begin(), boxes.end(), [](const cv::Rect& a, const cv::Rect& b) { return a.area() > b.area(); });
}

// OpenCV's Haar or LBP cascade. Searched on an equalised gray copy, shrunk to
// max_side, so the cost of a huge photo stays bounded.
class CascadeDetector : public FaceDetector {
 public:
  CascadeDetector(const std::string& file, const DetectorOptions& opts) : opts_(opts) {
    bool ok = false;
    try {
      ok = cascade_.load(file);
    } catch (const cv::Exception&) {
      ok = false;
    }
    if (!ok || cascade_.empty()) throw Error("cannot load the face cascade " + file + " (corrupt? reinstall the Debian package opencv-data)");
  }

  std::vector<cv::Rect> detect(const cv::Mat& image) override {
    check(!image.empty(), "face detection: empty image");
    const double s = detection_scale(image.size(), opts_.max_side);
    cv::Mat gray = to_gray(image), small;
    if (s < 1) cv::resize(gray, small, cv::Size(), s, s, cv::INTER_AREA);
    else small = gray;
    cv::equalizeHist(small, small);
    const int min_px = std::max(1, static_cast<int>(opts_.min_face * s));
    std::vector<cv::Rect> found;
    // scaleFactor 1.1 and minNeighbors 5 by default: OpenCV's usual face
    // settings; 3 (OpenCV's default) lets through too many false faces in clutter.
    cascade_.detectMultiScale(small, found, opts_.cascade_step, opts_.cascade_neighbors, 0, cv::Size(min_px, min_px));
    const cv::Rect frame(0, 0, image.cols, image.rows);
    std::vector<cv::Rect> boxes;
    for (const auto& r : found) {
      cv::Rect mapped(cvRound(r.x / s), cvRound(r.y / s), cvRound(r.width / s), cvRound(r.height / s));
      mapped &= frame;
      if (mapped.width >= opts_.min_face && mapped.height >= opts_.min_face) boxes.push_back(mapped);
    }
    sort_largest_first(boxes);
    return boxes;
  }

 private:
  DetectorOptions opts_;
  cv::CascadeClassifier cascade_;
};

// "none": the input already is a face crop.
class WholeImage : public FaceDetector {
 public:
  std::vector<cv::Rect> detect(const cv::Mat& image) override {
    check(!image.empty(), "face detection: empty image");
    return {cv::Rect(0, 0, image.cols, image.rows)};
  }
};

}  // namespace

double detection_scale(cv::Size size, int max_side) {
  const int longer = std::max(size.width, size.height);
  if (max_side <= 0 || longer <= max_side) return 1.0;
  return static_cast<double>(max_side) / longer;
}

// BlazeFace: on the PublicTest scenes it finds 0.92 of the faces against
// dlib's 0.75 and Haar's 0.52, with no phantom boxes, in a third of dlib's time
// (docs/predict.md). It is compiled in, so every build with OpenCV has it.
std::string default_detector_kind() { return "blazeface"; }

std::vector<std::string> detector_kinds() {
  std::vector<std::string> kinds{"haar", "lbp", "blazeface"};
  if (dlib_available()) kinds.push_back("dlib");
  kinds.push_back("none");
  return kinds;
}

std::string cascade_file(const std::string& kind) {
  namespace sfs = std::filesystem;
  std::string sub, name;
  if (kind == "haar") sub = "haarcascades", name = "haarcascade_frontalface_default.xml";
  else if (kind == "lbp") sub = "lbpcascades", name = "lbpcascade_frontalface_improved.xml";
  else throw Error("no cascade file for detector '" + kind + "' (cascades: haar, lbp)");
  std::vector<sfs::path> candidates;
  if (const char* env = std::getenv("ADCORRE_CASCADE_DIR"); env && *env) {
    candidates.push_back(sfs::path(env) / name);
    candidates.push_back(sfs::path(env) / sub / name);
  }
  for (const char* root : {"/usr/share/opencv4", "/usr/local/share/opencv4", "/usr/share/opencv", "/usr/local/share/opencv"})
    candidates.push_back(sfs::path(root) / sub / name);
  for (const auto& c : candidates)
    if (sfs::exists(c)) return c.string();
  throw Error("face cascade " + name + " not found (looked in " + candidates.front().parent_path().string() +
              " and the other OpenCV data folders; install the Debian package opencv-data, or set ADCORRE_CASCADE_DIR)");
}

std::unique_ptr<FaceDetector> make_detector(const DetectorOptions& opts) {
  check(opts.min_face >= 1, "detector: min_face must be >= 1 (got " + std::to_string(opts.min_face) + ")");
  check(opts.cascade_neighbors >= 0, "detector: cascade_neighbors must be >= 0 (got " + std::to_string(opts.cascade_neighbors) + ")");
  check(opts.cascade_step > 1.0 && opts.cascade_step <= 2.0, "detector: cascade_step must be in (1, 2] (got " + std::to_string(opts.cascade_step) + ")");
  check(opts.dlib_threshold >= -2 && opts.dlib_threshold <= 2, "detector: dlib_threshold must be in [-2, 2] (got " + std::to_string(opts.dlib_threshold) + ")");
  check(opts.max_side <= 0 || opts.max_side >= 64, "detector: max_side must be >= 64 or 0 for no limit (got " + std::to_string(opts.max_side) + ")");
  if (opts.kind == "haar" || opts.kind == "lbp") return std::make_unique<CascadeDetector>(cascade_file(opts.kind), opts);
  check(opts.blazeface_tiles >= 1 && opts.blazeface_tiles <= 8, "detector: blazeface_tiles must be in 1..8 (got " + std::to_string(opts.blazeface_tiles) + ")");
  check(opts.blazeface_score > 0 && opts.blazeface_score < 1, "detector: blazeface_score must be in (0, 1) (got " + std::to_string(opts.blazeface_score) + ")");
  if (opts.kind == "dlib") return detail::make_dlib_detector(opts);
  if (opts.kind == "blazeface") return detail::make_blazeface_detector(opts);
  if (opts.kind == "none") return std::make_unique<WholeImage>();
  std::string known;
  for (const auto& k : detector_kinds()) known += (known.empty() ? "" : ", ") + k;
  throw Error("unknown face detector '" + opts.kind + "' (known: " + known + ")");
}

}  // namespace adcorre::infer
