// adcorre export: a model file from a training run's checkpoint (raw or EMA
// weights), or with --onnx an ONNX graph of a model file or a run.
#include <iostream>

#include <filesystem>

#include "adcorre/models/ensemble_model.h"
#include "adcorre/models/model_file.h"
#include "adcorre/onnx/onnx_export.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/train/trainer.h"
#include "cli.h"

namespace {
struct ExportCli;
int export_onnx(const ExportCli& o);
struct ExportCli {
  std::string run_dir, out;
  bool raw = false, half = false;
  std::string onnx;
  bool dynamic_batch = false;
  int batch = 1;
  int member = -1;  // --member: one network of an ensemble file
};
adcorre::cli::Registrar register_export({"export", "write a model file from a run's checkpoint (raw or EMA weights)", [](CLI::App& app) {
  auto o = std::make_shared<ExportCli>();
  app.add_option("SOURCE", o->run_dir, "run folder holding checkpoint.pt, or a model file to re-save (adds a checksum)")->required();
  auto* out = app.add_option("--out", o->out, "model file to write");
  auto* onnx = app.add_option("--onnx", o->onnx, "ONNX file to write instead (probabilities; see docs/onnx.md)");
  out->excludes(onnx);
  app.add_flag("--dynamic-batch", o->dynamic_batch, "--onnx: any batch size (batch dimension named N)");
  app.add_option("--batch", o->batch, "--onnx: the fixed batch size (default 1)")->check(CLI::PositiveNumber);
  app.add_flag("--raw", o->raw, "the raw weights instead of the EMA weights");
  app.add_option("--member", o->member, "SOURCE an ensemble file: write its member I (from 0) as a model of its own")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--half", o->half, "store the weights in float16 (half the file size; loaded as float32)");
  return [o] {
    if (o->out.empty() && o->onnx.empty()) throw adcorre::Error("export: give --out MODEL.pt or --onnx OUT.onnx");
    if (!o->onnx.empty() && o->member >= 0) throw adcorre::Error("export: --member writes a model file; give --out, not --onnx");
    if (!o->onnx.empty()) return export_onnx(*o);
    using adcorre::models::WeightStorage;
    const auto storage = o->half ? WeightStorage::Float16 : WeightStorage::Float32;
    if (o->member >= 0) {
      if (!std::filesystem::is_regular_file(o->run_dir))
        throw adcorre::Error("export --member: " + o->run_dir + " is not a model file (give an ensemble file)");
      auto m = adcorre::models::load_model(o->run_dir, "cpu");
      auto net = adcorre::models::ensemble_member(m.config, *m.net, static_cast<size_t>(o->member));
      adcorre::models::save_model(o->out, m.config.members[static_cast<size_t>(o->member)], *net, storage);
    } else if (std::filesystem::is_regular_file(o->run_dir)) {
      auto m = adcorre::models::load_model(o->run_dir, "cpu");
      adcorre::models::save_model(o->out, m.config, *m.net, storage);
    } else {
      adcorre::train::export_checkpoint(o->run_dir, o->out, !o->raw, storage);
    }
    std::cout << o->out << "\n";
    return 0;
  };
}});

int export_onnx(const ExportCli& o) {
  adcorre::onnx::OnnxExportOptions opts;
  opts.dynamic_batch = o.dynamic_batch;
  opts.batch = o.batch;
  if (std::filesystem::is_regular_file(o.run_dir)) {
    auto m = adcorre::models::load_model(o.run_dir, "cpu");
    adcorre::onnx::write_onnx(o.onnx, m.config, *m.net, opts);
  } else {
    // A run: its checkpoint as a model file first (the same weights --out writes).
    const std::string tmp = adcorre::fs::temp_path_for(o.onnx) + ".pt";
    try {
      adcorre::train::export_checkpoint(o.run_dir, tmp, !o.raw, adcorre::models::WeightStorage::Float32);
      auto m = adcorre::models::load_model(tmp, "cpu");
      adcorre::onnx::write_onnx(o.onnx, m.config, *m.net, opts);
    } catch (...) {
      std::filesystem::remove(tmp);
      throw;
    }
    std::filesystem::remove(tmp);
  }
  std::cout << o.onnx << "\n";
  return 0;
}
}  // namespace
