// adcorre ensemble: one model file that averages the class probabilities of
// several trained models (see models/ensemble_model.h).
#include <iostream>

#include "adcorre/models/ensemble_model.h"
#include "adcorre/models/model_file.h"
#include "adcorre/util/error.h"
#include "cli.h"

namespace {

struct EnsembleCli {
  std::vector<std::string> models;
  std::string out;
  bool half = false;
};

int run_ensemble(const EnsembleCli& o) {
  using namespace adcorre;
  if (o.models.size() < 2) throw Error("ensemble: give at least 2 model files (got " + std::to_string(o.models.size()) + ")");
  std::vector<models::ModelConfig> configs;
  std::vector<models::FerModel> nets;
  for (const auto& path : o.models) {
    auto m = models::load_model(path, "cpu");
    if (m.config.arch == "ensemble")
      throw Error("ensemble: " + path + " is itself an ensemble; list its member models instead");
    m.config.provenance["file"] = path;
    configs.push_back(m.config);
    nets.push_back(m.net);
  }
  models::ModelConfig cfg;
  try {
    cfg = models::ensemble_config(configs);
  } catch (const Error& e) {
    std::string which;
    for (size_t i = 0; i < o.models.size(); ++i) which += "; members[" + std::to_string(i) + "] is " + o.models[i];
    throw Error(std::string("ensemble: these models cannot be combined: ") + e.what() + which);
  }
  cfg.provenance = {{"ensemble_of", o.models}, {"combination", "mean of the members' softmax probabilities"}};
  auto net = models::make_ensemble(cfg, nets);
  models::save_model(o.out, cfg, *net, o.half ? models::WeightStorage::Float16 : models::WeightStorage::Float32);
  std::cout << o.out << ": ensemble of " << o.models.size() << " models, " << models::count_parameters(*net)
            << " parameters, weights in " << (o.half ? "float16" : "float32") << "\n";
  return 0;
}

adcorre::cli::Registrar register_ensemble({"ensemble", "combine trained models into one model file (mean of their probabilities)", [](CLI::App& app) {
  auto o = std::make_shared<EnsembleCli>();
  app.add_option("MODELS", o->models, "two or more model files with the same input and classes")->required();
  app.add_option("--out", o->out, "model file to write")->required();
  app.add_flag("--half", o->half, "store the weights in float16 (half the file size; loaded as float32)");
  return [o] { return run_ensemble(*o); };
}});

}  // namespace
