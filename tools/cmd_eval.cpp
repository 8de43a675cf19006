// adcorre eval: accuracy, mean class accuracy, per-class P/R/F1 and the
// confusion matrix of a model on a dataset.
#include <fstream>
#include <iostream>

#include "adcorre/data/packed.h"
#include "adcorre/eval/evaluate.h"
#ifdef ADCORRE_HAVE_OPENCV  // decoded datasets, detection and the heatmap; the minimal build evaluates packed data
#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/eval/eval_detect.h"
#include "adcorre/eval/plots.h"
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
};

int run_eval(const EvalCli& o) {
  using namespace adcorre;
  const auto& g = cli::globals();
  const std::string model_path = o.model.empty() ? models::default_model_path() : o.model;
  auto m = models::load_model_for_inference(model_path, g.device);
  data::ImageCache cache;
  if (data::is_packed_path(o.data)) {  // adcorre pack's output: decoded already
    check(o.detect == "none", "--detect needs images; " + o.data + " is packed data");
    cache = data::fit_packed(data::read_packed(o.data), m.config, o.data);
  } else {
#ifndef ADCORRE_HAVE_OPENCV
    throw Error("--data " + o.data + " is not packed data (a .pack file): this adcorre was built with ADCORRE_MINIMAL "
                "(no OpenCV) and reads no images; write it with `adcorre pack` in a full build");
#else
    auto ds = eval::match_classes(data::read_dataset(o.data, o.kind, o.split, o.options), m.config.class_names);
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
  app.add_option("--data", o->data, "dataset path, or packed data (.pack, from adcorre pack)")->required();
  app.add_option("--dataset", o->kind, "dataset kind (auto, folders, fer2013-csv, ferplus, rafdb, affectnet)")->capture_default_str();
  app.add_option("--split", o->split, "split where the format holds several (train, val, test)");
  app.add_option("--data-options", o->options, "reader options");
  app.add_option("--tta", o->tta, "test-time augmentation: none | flip | tencrop")->capture_default_str();
  app.add_option("--detect", o->detect, "face detection first: none | haar | lbp | dlib")->capture_default_str();
  app.add_option("--json", o->json_out, "also write the results as JSON to this file");
  app.add_option("--confusion-png", o->confusion_png, "also draw the row-normalised confusion heatmap to this PNG");
  app.add_option("--predictions", o->predictions,
                 "also write one CSV row per scored image: key, label, predicted, class probabilities");
  app.add_flag("--strict", o->strict, "an unreadable image is an error instead of being skipped");
  return [o] { return run_eval(*o); };
}});

}  // namespace
