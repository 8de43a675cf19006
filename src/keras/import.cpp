#include "adcorre/keras/import.h"

#include <filesystem>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "adcorre/data/class_names.h"
#include "adcorre/keras/keras_file.h"
#include "adcorre/keras/keras_graph.h"
#include "adcorre/keras/xception_mapping.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"

namespace adcorre::keras {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) {
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<double> numbers(const std::string& s, const std::string& what) {
  std::vector<double> v;
  for (auto& p : split(s, '/')) {
    try {
      size_t used = 0;
      v.push_back(std::stod(p, &used));
      if (used != p.size()) throw std::invalid_argument(p);
    } catch (const std::exception&) {
      throw Error("--preprocess: " + what + " value '" + p + "' is not a number");
    }
  }
  return v;
}

// A graph model on the file's weights, for the route itself or the self-check.
models::FerModel graph_model(const models::ModelConfig& base, const KerasFile& f) {
  models::ModelConfig cfg = base;
  cfg.arch = "keras_graph";
  cfg.preset = "";
  cfg.graph = f.model_config;
  auto net = models::create_model(cfg);
  load_graph_weights(*net, f);
  net->eval();
  return net;
}

}  // namespace

void apply_preprocess(models::ModelConfig& c, const std::string& spec) {
  const size_t n = static_cast<size_t>(c.in_channels);
  auto fill = [&](std::vector<double> v, const std::string& what) {
    if (v.size() == 1) v.assign(n, v[0]);
    if (v.size() != n)
      throw Error("--preprocess: " + what + " needs 1 or " + std::to_string(n) + " values for this " +
                  std::to_string(n) + "-channel model");
    return v;
  };
  for (auto& word : split(spec, ',')) {
    const std::string w = fs::lower(word);
    if (w == "unit") {
      c.mean = fill({0.0}, "unit");
      c.std = fill({1.0}, "unit");
    } else if (w == "tf") {
      c.mean = fill({0.5}, "tf");
      c.std = fill({0.5}, "tf");
    } else if (w == "torch") {
      c.mean = fill({0.485, 0.456, 0.406}, "torch");
      c.std = fill({0.229, 0.224, 0.225}, "torch");
    } else if (w == "caffe") {
      if (n != 3) throw Error("--preprocess: caffe needs a 3-channel model");
      c.color_order = "bgr";
      c.mean = {103.939 / 255, 116.779 / 255, 123.68 / 255};
      c.std = {1.0 / 255, 1.0 / 255, 1.0 / 255};
    } else if (w == "rgb" || w == "bgr") {
      c.color_order = w;
    } else if (w.rfind("mean=", 0) == 0) {
      c.mean = fill(numbers(w.substr(5), "mean"), "mean");
    } else if (w.rfind("std=", 0) == 0) {
      c.std = fill(numbers(w.substr(4), "std"), "std");
    } else {
      throw Error("--preprocess: unknown item '" + word + "' (unit, tf, torch, caffe, mean=A/B/C, std=A/B/C, rgb, bgr)");
    }
  }
  if (c.mean.size() != c.std.size()) c.std.assign(c.mean.size(), c.std.empty() ? 1.0 : c.std[0]);
  c.validate();
}

