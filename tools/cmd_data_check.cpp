// adcorre data-check PATH: counts per split and class, and the problems found.
#include <iostream>

#include "adcorre/data/data_check.h"
#include "cli.h"

namespace {

struct DataCheckArgs {
  std::string path, kind = "auto", split, options;
  bool json = false, fail = false;
};

int run_data_check(const DataCheckArgs& a) {
  using namespace adcorre;
  data::DataCheckOptions o;
  o.kind = a.kind;
  o.split = a.split;
  o.options = a.options;
  o.threads = cli::globals().threads;
  auto rep = data::check_dataset(a.path, o);
  if (a.json) std::cout << rep.to_json().dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  else std::cout << rep.to_table();
  return a.fail && !rep.clean() ? 3 : 0;
}

adcorre::cli::Registrar register_data_check({"data-check", "counts per split and class, and problems (unreadable, duplicates, odd sizes)",
                             [](CLI::App& app) {
                               auto a = std::make_shared<DataCheckArgs>();
                               app.add_option("path", a->path, "dataset folder or file")->required();
                               app.add_option("--dataset", a->kind,
                                              "auto | folders | fer2013-csv | ferplus | rafdb | affectnet")
                                   ->capture_default_str();
                               app.add_option("--split", a->split, "train | val | test (default: every split)");
                               app.add_option("--options", a->options,
                                              "format options, e.g. affectnet-classes=8,ferplus-vote=majority");
                               app.add_flag("--json", a->json, "print the report as JSON");
                               app.add_flag("--fail-on-problems", a->fail,
                                            "exit with 3 when images are unreadable or face boxes fall outside");
                               return [a] { return run_data_check(*a); };
                             }});

}  // namespace
