// adcorre eval: accuracy, mean class accuracy, per-class P/R/F1 and the
// confusion matrix of a model on a dataset.
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "adcorre/data/packed.h"
#include "adcorre/eval/evaluate.h"
#ifdef ADCORRE_HAVE_OPENCV  // decoded datasets, detection and the heatmap; the minimal build evaluates packed data
#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/eval/eval_detect.h"
#include "adcorre/eval/plots.h"
#include "adcorre/eval/scene_bench.h"
#include "adcorre/infer/predictor.h"
#endif
#include "adcorre/eval/predictions_csv.h"
#include "adcorre/models/model_file.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/log.h"
#include "cli.h"

namespace {

struct EvalCli {
  std::string model, data, kind = "auto", split, options, tta = "none", detect = "none", json_out, confusion_png, predictions;
  bool strict = false;
  // --scenes: the photo path on a scene set (adcorre make-scenes)
  std::string scenes, detectors, crops = "policy,0,0.2";
  double iou = 0.4;
  bool fit_crop = false, align = false;
  int limit = 0;
};

#ifdef ADCORRE_HAVE_OPENCV  // the photo path needs detection and decoding
std::vector<std::string> split_comma_list(const std::string& s) {
  std::vector<std::string> out;
  std::string item;
  for (char c : s + ",") {
    if (c == ',') {
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else if (c != ' ') {
      item += c;
    }
  }
  return out;
}

// A detector spec: kind[:key=value...], keys neighbors, step, threshold,
// min-face, max-side (DetectorOptions' tuning), e.g. "dlib:threshold=-0.2".
adcorre::infer::DetectorOptions parse_detector_spec(const std::string& spec) {
  using adcorre::check;
  adcorre::infer::DetectorOptions d;
  std::vector<std::string> parts;
  std::string part;
  for (char c : spec + ":") {
    if (c == ':') parts.push_back(part), part.clear();
    else part += c;
  }
  d.kind = parts.at(0);
  for (size_t i = 1; i < parts.size(); ++i) {
    const auto eq = parts[i].find('=');
    check(eq != std::string::npos, "--detectors: '" + parts[i] + "' in '" + spec + "' is not key=value");
    const std::string key = parts[i].substr(0, eq), value = parts[i].substr(eq + 1);
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    check(!value.empty() && end && *end == '\0', "--detectors: '" + value + "' for " + key + " in '" + spec + "' is not a number");
    if (key == "neighbors") d.cascade_neighbors = static_cast<int>(v);
    else if (key == "step") d.cascade_step = v;
    else if (key == "threshold") d.dlib_threshold = v;
    else if (key == "score") d.blazeface_score = v;
    else if (key == "tiles") d.blazeface_tiles = static_cast<int>(v);
    else if (key == "min-face") d.min_face = static_cast<int>(v);
    else if (key == "max-side") d.max_side = static_cast<int>(v);
    else throw adcorre::Error("--detectors: unknown key '" + key + "' in '" + spec + "' (known: neighbors, step, threshold, score, tiles, min-face, max-side)");
  }
  return d;
}

// eval --scenes: every detector x crop setting through the Predictor, as predict runs it.
int run_eval_scenes(const EvalCli& o) {
  using namespace adcorre;
  const auto& g = cli::globals();
  const std::string model_path = models::resolve_model_path(o.model);
  std::vector<std::string> detectors = split_comma_list(o.detectors);
  if (detectors.empty())
    for (const auto& k : infer::detector_kinds())
      if (k != "none") detectors.push_back(k);
  eval::SceneBenchOptions bo;
  bo.iou = o.iou;
  bo.fit_crop = o.fit_crop;
  bo.limit = o.limit;
  const auto crops = split_comma_list(o.crops);
  check(!crops.empty(), "--crops: give at least one of policy or a margin (0 .. 2)");
  for (const auto& d : detectors) {
    for (const auto& c : crops) {
      eval::SceneSetting s;
      s.predict.detector = parse_detector_spec(d);
      s.predict.align = o.align;
      s.predict.tta = o.tta;
      if (c == "policy") {
        s.name = d + ", policy";
      } else {
        char* end = nullptr;
        const double m = std::strtod(c.c_str(), &end);
        check(end && *end == '\0' && m >= 0 && m <= 2, "--crops: '" + c + "' is neither policy nor a margin in 0 .. 2");
        s.predict.margin = m;
        s.name = d + ", margin " + c;
      }
      if (o.align) s.name += ", align";
      infer::validate(s.predict);  // an unknown detector fails before the model loads
      bo.settings.push_back(std::move(s));
    }
  }
  infer::PredictOptions base;
  base.tta = o.tta;
  auto predictor = infer::Predictor::from_file(model_path, base, g.device);
  auto j = eval::run_scene_bench(predictor, o.scenes, bo);
  j["model"] = model_path;
  j["threads"] = g.threads;
  std::cout << "model " << model_path << "\n" << eval::scene_bench_table(j);
  if (!o.json_out.empty()) fs::write_file_atomic(o.json_out, j.dump(2) + "\n");
  return 0;
}

#endif

int run_eval(const EvalCli& o) {
  using namespace adcorre;
  if (!o.scenes.empty()) {
#ifdef ADCORRE_HAVE_OPENCV
    check(o.data.empty(), "give --data or --scenes, not both");
    check(o.tta == "none" || o.tta == "flip", "--scenes: tta must be none or flip");
    return run_eval_scenes(o);
#else
    throw adcorre::Error("--scenes is not in this build (ADCORRE_MINIMAL: packed data only)");
#endif
  }
  check(!o.data.empty(), "--data is required (or --scenes DIR for a scene set)");
  const auto& g = cli::globals();
  const std::string model_path = models::resolve_model_path(o.model);
  auto m = models::load_model_for_inference(model_path, g.device);
  data::ImageCache cache;
  std::string ferplus_vote;  // the FER+ label rule, when the data is FER+
  if (data::is_packed_path(o.data)) {  // adcorre pack's output: decoded already
    check(o.detect == "none", "--detect needs images; " + o.data + " is packed data");
    cache = data::fit_packed(data::read_packed(o.data), m.config, o.data);
  } else {
#ifndef ADCORRE_HAVE_OPENCV
    throw Error("--data " + o.data + " is not packed data (a .pack file): this adcorre was built with ADCORRE_MINIMAL "
                "(no OpenCV) and reads no images; write it with `adcorre pack` in a full build");
#else
    // FER+ is scored the way its authors test: the majority vote (FERPlus'
    // rule), images without an emotion majority left out. Training reads the
    // most-voted column (plurality) with the vote distribution instead.
    std::string options = o.options;
    if (options.find("ferplus-vote") == std::string::npos)
      options += std::string(options.empty() ? "" : ",") + "ferplus-vote=majority";
    auto read = data::read_dataset(o.data, o.kind, o.split, options);
    if (read.kind == "ferplus") {
      std::string compact;  // the reader trims around '='
      for (char c : options) if (c != ' ' && c != '\t') compact += c;
      ferplus_vote = compact.find("ferplus-vote=plurality") != std::string::npos ? "plurality" : "majority";
      std::cout << "labels: FER+ "
                << (ferplus_vote == "plurality"
                        ? "most-voted column (plurality)"
                        : "majority vote (FERPlus' rule: single votes dropped, the top emotion holds more than half the votes left)")
                << ", " << read.samples.size() << " images\n";
    }
    auto ds = eval::match_classes(read, m.config.class_names);
    if (o.detect != "none")
      cache = eval::cache_with_detection(ds, m.config, o.detect);
    else
      cache = data::build_cache(ds, m.config, {g.threads, o.strict, false});
#endif
  }
  auto r = eval::evaluate_cache(*m.net, m.config, cache, o.tta, g.device);
  auto j = r.to_json();
  j["model"] = model_path;
  j["data"] = o.data;
  j["tta"] = o.tta;
  j["detect"] = o.detect;
  if (!ferplus_vote.empty()) j["ferplus_vote"] = ferplus_vote;
  std::cout << "model " << model_path << "\ndata " << o.data << " (tta " << o.tta << ")\n" << r.metrics.table();
  if (!o.json_out.empty()) fs::write_file_atomic(o.json_out, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  if (!o.confusion_png.empty()) {
#ifdef ADCORRE_HAVE_OPENCV
    eval::write_confusion_png(r.metrics, o.confusion_png);
#else
    throw Error("--confusion-png: this build (ADCORRE_MINIMAL, no OpenCV) draws no pictures; the matrix is in --json");
#endif
  }
  if (!o.predictions.empty()) eval::write_predictions_csv(o.predictions, cache, r.probs, m.config.class_names);
  return 0;
}

adcorre::cli::Registrar register_eval({"eval", "evaluate a model on a labelled dataset", [](CLI::App& app) {
  auto o = std::make_shared<EvalCli>();
  app.add_option("--model", o->model, "model file (default: the shipped FER-2013 model)");
  app.add_option("--data", o->data, "dataset path, or packed data (.pack, from adcorre pack)");
  app.add_option("--dataset", o->kind, "dataset kind (auto, folders, fer2013-csv, ferplus, rafdb, affectnet)")->capture_default_str();
  app.add_option("--split", o->split, "split where the format holds several (train, val, test)");
  app.add_option("--data-options", o->options, "reader options (FER+: ferplus-vote=majority is the default here, plurality the other)");
  app.add_option("--tta", o->tta, "test-time augmentation: none | flip | tencrop")->capture_default_str();
  app.add_option("--detect", o->detect, "face detection first: none | haar | lbp | dlib")->capture_default_str();
  app.add_option("--json", o->json_out, "also write the results as JSON to this file");
  app.add_option("--confusion-png", o->confusion_png, "also draw the row-normalised confusion heatmap to this PNG");
  app.add_option("--predictions", o->predictions,
                 "also write one CSV row per scored image: key, label, predicted, class probabilities");
  app.add_flag("--strict", o->strict, "an unreadable image is an error instead of being skipped");
  app.add_option("--scenes", o->scenes, "a scene set (adcorre make-scenes): detection recall, extra boxes, end-to-end accuracy, "
                                        "ms per picture through predict's path, for every --detectors x --crops setting");
  app.add_option("--detectors", o->detectors, "--scenes: comma-separated detectors, each kind[:key=value...] with keys neighbors, step, "
                                              "threshold, min-face, max-side (default: every kind this build has)");
  app.add_option("--crops", o->crops, "--scenes: comma-separated crop settings: policy (the detector's fitted one) or a margin")
      ->capture_default_str();
  app.add_option("--iou", o->iou, "--scenes: the overlap that counts a face as found")->capture_default_str();
  app.add_flag("--fit-crop", o->fit_crop, "--scenes: also fit each detector's box-to-true-framing crop policy (use TRAINING scenes)");
  app.add_flag("--align", o->align, "--scenes: level the eyes (dlib landmarks) in every setting");
  app.add_option("--limit", o->limit, "--scenes: only the first N pictures (0: all)")->check(adcorre::cli::at_least(0));
  return [o] { return run_eval(*o); };
}});

}  // namespace
