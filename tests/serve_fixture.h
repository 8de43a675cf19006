// Shared by test-serve and test-serve-browser (header-only: each test
// executable compiles just its own test-*.cpp and test_util.cpp): a fer-tiny
// model in a temp folder, a Predictor on it, an in-process Server on an
// ephemeral loopback port, and the sample photo.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include "adcorre/infer/predictor.h"
#include "adcorre/models/model_file.h"
#include "adcorre/serve/server.h"
#include "test_util.h"

namespace adcorre::test {

struct ServeFixture {
  TempDir dir;
  std::string model_path;
  std::shared_ptr<infer::Predictor> predictor;
  std::unique_ptr<serve::Server> server;

  // Saves a fer-tiny model (fixed seed, random weights) and starts a server
  // with `options` on 127.0.0.1 and an ephemeral port.
  explicit ServeFixture(serve::ServerOptions options = {}) {
    torch::manual_seed(7);
    auto cfg = models::preset("fer-tiny");
    auto net = models::create_model(cfg);
    model_path = dir / "fer-tiny.pt";
    models::save_model(model_path, cfg, *net);
    predictor = std::make_shared<infer::Predictor>(models::load_model(model_path, "cpu"), infer::PredictOptions{});
    options.host = "127.0.0.1";
    options.port = 0;
    options.model_path = model_path;
    server = std::make_unique<serve::Server>(predictor, options);
    server->start();
  }
};

// examples/astronaut.jpg, or (until it is in the tree) skimage's astronaut.png
// re-encoded as JPEG into `dir`; "" when neither exists.
inline std::string sample_photo(const TempDir& dir) {
  const std::string shipped = std::string(ADCORRE_SOURCE_DIR) + "/examples/astronaut.jpg";
  if (std::filesystem::exists(shipped)) return shipped;
  const std::string skimage = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png";
  if (!std::filesystem::exists(skimage)) return "";
  const std::string out = dir / "astronaut.jpg";
  cv::imwrite(out, cv::imread(skimage), {cv::IMWRITE_JPEG_QUALITY, 90});
  return out;
}

}  // namespace adcorre::test
