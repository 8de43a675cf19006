// Plans and runs `adcorre bench`: the C++ measurements, their Python
// counterparts right after them (so both sides see the same machine load),
// the pairs' speedups and the targets of issue 10.
#include "adcorre/bench/suite.h"

#include <algorithm>
#include <filesystem>

#include "adcorre/bench/machine.h"
#include "adcorre/bench/python_side.h"
#include "adcorre/bench/timing.h"
#include "adcorre/models/model_config.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/log.h"
#include "adcorre/util/runtime.h"
#include "sections.h"

namespace adcorre::bench {
using nlohmann::json;

std::vector<std::string> section_names() { return {"inference", "training", "loss", "loader", "predict", "model"}; }

void BenchOptions::apply_quick_defaults() {
  const BenchOptions d;
  if (presets.empty()) presets = {"fer-tiny"};
  if (batch == d.batch) batch = 8;
  if (train_batch == d.train_batch) train_batch = 8;
  if (large_train_batch == d.large_train_batch) large_train_batch = 2;
  if (min_time == d.min_time) min_time = 0;
  if (large_iters == d.large_iters) large_iters = 1;
  if (loader_images == d.loader_images) loader_images = 256;
  if (crop_count == d.crop_count) crop_count = 32;
  if (video_frames == d.video_frames) video_frames = 10;
}

void BenchOptions::validate() const {
  auto names = section_names();
  for (auto& s : sections)
    if (std::find(names.begin(), names.end(), s) == names.end())
      throw Error("bench: unknown section '" + s + "' (known: inference, training, loss, loader, predict, model)");
  for (auto& p : presets) models::preset(p);  // throws naming the known presets
  check(batch >= 1, "bench: --batch must be >= 1");
  check(train_batch >= 2 && large_train_batch >= 2, "bench: training batches must be >= 2 (batch norm)");
  check(min_time >= 0, "bench: --min-time must be >= 0");
  check(large_iters >= 1, "bench: --large-iters must be >= 1");
  check(loader_images >= 0, "bench: --loader-images must be >= 0");
  check(!out_dir.empty(), "bench: --out must not be empty");
  check(crop_count >= 2, "bench: --crops-count must be >= 2");
  check(video_frames >= 1, "bench: --video-frames must be >= 1");
  if (std::find(sections.begin(), sections.end(), "model") != sections.end())
    check(!model.empty(), "bench: the model section needs --model FILE");
}

namespace {

// Loss benchmark size: the paper's (issue 3).
constexpr int kLossB = 64, kLossK = 7, kLossD = 256, kLossC = 7;

bool is_large(const models::ModelConfig& cfg) { return cfg.input_size >= 128; }

struct Plan {
  Timing latency, throughput, train, loss, numpy_loss, batches, predict;
};

Plan small_plan(const BenchOptions& o) {
  Plan p;
  if (o.quick) {
    p.latency = p.throughput = p.train = p.batches = p.predict = Timing{1, 2, 0.0, 2};
    p.loss = Timing{2, 5, 0.0, 5};
    p.numpy_loss = Timing{1, 2, 0.0, 2};
    return p;
  }
  p.latency = Timing{5, 20, o.min_time, 1000};
  p.throughput = Timing{2, 5, o.min_time, 200};
  p.train = Timing{2, 5, o.min_time, 100};
  p.loss = Timing{5, 30, o.min_time, 2000};
  p.numpy_loss = Timing{1, 5, o.min_time, 200};
  p.batches = Timing{3, 20, o.min_time, 1000};
  p.predict = Timing{3, 10, o.min_time, 500};
  return p;
}

Plan large_plan(const BenchOptions& o) {
  Plan p = small_plan(o);
  p.latency = Timing{1, o.large_iters, 0.0, o.large_iters};
  p.throughput = p.train = Timing{1, o.large_iters, 0.0, o.large_iters};
  return p;
}

double num(const json& j, const char* key) { return j.contains(key) ? j.at(key).get<double>() : 0.0; }

// adcorre and Python measurements of the same work; speedup = Python / adcorre time.
json pair_of(const json& ours, const json& python) {
  json p{{"adcorre", ours}, {"python", python}};
  if (!python.is_null()) {
    p["speedup"] = num(python, "median_s") / num(ours, "median_s");
    if (num(python, "cpu_median_s") > 0 && num(ours, "cpu_median_s") > 0)
      p["speedup_cpu"] = num(python, "cpu_median_s") / num(ours, "cpu_median_s");
  }
  return p;
}

std::string input_shape(const models::ModelConfig& c) {
  return std::to_string(c.input_size) + "x" + std::to_string(c.input_size) + "x" + std::to_string(c.in_channels);
}

// Runs the Python request; on failure records the error instead of stopping the run.
json python_results(const PythonSide& py, const json& tasks, const BenchOptions& o, json& versions, json& errors) {
  if (!py.available) return json();
  try {
    json out = run_python(py, {{"threads", runtime::threads()}, {"seed", o.seed}, {"tasks", tasks}}, o.out_dir,
                          runtime::threads());
    for (auto key : {"python", "torch", "numpy", "threads", "mkldnn"})
      if (out.contains(key)) versions[key] = out[key];
    return out.at("results");
  } catch (const std::exception& e) {
    log::warn(e.what());
    errors.push_back(e.what());
    return json();
  }
}

json py_summary(const json& results, const std::string& name, double items) {
  if (results.is_null() || !results.contains(name)) return json();
  const auto& r = results.at(name);
  return summarize_json(r.at("times_s"), r.contains("cpu_s") ? r.at("cpu_s") : json(), items);
}

json task(const std::string& name, const std::string& kind, const json& extra, const Timing& t) {
  json j = extra;
  j["name"] = name;
  j["kind"] = kind;
  j["timing"] = t.to_json();
  return j;
}

struct Target {
  std::string name, wanted;
  json value;  // null: not measured in this run
  bool higher_is_better;
  double threshold;
  std::string unit;
};

json targets(const json& r) {
  // Issue 10's targets, for the compact preset at the documented sizes.
  json compact_inf, compact_train;
  for (auto& e : r.value("inference", json::array()))
    if (e["preset"] == "fer-compact") compact_inf = e;
  for (auto& e : r.value("training", json::array()))
    if (e["preset"] == "fer-compact") compact_train = e;
  auto at = [](const json& j, std::initializer_list<const char*> path) -> json {
    const json* p = &j;
    for (auto k : path) {
      if (!p->is_object() || !p->contains(k)) return json();
      p = &p->at(k);
    }
    return *p;
  };
  std::vector<Target> ts;
  ts.push_back({"fer-compact training step vs the PyTorch (Python) step", ">= 1.25x", at(compact_train, {"speedup"}),
                true, 1.25, "x"});
  json share = at(r, {"loss", "share_of_step"});
  if (!at(r, {"loss", "share_of_step_preset"}).is_null() && r["loss"]["share_of_step_preset"] != "fer-compact") share = json();
  ts.push_back({"Ad-Corre loss (fwd+bwd) share of a fer-compact training step", "<= 2%",
                share.is_null() ? json() : json(100.0 * share.get<double>()), false, 2.0, "%"});
  ts.push_back({"Ad-Corre loss (fwd+bwd) vs the numpy-loops loss (forward only)", ">= 100x",
                at(r, {"loss", "speedup_vs_numpy_loops"}), true, 100.0, "x"});
  json thr = at(compact_inf, {"throughput", "adcorre", "items_per_s"});
  if (!thr.is_null() && compact_inf["throughput"]["batch"] != 64) thr = json();
  ts.push_back({"fer-compact inference throughput at batch 64", ">= 3000 faces/s", thr, true, 3000.0, "faces/s"});
  json lat = at(compact_inf, {"latency", "adcorre", "median_s"});
  ts.push_back({"fer-compact inference latency at batch 1", "<= 1 ms/face",
                lat.is_null() ? json() : json(1000.0 * lat.get<double>()), false, 1.0, "ms"});
  json out = json::array();
  for (auto& t : ts) {
    json j{{"name", t.name}, {"wanted", t.wanted}, {"value", t.value}, {"unit", t.unit}};
    if (t.value.is_null()) {
      j["met"] = nullptr;
    } else {
      double v = t.value.get<double>();
      j["met"] = t.higher_is_better ? v >= t.threshold : v <= t.threshold;
    }
    out.push_back(j);
  }
  return out;
}

}  // namespace

json run_benchmarks(const BenchOptions& in) {
  BenchOptions o = in;
  if (o.quick) o.apply_quick_defaults();
  if (o.presets.empty()) o.presets = {"fer-compact", "xception"};
  o.validate();
  std::filesystem::create_directories(o.out_dir);
  auto want = [&](const std::string& s) {
    return o.sections.empty() || std::find(o.sections.begin(), o.sections.end(), s) != o.sections.end();
  };
  const double start = wall_seconds();

  json r;
  r["schema"] = "adcorre-bench/1";
  // Before anything runs: OpenBLAS on one thread, as runtime::set_threads
  // leaves it for every command (see runtime.cpp), so the numbers are adcorre's.
  const int openblas_threads = limit_openblas_threads(1);
  r["machine"] = machine_info();
  r["machine"]["openblas_threads"] = openblas_threads;
  r["settings"] = {{"quick", o.quick},         {"presets", o.presets},           {"batch", o.batch},
                   {"train_batch", o.train_batch}, {"large_train_batch", o.large_train_batch},
                   {"min_time", o.min_time},   {"large_iters", o.large_iters},   {"seed", o.seed},
                   {"loader_images", o.loader_images}};
  PythonSide py;
  if (o.no_python) {
    py.note = "skipped (--no-python)";
  } else {
    py = find_python(o.python, o.python_scripts);
  }
  if (!py.available) log::warn("bench: Python side skipped: " + py.note);
  json versions = json::object(), errors = json::array();

  // Inference and training, preset by preset; Python right after C++.
  if (want("inference") || want("training")) {
    r["inference"] = json::array();
    r["training"] = json::array();
    for (auto& name : o.presets) {
      const auto cfg = models::preset(name);
      const Plan plan = is_large(cfg) ? large_plan(o) : small_plan(o);
      const int train_batch = is_large(cfg) ? o.large_train_batch : o.train_batch;
      json ours, tasks = json::array();
      const json cfg_json = cfg.to_json();
      if (want("inference")) {
        log::info("bench: inference " + name + " (batch 1, batch " + std::to_string(o.batch) + ")");
        ours["latency"] = detail::cpp_inference(cfg, 1, plan.latency, o.seed);
        ours["throughput"] = detail::cpp_inference(cfg, o.batch, plan.throughput, o.seed);
        tasks.push_back(task("latency", "infer", {{"config", cfg_json}, {"batch", 1}}, plan.latency));
        tasks.push_back(task("throughput", "infer", {{"config", cfg_json}, {"batch", o.batch}}, plan.throughput));
      }
      if (want("training")) {
        log::info("bench: training " + name + " (batch " + std::to_string(train_batch) + ")");
        ours["train"] = detail::cpp_training(cfg, train_batch, plan.train, o.seed);
        tasks.push_back(task("train", "train", {{"config", cfg_json}, {"batch", train_batch}}, plan.train));
      }
      log::info("bench: the same in Python (" + name + ")");
      json pres = python_results(py, tasks, o, versions, errors);
      if (want("inference")) {
        json e{{"preset", name}, {"input", input_shape(cfg)}};
        e["latency"] = pair_of(ours["latency"], py_summary(pres, "latency", 1));
        e["latency"]["batch"] = 1;
        e["throughput"] = pair_of(ours["throughput"], py_summary(pres, "throughput", o.batch));
        e["throughput"]["batch"] = o.batch;
        r["inference"].push_back(e);
      }
      if (want("training")) {
        json e = pair_of(ours["train"], py_summary(pres, "train", train_batch));
        e["preset"] = name;
        e["input"] = input_shape(cfg);
        e["batch"] = train_batch;
        r["training"].push_back(e);
      }
    }
    if (!want("inference")) r.erase("inference");
    if (!want("training")) r.erase("training");
  }

  if (want("loss")) {
    log::info("bench: Ad-Corre loss (B 64, k 7, d 256, C 7)");
    const Plan plan = small_plan(o);
    json l{{"B", kLossB}, {"k", kLossK}, {"d", kLossD}, {"C", kLossC}};
    l["adcorre_fwd_bwd"] = detail::cpp_loss(kLossB, kLossK, kLossD, kLossC, plan.loss, true, o.seed);
    l["adcorre_fwd"] = detail::cpp_loss(kLossB, kLossK, kLossD, kLossC, plan.loss, false, o.seed);
    json shape{{"B", kLossB}, {"k", kLossK}, {"d", kLossD}, {"C", kLossC}};
    json tasks = json::array({task("loss_torch", "loss_torch", shape, plan.loss),
                              task("loss_numpy", "loss_numpy", shape, plan.numpy_loss)});
    json pres = python_results(py, tasks, o, versions, errors);
    l["python_torch_fwd_bwd"] = py_summary(pres, "loss_torch", 1);
    l["numpy_loops_fwd"] = py_summary(pres, "loss_numpy", 1);
    const double ours = num(l["adcorre_fwd_bwd"], "median_s");
    if (!l["python_torch_fwd_bwd"].is_null())
      l["speedup_vs_python_torch"] = num(l["python_torch_fwd_bwd"], "median_s") / ours;
    if (!l["numpy_loops_fwd"].is_null()) {
      l["speedup_vs_numpy_loops"] = num(l["numpy_loops_fwd"], "median_s") / ours;
      l["speedup_vs_numpy_loops_fwd_only"] = num(l["numpy_loops_fwd"], "median_s") / num(l["adcorre_fwd"], "median_s");
      if (pres.contains("loss_numpy") && pres["loss_numpy"].contains("rel_diff"))
        l["numpy_loops_vs_torch_rel_diff"] = pres["loss_numpy"]["rel_diff"];
    }
    // Share of the first measured preset's training step (fer-compact by default).
    if (r.contains("training") && !r["training"].empty()) {
      const auto& t = r["training"][0];
      l["share_of_step_preset"] = t["preset"];
      l["share_of_step_batch"] = t["batch"];
      l["share_of_step"] = ours / num(t["adcorre"], "median_s");
    }
    r["loss"] = l;
  }

  const auto compact = models::preset(o.quick ? "fer-tiny" : "fer-compact");
  if (want("loader")) {
    log::info("bench: loader (decode into the cache, batches with strong augmentation)");
    r["loader"] = detail::loader_section(o, compact, small_plan(o).batches);
  }
  if (want("predict")) {
    log::info("bench: predict on a 640x480 photo");
    r["predict"] = detail::predict_section(o, compact, small_plan(o).predict);
  }
  if (!o.model.empty() && want("model")) {
    log::info("bench: the model file " + o.model);
    const Plan plan = small_plan(o);
    r["model"] = detail::model_section(o, plan.latency, plan.throughput);
  }

  r["python_side"] = {{"available", py.available}, {"interpreter", py.interpreter}, {"versions", versions}};
  if (!py.note.empty()) r["python_side"]["note"] = py.note;
  if (!errors.empty()) r["python_side"]["errors"] = errors;
  r["targets"] = targets(r);
  r["machine"]["load_average_end"] = load_average();
  r["seconds"] = wall_seconds() - start;
  return r;
}

void write_results(const json& result, const std::string& out_dir) {
  std::filesystem::create_directories(out_dir);
  fs::write_file_atomic(out_dir + "/bench.json", result.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  fs::write_file_atomic(out_dir + "/bench.md", markdown_report(result));
}

}  // namespace adcorre::bench
