// The photo-path benchmark (scene_bench.h): every picture of a scene set
// through Predictor::predict, matched against the true boxes.
#include "adcorre/eval/scene_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <opencv2/imgcodecs.hpp>

#include "adcorre/eval/scenes.h"
#include "adcorre/infer/crop_policy.h"
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"

namespace adcorre::eval {

double box_iou(const cv::Rect& a, const cv::Rect& b) {
  if (a.area() <= 0 || b.area() <= 0) return 0;
  const double inter = (a & b).area();
  return inter / (a.area() + b.area() - inter);
}

std::vector<int> match_boxes(const std::vector<cv::Rect>& truth, const std::vector<cv::Rect>& detected, double min_iou) {
  struct Pair {
    double iou;
    int t, d;
  };
  std::vector<Pair> pairs;
  for (size_t t = 0; t < truth.size(); ++t)
    for (size_t d = 0; d < detected.size(); ++d)
      if (const double v = box_iou(truth[t], detected[d]); v >= min_iou) pairs.push_back({v, static_cast<int>(t), static_cast<int>(d)});
  std::stable_sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) { return a.iou > b.iou; });
  std::vector<int> match(truth.size(), -1);
  std::vector<bool> used(detected.size(), false);
  for (const auto& p : pairs) {
    if (match[p.t] >= 0 || used[p.d]) continue;
    match[p.t] = p.d;
    used[p.d] = true;
  }
  return match;
}

namespace {

struct Tally {
  long faces = 0, found = 0, correct = 0, extra = 0;
  // The same counts with each face's classified square (its box under the
  // crop policy) matched against the pasted square instead of the detector's
  // raw box: the pasted square is the training framing, which is what the
  // policy aims at, while a tight detector box on a face that fills only part
  // of its FER square can miss IoU 0.4 although the model saw the right crop.
  long found_crop = 0, correct_crop = 0, extra_crop = 0;
  long phantom = 0;  // extra boxes that lie mostly outside every true face (the rest frame a true face differently)
  double seconds = 0;
  std::vector<std::pair<cv::Rect, cv::Rect>> matched;  // {detected, truth}, for the crop fit
};

double ratio(long a, long b) { return b > 0 ? static_cast<double>(a) / b : 0.0; }
double round4(double v) { return std::round(v * 1e4) / 1e4; }

}  // namespace

