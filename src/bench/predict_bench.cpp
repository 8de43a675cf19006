// The predict benchmark: whole-image latency (face detection + crop +
// classification) on a 640x480 photo with one face; and the "model" section:
// a real model file as `adcorre predict` runs it.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <opencv2/videoio.hpp>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "adcorre/bench/machine.h"
#include "adcorre/data/preprocess.h"
#include "adcorre/models/fer_model.h"
#include "adcorre/models/model_file.h"
#include "adcorre/util/error.h"
#include "adcorre/util/runtime.h"
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

namespace {

// Up to `n` images of the class folders under `dir`, class by class in name order.
std::vector<std::string> crop_files(const std::string& dir, size_t n) {
  std::vector<std::string> out;
  std::error_code ec;
  if (dir.empty() || !sfs::is_directory(dir, ec)) return out;
  std::vector<sfs::path> classes;
  for (auto& d : sfs::directory_iterator(dir, ec))
    if (d.is_directory()) classes.push_back(d.path());
  std::sort(classes.begin(), classes.end());
  std::vector<std::vector<std::string>> per_class;
  for (auto& c : classes) {
    std::vector<std::string> files;
    for (auto& f : sfs::directory_iterator(c, ec))
      if (f.is_regular_file()) files.push_back(f.path().string());
    std::sort(files.begin(), files.end());
    per_class.push_back(files);
  }
  // Round robin over the classes: every expression is in the sample.
  for (size_t i = 0; out.size() < n; ++i) {
    bool any = false;
    for (auto& files : per_class)
      if (i < files.size() && out.size() < n) {
        out.push_back(files[i]);
        any = true;
      }
    if (!any) break;
  }
  return out;
}

// Wall seconds of a shell command; throws adcorre::Error when it fails.
double command_seconds(const std::string& cmd) {
  const double t0 = wall_seconds();
  const int rc = std::system(cmd.c_str());
  const double t = wall_seconds() - t0;
  check(rc == 0, "bench: the command failed (exit status " + std::to_string(rc) + "): " + cmd);
  return t;
}

std::string shell_quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

nlohmann::json model_section(const BenchOptions& o, const Timing& latency, const Timing& throughput) {
  nlohmann::json j;
  j["model"] = o.model;
  j["load_average"] = load_average();
#ifndef ADCORRE_BENCH_HAVE_PREDICTOR
  (void)latency;
  (void)throughput;
  j["available"] = false;
  return j;
#else
  const int threads = runtime::threads();
  auto loaded = models::load_model_for_inference(o.model);
  const auto cfg = loaded.config;
  j["arch"] = cfg.arch;
  j["networks"] = cfg.arch == "ensemble" ? cfg.members.size() : 1;
  j["threads"] = threads;

  // Face crops: FER-2013's val images when at hand, else random pixels (same time).
  std::string crops_dir = o.crops;
  if (crops_dir.empty() && !o.data.empty()) crops_dir = (sfs::path(o.data).parent_path() / "val").string();
#ifdef ADCORRE_SOURCE_DIR
  if (crops_dir.empty()) crops_dir = std::string(ADCORRE_SOURCE_DIR) + "/../shared/data/fer2013/val";
#endif
  const auto files = crop_files(crops_dir, std::max<size_t>(64, o.crop_count));
  std::vector<cv::Mat> faces;
  for (size_t i = 0; i < 64; ++i) {
    if (!files.empty()) {
      faces.push_back(data::decode_image(files[i % files.size()], 3));
    } else {
      cv::Mat f(cfg.input_size, cfg.input_size, CV_8UC3);
      cv::randu(f, 0, 255);
      faces.push_back(f);
    }
  }
  j["crops"] = files.empty() ? std::string("random pixels") : crops_dir;

  infer::PredictOptions crops_only;
  crops_only.detector.kind = "none";
  infer::Predictor predictor(loaded, crops_only);
  auto classify = [&](size_t batch, const Timing& t) {
    std::vector<cv::Mat> batch_faces(faces.begin(), faces.begin() + batch);
    return summarize(measure([&] { predictor.classify(batch_faces); }, t), static_cast<double>(batch));
  };
  j["batch1"] = classify(1, latency);
  j["batch64"] = classify(64, throughput);
  if (threads > 1) {  // the same at one thread: more threads must never be slower
    runtime::set_threads(1);
    j["batch1_1thread"] = classify(1, latency);
    j["batch64_1thread"] = classify(64, throughput);
    runtime::set_threads(threads);
  }
  {  // the network as stored, BatchNorm not folded: what folding gains
    auto plain = models::load_model(o.model);
    auto x64 = data::images_to_input(faces, cfg).contiguous(torch::MemoryFormat::ChannelsLast);
    auto x1 = x64.slice(0, 0, 1).contiguous(torch::MemoryFormat::ChannelsLast);
    auto forward = [&](const torch::Tensor& x, const Timing& t) {
      runtime::SmallWorkOnOneThread small(static_cast<long>(x.size(0)));
      return summarize(measure([&] {
        torch::InferenceMode guard;
        plain.net->forward(x);
      }, t), static_cast<double>(x.size(0)));
    };
    auto folded_forward = [&](const torch::Tensor& x, const Timing& t) {
      runtime::SmallWorkOnOneThread small(static_cast<long>(x.size(0)));
      return summarize(measure([&] {
        torch::InferenceMode guard;
        loaded.net->forward(x);
      }, t), static_cast<double>(x.size(0)));
    };
    j["unfolded_forward_batch1"] = forward(x1, latency);
    j["unfolded_forward_batch64"] = forward(x64, throughput);
    j["folded_forward_batch1"] = folded_forward(x1, latency);
    j["folded_forward_batch64"] = folded_forward(x64, throughput);
  }

  // A 640x480 photo with one face (the default detector).
  const std::string source = photo_source(o);
  std::string photo_path;
  if (!source.empty()) {
    cv::Mat photo = make_photo(source);
    photo_path = o.out_dir + "/photo-640x480.jpg";
    cv::imwrite(photo_path, photo);
    photo = cv::imread(photo_path, cv::IMREAD_COLOR);
    infer::Predictor photo_predictor(loaded, infer::PredictOptions{});
    j["photo_faces"] = photo_predictor.predict(photo).size();
    j["photo"] = summarize(measure([&] { photo_predictor.predict(photo); }, latency), 1);
  }

  // End to end: the CLI on a folder of crops and on a video, start-up included
  // (and measured on its own, so the steady rate can be read too).
  if (o.adcorre_binary.empty()) {
    j["end_to_end_note"] = "no adcorre binary to run (bench from the CLI runs these rows)";
  } else if (files.size() >= 2) {
    const std::string predict = shell_quoted(o.adcorre_binary) + " --quiet --threads " + std::to_string(threads) +
                                " predict --model " + shell_quoted(o.model);
    const sfs::path folder = sfs::path(o.out_dir) / "crops";
    sfs::remove_all(folder);
    sfs::create_directories(folder);
    const size_t n = std::min<size_t>(files.size(), o.crop_count);
    for (size_t i = 0; i < n; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "%05zu", i);
      sfs::copy_file(files[i], folder / (name + sfs::path(files[i]).extension().string()));
    }
    const double one = command_seconds(predict + " --detector none " + shell_quoted(files[0]) + " > /dev/null");
    const double all = command_seconds(predict + " --detector none " + shell_quoted(folder.string()) + " > /dev/null");
    j["folder"] = {{"faces", n}, {"seconds", all}, {"faces_per_s", n / all}, {"startup_s", one},
                   {"faces_per_s_after_startup", all > one ? (n - 1) / (all - one) : 0.0}};
    if (!photo_path.empty()) {
      const std::string video = o.out_dir + "/video-640x480.avi";
      {
        cv::Mat photo = cv::imread(photo_path, cv::IMREAD_COLOR);
        cv::VideoWriter w(video, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 25, photo.size());
        check(w.isOpened(), "bench: cannot write " + video);
        for (int i = 0; i < o.video_frames; ++i) {  // a slow pan: the face moves, as in a real video
          cv::Mat shifted;
          const double dx = 20.0 * std::sin(i / 10.0);
          cv::warpAffine(photo, shifted, cv::Mat_<double>({2, 3}, {1, 0, dx, 0, 1, 0}), photo.size(), cv::INTER_LINEAR,
                         cv::BORDER_REPLICATE);
          w.write(shifted);
        }
      }
      const double photo_once = command_seconds(predict + " " + shell_quoted(photo_path) + " > /dev/null");
      const double video_s = command_seconds(predict + " --every 1 " + shell_quoted(video) + " > /dev/null");
      j["video"] = {{"frames", o.video_frames}, {"size", {640, 480}}, {"seconds", video_s},
                    {"frames_per_s", o.video_frames / video_s}, {"startup_and_one_photo_s", photo_once},
                    {"frames_per_s_after_startup",
                     video_s > photo_once ? (o.video_frames - 1) / (video_s - photo_once) : 0.0}};
    }
  }
  j["load_average_end"] = load_average();
  j["available"] = true;
  return j;
#endif
}

}  // namespace adcorre::bench::detail
