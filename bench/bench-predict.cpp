// Inference latency of `adcorre predict` on this CPU: per-face classification
// (one 48x48 crop through the model) and whole-image prediction (detection +
// crop + classification) of a 640x480 photo with one face (the shipped
// sample, letterboxed). Uses the default model when it exists, else a
// random-weight fer-compact network (same cost: latency does not depend on the
// weights). Threads: ADCORRE_BENCH_THREADS, default 2.
#include <cstdlib>
#include <map>
#include <memory>

#include <benchmark/benchmark.h>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "adcorre/infer/face_align.h"
#include "adcorre/infer/predictor.h"
#include "adcorre/util/runtime.h"

using namespace adcorre;

namespace {

models::LoadedModel bench_model(std::string* which) {
  try {
    const std::string path = models::default_model_path();
    *which = path;
    return models::load_model(path);
  } catch (const std::exception&) {
    auto cfg = models::preset("fer-compact");
    auto net = models::create_model(cfg);
    models::to_channels_last(*net);
    net->eval();
    *which = "random fer-compact";
    return {cfg, net};
  }
}

infer::Predictor& predictor(const std::string& kind = "haar") {
  static std::map<std::string, std::unique_ptr<infer::Predictor>> made;
  auto& p = made[kind];
  if (!p) {
    std::string which;
    infer::PredictOptions o;
    o.detector.kind = kind;
    p = std::make_unique<infer::Predictor>(bench_model(&which), o);
    static bool reported = false;
    if (!reported) benchmark::AddCustomContext("model", which);
    reported = true;
  }
  return *p;
}

// The sample (512x512) scaled to 480 high and centred on a 640x480 grey canvas.
const cv::Mat& photo_640x480() {
  static cv::Mat canvas = [] {
    cv::Mat img = cv::imread(std::string(ADCORRE_SOURCE_DIR) + "/examples/astronaut.jpg"), scaled;
    cv::resize(img, scaled, cv::Size(480, 480), 0, 0, cv::INTER_AREA);
    cv::Mat c(480, 640, CV_8UC3, cv::Scalar(128, 128, 128));
    scaled.copyTo(c(cv::Rect(80, 0, 480, 480)));
    return c;
  }();
  return canvas;
}

void BM_ClassifyOneFace(benchmark::State& state) {
  auto& p = predictor();
  auto faces = p.predict(photo_640x480());
  if (faces.size() != 1) state.SkipWithError("the sample face was not found");
  const cv::Mat crop = infer::crop_for_model(photo_640x480(), faces.empty() ? cv::Rect(0, 0, 100, 100) : faces[0].box, p.options());
  for (auto _ : state) benchmark::DoNotOptimize(p.classify({crop}));
}
BENCHMARK(BM_ClassifyOneFace)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_DetectOnly640x480(benchmark::State& state, std::string kind) {
  if (kind == "dlib" && !infer::dlib_available()) {
    state.SkipWithError("built without dlib");
    return;
  }
  infer::DetectorOptions o;
  o.kind = kind;
  o.min_face = static_cast<int>(state.range(0));
  auto det = infer::make_detector(o);
  det->detect(photo_640x480());  // warm-up
  for (auto _ : state) benchmark::DoNotOptimize(det->detect(photo_640x480()));
}
BENCHMARK_CAPTURE(BM_DetectOnly640x480, haar, std::string("haar"))->ArgName("min_face")->Arg(24)->Arg(40)->Arg(48)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_DetectOnly640x480, lbp, std::string("lbp"))->ArgName("min_face")->Arg(24)->Arg(40)->Arg(48)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_DetectOnly640x480, dlib, std::string("dlib"))->ArgName("min_face")->Arg(24)->Arg(40)->Arg(48)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_PredictImage640x480(benchmark::State& state, std::string kind) {
  if (kind == "dlib" && !infer::dlib_available()) {
    state.SkipWithError("built without dlib");
    return;
  }
  auto& p = predictor(kind);
  size_t faces = p.predict(photo_640x480()).size();  // warm-up: detector load, oneDNN primitives
  for (auto _ : state) faces = p.predict(photo_640x480()).size();
  state.counters["faces"] = static_cast<double>(faces);
}
BENCHMARK_CAPTURE(BM_PredictImage640x480, haar, std::string("haar"))->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_PredictImage640x480, dlib, std::string("dlib"))->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("ADCORRE_BENCH_THREADS");
  const int threads = env && *env ? std::atoi(env) : 2;
  runtime::set_threads(threads);
  cv::setNumThreads(threads);
  benchmark::AddCustomContext("threads", std::to_string(threads));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