nlohmann::json run_scene_bench(infer::Predictor& predictor, const std::string& dir, const SceneBenchOptions& opts) {
  check(opts.iou > 0 && opts.iou <= 1, "scene benchmark: iou must be in (0, 1] (got " + std::to_string(opts.iou) + ")");
  std::vector<Scene> scenes = read_scene_truth(dir);
  if (opts.limit > 0 && static_cast<size_t>(opts.limit) < scenes.size()) scenes.resize(static_cast<size_t>(opts.limit));
  const auto& names = predictor.config().class_names;
  auto class_of = [&](const std::string& label, const std::string& file) {
    const auto it = std::find(names.begin(), names.end(), label);
    if (it == names.end()) throw Error(dir + "/truth.jsonl: " + file + ": label '" + label + "' is not a class of the model");
    return static_cast<int>(it - names.begin());
  };
  auto argmax = [](const std::vector<double>& p) { return static_cast<int>(std::max_element(p.begin(), p.end()) - p.begin()); };

  // Decoded once, outside the timing: the benchmark measures the photo path, not JPEG decoding.
  std::vector<cv::Mat> pictures;
  long faces_total = 0;
  for (const auto& s : scenes) {
    const std::string path = (std::filesystem::path(dir) / s.file).string();
    cv::Mat img = cv::imread(path, cv::IMREAD_COLOR);
    if (img.empty()) throw Error("cannot read the scene picture " + path);
    for (const auto& f : s.faces) class_of(f.label, s.file);
    faces_total += static_cast<long>(s.faces.size());
    pictures.push_back(std::move(img));
  }

  nlohmann::json results = nlohmann::json::array();
  if (opts.oracle) {
    Tally t;
    for (size_t i = 0; i < scenes.size(); ++i) {
      std::vector<cv::Mat> crops;
      // The pasted square turned back upright: exactly the face as it was pasted.
      for (const auto& f : scenes[i].faces) crops.push_back(infer::crop_with_policy(pictures[i], f.box, {}, -f.angle));
      if (crops.empty()) continue;
      const auto probs = predictor.classify(crops, predictor.options().tta);
      for (size_t k = 0; k < crops.size(); ++k) t.correct += argmax(probs[k]) == class_of(scenes[i].faces[k].label, scenes[i].file);
      t.faces += static_cast<long>(crops.size());
    }
    results.push_back({{"setting", "oracle (true boxes)"},
                       {"detector", "truth"},
                       {"recall", 1.0},
                       {"accuracy", round4(ratio(t.correct, t.faces))},
                       {"accuracy_found", round4(ratio(t.correct, t.faces))}});
  }

  for (const auto& setting : opts.settings) {
    infer::validate(setting.predict);
    Tally t;
    for (size_t i = 0; i < scenes.size(); ++i) {
      const auto start = std::chrono::steady_clock::now();
      const std::vector<infer::Face> faces = predictor.predict(pictures[i], setting.predict);
      t.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::vector<cv::Rect> truth_boxes, boxes;
      for (const auto& f : scenes[i].faces) truth_boxes.push_back(f.box);
      for (const auto& f : faces) boxes.push_back(f.box);
      const auto match = match_boxes(truth_boxes, boxes, opts.iou);
      long matched_here = 0;
      for (size_t k = 0; k < match.size(); ++k) {
        ++t.faces;
        if (match[k] < 0) continue;
        ++t.found, ++matched_here;
        const auto& face = faces[static_cast<size_t>(match[k])];
        t.correct += argmax(face.probs) == class_of(scenes[i].faces[k].label, scenes[i].file);
        t.matched.push_back({face.box, truth_boxes[k]});
      }
      t.extra += static_cast<long>(faces.size()) - matched_here;
      {
        const auto policy = infer::crop_policy_of(setting.predict);
        std::vector<cv::Rect> squares;
        for (const auto& b : boxes) squares.push_back(infer::crop_square(b, policy));
        const auto by_crop = match_boxes(truth_boxes, squares, opts.iou);
        long here = 0;
        for (size_t k = 0; k < by_crop.size(); ++k) {
          if (by_crop[k] < 0) continue;
          ++t.found_crop, ++here;
          t.correct_crop += argmax(faces[static_cast<size_t>(by_crop[k])].probs) ==
                            class_of(scenes[i].faces[k].label, scenes[i].file);
        }
        t.extra_crop += static_cast<long>(faces.size()) - here;
      }
      std::vector<bool> is_match(boxes.size(), false);
      for (int m : match)
        if (m >= 0) is_match[static_cast<size_t>(m)] = true;
      for (size_t d = 0; d < boxes.size(); ++d) {
        if (is_match[d]) continue;
        bool on_a_face = false;
        for (const auto& tb : truth_boxes) on_a_face = on_a_face || 2 * (boxes[d] & tb).area() >= boxes[d].area();
        t.phantom += !on_a_face;
      }
    }
    nlohmann::json r = {{"setting", setting.name},
                        {"detector", setting.predict.detector.kind},
                        {"crop", infer::crop_policy_of(setting.predict).to_json()},
                        {"align", setting.predict.align},
                        {"recall", round4(ratio(t.found, t.faces))},
                        {"found", t.found},
                        {"extra_boxes", t.extra},
                        {"extra_per_picture", round4(ratio(t.extra, static_cast<long>(scenes.size())))},
                        {"phantom_boxes", t.phantom},
                        {"phantom_per_picture", round4(ratio(t.phantom, static_cast<long>(scenes.size())))},
                        {"accuracy", round4(ratio(t.correct, t.faces))},
                        {"accuracy_found", round4(ratio(t.correct, t.found))},
                        {"recall_crop_box", round4(ratio(t.found_crop, t.faces))},
                        {"extra_boxes_crop_box", t.extra_crop},
                        {"extra_per_picture_crop_box", round4(ratio(t.extra_crop, static_cast<long>(scenes.size())))},
                        {"accuracy_crop_box", round4(ratio(t.correct_crop, t.faces))},
                        {"ms_per_picture", std::round(t.seconds * 1e4 / std::max<size_t>(1, scenes.size())) / 10}};
    if (opts.fit_crop && !t.matched.empty()) {
      // The current crop's fit is relative to the detector's box, whatever the crop setting.
      r["fitted_crop"] = infer::fit_crop_policy(t.matched).to_json();
    }
    log::info(setting.name + ": recall " + std::to_string(r["recall"].get<double>()) + ", accuracy " +
              std::to_string(r["accuracy"].get<double>()));
    results.push_back(std::move(r));
  }
  return {{"scenes", dir},
          {"pictures", scenes.size()},
          {"faces", faces_total},
          {"iou", opts.iou},
          {"results", results}};
}

std::string scene_bench_table(const nlohmann::json& j) {
  std::ostringstream out;
  out << "scenes " << j.value("scenes", "?") << ": " << j.value("pictures", 0) << " pictures, " << j.value("faces", 0)
      << " faces, IoU >= " << j.value("iou", 0.0) << "\n\n"
      << "| setting | faces found | extra boxes | extra / picture | phantom / picture | end-to-end accuracy | accuracy of found faces | "
         "found, by crop box | extra / picture, by crop box | ms / picture |\n"
      << "|---|---|---|---|---|---|---|---|---|---|\n";
  char buf[256];
  for (const auto& r : j.at("results")) {
    if (r.value("detector", "") == "truth") {
      std::snprintf(buf, sizeof buf, "| %s | - | - | - | - | %.3f | %.3f | - | - | - |\n", r.value("setting", "?").c_str(), r.value("accuracy", 0.0),
                    r.value("accuracy_found", 0.0));
    } else {
      std::snprintf(buf, sizeof buf, "| %s | %.3f | %ld | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.1f |\n",
                    r.value("setting", "?").c_str(), r.value("recall", 0.0), r.value("extra_boxes", 0L),
                    r.value("extra_per_picture", 0.0), r.value("phantom_per_picture", 0.0), r.value("accuracy", 0.0),
                    r.value("accuracy_found", 0.0), r.value("recall_crop_box", 0.0),
                    r.value("extra_per_picture_crop_box", 0.0), r.value("ms_per_picture", 0.0));
    }
    out << buf;
  }
  return out.str();
}

}  // namespace adcorre::eval
