// adcorre import-keras FILE --out MODEL: a Keras HDF5 model -> an adcorre model file.
#include <iostream>

#include "adcorre/keras/import.h"
#include "adcorre/models/model_file.h"
#include "adcorre/util/log.h"
#include "cli.h"

namespace {

struct ImportKerasOptions {
  std::string file, out, classes, preprocess, route = "auto";
  int input_size = 0;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

int run_import_keras(const ImportKerasOptions& o) {
  using namespace adcorre;
  keras::ImportOptions opts;
  opts.classes = split_commas(o.classes);
  opts.preprocess = o.preprocess;
  opts.mode = o.route;
  opts.input_size = o.input_size;
  auto r = keras::import_keras(o.file, opts);
  for (auto& n : r.notes) log::info("note: " + n);
  models::save_model(o.out, r.config, *r.net);
  const auto& c = r.config;
  std::cout << "imported " << o.file << " -> " << o.out << "\n"
            << "route " << r.mode << (r.mode == "xception" ? " (adcorre Xception + Ad-Corre head; fine-tunable)" : " (generic Keras graph; inference)") << "\n"
            << "input " << c.input_size << "x" << c.input_size << "x" << c.in_channels
            << (c.in_channels == 3 ? " " + c.color_order : std::string(" gray")) << ", mean";
  for (double m : c.mean) std::cout << " " << m;
  std::cout << ", std";
  for (double s : c.std) std::cout << " " << s;
  std::cout << "\nclasses";
  for (auto& n : c.class_names) std::cout << " " << n;
  std::cout << "\nparameters " << models::count_parameters(*r.net) << " (with BN statistics "
            << models::count_keras_style(*r.net) << ")\n";
  if (r.self_check_max_diff >= 0)
    std::cout << "self-check against the generic graph: max |dp| " << r.self_check_max_diff << "\n";
  return 0;
}

adcorre::cli::Registrar register_import_keras(
    {"import-keras", "import a Keras HDF5 model (.h5/.hdf5) as an adcorre model file", [](CLI::App& app) {
       auto o = std::make_shared<ImportKerasOptions>();
       app.add_option("file", o->file, "the Keras model file (model.save(...) HDF5)")->required();
       app.add_option("--out,-o", o->out, "the adcorre model file to write")->required();
       app.add_option("--classes", o->classes,
                      "class names in the model's output order, comma-separated (default for 7 outputs: FER-2013's order)");
       app.add_option("--preprocess", o->preprocess,
                      "input scaling: unit | tf | torch | caffe | mean=A/B/C,std=A/B/C, plus rgb|bgr "
                      "(default: unit for the Ad-Corre Xception, tf otherwise)");
       app.add_option("--as", o->route, "route: auto | xception | graph")->check(CLI::IsMember({"auto", "xception", "graph"}));
       app.add_option("--input-size", o->input_size, "input size for a model whose input size is not fixed");
       return [o] { return run_import_keras(*o); };
     }});

}  // namespace
