// adcorre pack: decodes a dataset once into packed data (data/packed.h), the
// input that training and evaluation read without decoding images, e.g. in
// a build without OpenCV or on a GPU machine with no image libraries.
#include <filesystem>
#include <iostream>

#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/data/packed.h"
#include "adcorre/util/error.h"
#include "cli.h"

namespace {

struct PackCli {
  std::string data, kind = "auto", split, options, out;
  int size = 48, channels = 1;
  bool strict = false;
};

int run_pack(const PackCli& o) {
  using namespace adcorre;
  check(o.size >= 8 && o.size <= 1024, "--size " + std::to_string(o.size) + " is outside 8..1024");
  check(o.channels == 1 || o.channels == 3, "--channels must be 1 or 3, not " + std::to_string(o.channels));
  check(std::filesystem::path(o.out).extension() == ".pack", "--out " + o.out + " must end in .pack (how train and eval recognise it)");
  auto ds = data::read_dataset(o.data, o.kind, o.split, o.options);
  models::ModelConfig cfg;  // only the input fields matter for decoding
  cfg.input_size = o.size;
  cfg.in_channels = o.channels;
  cfg.class_names = ds.classes;
  auto cache = data::build_cache(ds, cfg, {cli::globals().threads, o.strict, false});
  const std::string source = o.data + (o.split.empty() ? "" : " (" + o.split + ")");
  data::write_packed(o.out, cache, source);
  std::cout << "packed " << cache.size() << " images (" << o.channels << "x" << o.size << "x" << o.size << ", "
            << cache.classes.size() << " classes, " << cache.skipped.size() << " skipped) into " << o.out << " ("
            << std::filesystem::file_size(o.out) / 1024 << " KiB)\n";
  return 0;
}

adcorre::cli::Registrar register_pack({"pack", "decode a dataset once into packed data for train/eval", [](CLI::App& app) {
  auto o = std::make_shared<PackCli>();
  app.add_option("--data", o->data, "dataset path")->required();
  app.add_option("--dataset", o->kind, "dataset kind (auto, folders, fer2013-csv, ferplus, rafdb, affectnet)")->capture_default_str();
  app.add_option("--split", o->split, "split where the format holds several (train, val, test)");
  app.add_option("--data-options", o->options, "reader options");
  app.add_option("--size", o->size, "side of the packed images (train/eval resize when the model wants another)")->capture_default_str();
  app.add_option("--channels", o->channels, "1 (gray) or 3 (colour)")->capture_default_str();
  app.add_option("-o,--out", o->out, "packed file to write (.pack)")->required();
  app.add_flag("--strict", o->strict, "an unreadable image is an error instead of being skipped");
  return [o] { return run_pack(*o); };
}});

}  // namespace
