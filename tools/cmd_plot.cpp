// adcorre plot RUN_DIR: redraws a run folder's pictures (curves.png from
// metrics.jsonl, confusion.png from the last epoch's validation confusion).
#include <iostream>

#include "adcorre/eval/plots.h"
#include "cli.h"

namespace {

adcorre::cli::Registrar register_plot({"plot", "redraw a run folder's training curves and confusion heatmap", [](CLI::App& app) {
  auto run_dir = std::make_shared<std::string>();
  app.add_option("run_dir", *run_dir, "run folder (holds metrics.jsonl)")->required();
  return [run_dir] {
    for (auto& f : adcorre::eval::draw_run_pictures(*run_dir)) std::cout << f << "\n";
    return 0;
  };
}});

}  // namespace
