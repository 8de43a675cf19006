// adcorre export: a model file from a training run's checkpoint (raw or EMA weights).
#include <iostream>

#include <filesystem>

#include "adcorre/models/model_file.h"
#include "adcorre/train/trainer.h"
#include "cli.h"

namespace {
struct ExportCli {
  std::string run_dir, out;
  bool raw = false, half = false;
};
adcorre::cli::Registrar register_export({"export", "write a model file from a run's checkpoint (raw or EMA weights)", [](CLI::App& app) {
  auto o = std::make_shared<ExportCli>();
  app.add_option("SOURCE", o->run_dir, "run folder holding checkpoint.pt, or a model file to re-save (adds a checksum)")->required();
  app.add_option("--out", o->out, "model file to write")->required();
  app.add_flag("--raw", o->raw, "the raw weights instead of the EMA weights");
  app.add_flag("--half", o->half, "store the weights in float16 (half the file size; loaded as float32)");
  return [o] {
    using adcorre::models::WeightStorage;
    const auto storage = o->half ? WeightStorage::Float16 : WeightStorage::Float32;
    if (std::filesystem::is_regular_file(o->run_dir)) {
      auto m = adcorre::models::load_model(o->run_dir, "cpu");
      adcorre::models::save_model(o->out, m.config, *m.net, storage);
    } else {
      adcorre::train::export_checkpoint(o->run_dir, o->out, !o->raw, storage);
    }
    std::cout << o->out << "\n";
    return 0;
  };
}});
}  // namespace
