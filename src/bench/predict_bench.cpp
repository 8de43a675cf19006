// The predict benchmark: whole-image latency (face detection + crop +
// classification) on a 640x480 photo with one face.
#include <filesystem>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "adcorre/models/fer_model.h"
#include "adcorre/util/error.h"
#include "sections.h"

// The predictor's implementation arrives with the `predict` branch; until it
// is in the tree this section reports itself as unavailable instead of
// failing to link.
#if __has_include("../infer/predictor.cpp")
#include "adcorre/infer/face_detector.h"
#include "adcorre/infer/predictor.h"
#define ADCORRE_BENCH_HAVE_PREDICTOR 1
#endif

namespace adcorre::bench::detail {
namespace sfs = std::filesystem;
namespace {

std::string photo_source(const BenchOptions& o) {
  if (!o.image.empty()) {
    check(sfs::exists(o.image), "bench: --image " + o.image + " does not exist");
    return o.image;
  }
  std::vector<std::string> candidates;
#ifdef ADCORRE_SOURCE_DIR
  candidates.push_back(std::string(ADCORRE_SOURCE_DIR) + "/examples/astronaut.jpg");
#endif
  candidates.push_back("/usr/lib/python3/dist-packages/skimage/data/astronaut.png");  // python3-skimage
  for (auto& c : candidates)
    if (sfs::exists(c)) return c;
  return "";
}

// The source scaled to 480 rows and centred on a 640x480 mid-gray canvas.
cv::Mat make_photo(const std::string& source) {
  cv::Mat src = cv::imread(source, cv::IMREAD_COLOR);
  check(!src.empty(), "bench: cannot read the photo " + source);
  const double scale = std::min(640.0 / src.cols, 480.0 / src.rows);
  cv::Mat scaled;
  cv::resize(src, scaled, cv::Size(), scale, scale, scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  cv::Mat canvas(480, 640, CV_8UC3, cv::Scalar(127, 127, 127));
  scaled.copyTo(canvas(cv::Rect((640 - scaled.cols) / 2, (480 - scaled.rows) / 2, scaled.cols, scaled.rows)));
  return canvas;
}

}  // namespace

nlohmann::json predict_section(const BenchOptions& o, const models::ModelConfig& cfg, const Timing& t) {
  nlohmann::json j;
  j["preset"] = cfg.preset;
#ifndef ADCORRE_BENCH_HAVE_PREDICTOR
  (void)o;
  (void)t;
  j["available"] = false;
  j["note"] = "this build has no infer::Predictor implementation yet (src/infer/predictor.cpp)";
  return j;
#else
  const std::string source = photo_source(o);
  if (source.empty()) {
    j["available"] = false;
    j["note"] = "no photo: give --image, or install python3-skimage (astronaut.png)";
    return j;
  }
  cv::Mat photo = make_photo(source);
  // Stored as a JPEG, as a user's photo would be; the benchmark decodes it once.
  const std::string path = o.out_dir + "/photo-640x480.jpg";
  cv::imwrite(path, photo);
  photo = cv::imread(path, cv::IMREAD_COLOR);
  j["image"] = path;
  j["source"] = source;
  j["size"] = {photo.cols, photo.rows};

  // Random weights: the same network, hence the same time, as a trained model.
  auto net = models::create_model(cfg);
  models::to_channels_last(*net);
  net->eval();
  infer::PredictOptions po;
  infer::Predictor predictor(models::LoadedModel{cfg, net}, po);
  auto detector = infer::make_detector(po.detector);
  const auto faces = predictor.predict(photo);
  j["detector"] = po.detector.kind;
  j["faces"] = faces.size();
  j["detect"] = summarize(measure([&] { detector->detect(photo); }, t), 1);
  j["predict"] = summarize(measure([&] { predictor.predict(photo); }, t), 1);
  j["available"] = true;
  if (faces.size() != 1) j["note"] = "expected one face, the detector found " + std::to_string(faces.size());
  return j;
#endif
}

}  // namespace adcorre::bench::detail