ImportResult import_keras(const std::string& path, const ImportOptions& o) {
  if (o.mode != "auto" && o.mode != "xception" && o.mode != "graph")
    throw Error("Keras import: mode '" + o.mode + "' (auto, xception or graph)");
  KerasFile f = read_keras_file(path);
  if (f.weights_only())
    throw Error("Keras file " + path +
                " holds weights only (no model_config), so it has no architecture to import; "
                "weights of a Keras Xception (e.g. Keras' ImageNet xception_weights_tf_dim_ordering_tf_kernels_notop.h5) "
                "initialise an adcorre Xception with `adcorre train --init " + path + "`");
  KerasGraph g;
  try {
    g = parse_keras_graph(f.model_config);
  } catch (const Error& e) {
    throw Error("Keras file " + path + ": " + e.what());
  }
  ImportResult r;
  auto shape = g.input_shape();
  if (shape[0] < 0 || shape[1] < 0) {
    if (o.input_size <= 0)
      throw Error("Keras file " + path + ": the model's input size is not fixed; give one with --input-size");
    shape[0] = shape[1] = o.input_size;
  }
  if (shape[0] != shape[1])
    throw Error("Keras file " + path + ": input " + std::to_string(shape[0]) + "x" + std::to_string(shape[1]) +
                " is not square (adcorre models take square inputs)");
  if (shape[2] != 1 && shape[2] != 3)
    throw Error("Keras file " + path + ": input has " + std::to_string(shape[2]) + " channels (1 or 3 supported)");

  models::ModelConfig base;
  base.preset = "";
  base.input_size = static_cast<int>(shape[0]);
  base.in_channels = static_cast<int>(shape[2]);
  base.mean.assign(base.in_channels, 0.0);
  base.std.assign(base.in_channels, 1.0);
  base.k = 0;
  base.d = 0;
  base.class_names = {"class0", "class1"};

  // Route.
  std::string why;
  if (o.mode != "graph") {
    auto m = match_keras_xception(f, &why);
    if (m) {
      // Same weights through the generic graph: the two must agree.
      models::ModelConfig gcfg = base;
      gcfg.class_names = m->config.class_names;
      auto graph = graph_model(gcfg, f);
      torch::NoGradGuard ng;
      auto gen = at::detail::createCPUGenerator(12345);  // a fixed batch, global RNG untouched
      auto x = torch::randn({2, base.in_channels, base.input_size, base.input_size}, gen);
      auto pa = torch::softmax(m->net->forward(x).logits, 1);
      auto pb = torch::softmax(graph->forward(x).logits, 1);
      const double diff = (pa - pb).abs().max().item<double>();
      if (diff <= 1e-4) {
        r.mode = "xception";
        r.config = m->config;
        r.net = m->net;
        r.self_check_max_diff = diff;
      } else {
        why = "adcorre's Xception and the Keras graph disagree by " + std::to_string(diff) + " on the same weights";
      }
    }
    if (r.mode.empty() && o.mode == "xception")
      throw Error("Keras file " + path + " does not import as an adcorre Xception: " + why);
    if (r.mode.empty()) r.notes.push_back("not an adcorre Xception + Ad-Corre head (" + why + "): using the generic graph");
  }
  if (r.mode.empty()) {
    r.mode = "graph";
    r.config = base;
    r.config.arch = "keras_graph";
    r.config.graph = f.model_config;
    try {
      r.net = graph_model(r.config, f);
    } catch (const Error& e) {
      throw Error(std::string(e.what()).rfind("Keras file", 0) == 0 ? e.what() : "Keras file " + path + ": " + e.what());
    }
  }

  // Classes.
  torch::NoGradGuard ng;
  r.net->eval();
  auto out = r.net->forward(torch::zeros({1, base.in_channels, base.input_size, base.input_size}));
  const int64_t classes = out.logits.size(1);
  std::vector<std::string> names = o.classes;
  if (names.empty()) {
    if (classes != 7)
      throw Error("Keras file " + path + ": the model has " + std::to_string(classes) +
                  " outputs; name them in order with --classes a,b,...");
    names = data::fer2013_names();
    r.notes.push_back("no --classes: assuming FER-2013's order angry,disgust,fear,happy,sad,surprise,neutral");
  }
  if (static_cast<int64_t>(names.size()) != classes)
    throw Error("Keras file " + path + ": --classes names " + std::to_string(names.size()) + " classes but the model has " +
                std::to_string(classes) + " outputs");
  for (auto& n : names) {
    if (auto canon = data::canonical_name(n)) n = *canon;
    else r.notes.push_back("class '" + n + "' is not one of adcorre's canonical names; kept as given");
  }
  r.config.class_names = names;
  if (r.config.arch == "keras_graph" && out.embeddings.defined()) {
    r.config.k = static_cast<int>(out.embeddings.size(0));
    r.config.d = static_cast<int>(out.embeddings.size(2));
  }

  // Preprocessing.
  std::string spec = o.preprocess;
  if (spec.empty()) {
    spec = r.mode == "xception" ? "unit" : "tf";
    r.notes.push_back(r.mode == "xception"
                          ? "no --preprocess: x/255 (RGB in [0, 1]), as the released Ad-Corre models expect"
                          : "no --preprocess: assuming Keras' 'tf' scaling x/127.5 - 1 (mean 0.5, std 0.5)");
  }
  apply_preprocess(r.config, spec);

  r.config.provenance = {{"imported_from", std::filesystem::path(path).filename().string()},
                         {"keras_version", f.keras_version},
                         {"keras_backend", f.backend},
                         {"import_route", r.mode}};
  r.config.validate();
  return r;
}

}  // namespace adcorre::keras
