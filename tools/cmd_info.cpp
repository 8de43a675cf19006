// adcorre info: versions and capabilities; --arch / --model summaries.
#include <iostream>

#ifdef ADCORRE_HAVE_OPENCV
#include <opencv2/core/version.hpp>
#endif
#include <torch/torch.h>

#include "adcorre/models/fer_model.h"
#include "adcorre/models/model_file.h"
#include "adcorre/util/runtime.h"
#include "cli.h"

namespace {

struct InfoOptions {
  std::string arch, model;
  int width_k = -1, k = -1, d = -1, input_size = -1, channels = -1, middle = -1;
  double width = -1;
};

int run_info(const InfoOptions& o) {
  using namespace adcorre;
  if (!o.model.empty()) {
    const std::string path = models::resolve_model_path(o.model);  // a shipped name works too
    auto m = models::load_model(path, "cpu");
    std::cout << "model file " << path << "\n" << models::summary(m.config, *m.net);
    std::cout << "config " << m.config.to_json().dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  if (!o.arch.empty()) {
    auto cfg = models::preset(o.arch);
    if (o.k > 0) cfg.k = o.k;
    if (o.d > 0) cfg.d = o.d;
    if (o.width > 0) cfg.width = o.width;
    if (o.input_size > 0) cfg.input_size = o.input_size;
    if (o.channels > 0) {
      cfg.in_channels = o.channels;
      cfg.mean.assign(o.channels, cfg.mean[0]);
      cfg.std.assign(o.channels, cfg.std[0]);
    }
    if (o.middle >= 0) cfg.middle_blocks = o.middle;
    auto net = models::create_model(cfg);
    std::cout << models::summary(cfg, *net);
    return 0;
  }
  std::cout << "adcorre " << ADCORRE_VERSION << "\n"
            << "LibTorch " << runtime::torch_version() << "\n"
#ifdef ADCORRE_HAVE_OPENCV
            << "OpenCV " << CV_VERSION << "\n"
#else
            << "OpenCV no (ADCORRE_MINIMAL: packed data only)\n"
#endif
            << "threads " << runtime::threads() << "\n"
            << "CPU " << runtime::cpu_model() << "\n"
            << "BLAS " << runtime::blas_in_use() << "\n"
            << "oneDNN (MKLDNN) " << (runtime::mkldnn_available() ? "yes" : "no") << "\n"
            << "CUDA " << (runtime::cuda_available() ? "yes (" + std::to_string(torch::cuda::device_count()) + " devices)" : std::string("no")) << "\n";
#ifdef ADCORRE_HAVE_HDF5
  std::cout << "Keras import (HDF5) yes\n";
#else
  std::cout << "Keras import (HDF5) no\n";
#endif
#ifdef ADCORRE_HAVE_DLIB
  std::cout << "dlib yes\n";
#else
  std::cout << "dlib no\n";
#endif
#ifdef ADCORRE_HAVE_GLOO
  std::cout << "distributed (c10d Gloo) yes\n";
#else
  std::cout << "distributed (c10d Gloo) no\n";
#endif
  std::cout << "presets";
  for (auto& n : models::preset_names()) std::cout << " " << n;
  std::cout << "\n";
  return 0;
}

adcorre::cli::Registrar register_info({"info", "versions, capabilities, and model or architecture summaries",
                             [](CLI::App& app) {
                               auto o = std::make_shared<InfoOptions>();
                               app.add_option("--arch", o->arch, "print the summary of a preset (xception, fer-compact, fer-tiny)");
                               app.add_option("--model", o->model, "print the config and counts of a model file (or a shipped model's name)");
                               app.add_option("--k", o->k, "override k (with --arch)")->check(adcorre::cli::at_least(1));
                               app.add_option("--d", o->d, "override d (with --arch)")->check(adcorre::cli::at_least(1));
                               app.add_option("--width", o->width, "override the width multiplier (with --arch)")
                                   ->check(adcorre::cli::at_least(0.05));
                               app.add_option("--input-size", o->input_size, "override the input size (with --arch)")->check(adcorre::cli::at_least(1));
                               app.add_option("--channels", o->channels, "override the input channels 1|3 (with --arch)")
                                   ->check(CLI::IsMember({1, 3}));
                               app.add_option("--middle-blocks", o->middle, "override the middle blocks (with --arch)")->check(adcorre::cli::at_least(0));
                               return [o] { return run_info(*o); };
                             }});

}  // namespace
