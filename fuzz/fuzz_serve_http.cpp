// libFuzzer target: raw bytes as the requests of one connection to the
// service (serve::answer_bytes: Beast's parser with the service's limits, the
// routes, multipart and query parsing, the image-header check, decoding and,
// for the rare input that decodes, inference on a fer-tiny model).
//
// Links against adcorre_lib (and LibTorch/OpenCV through it), compiled with
// -fsanitize=fuzzer(,address,undefined); no main(). The model is made once,
// in memory, with a fixed seed; nothing is written but one temp file.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include <torch/torch.h>
#include <unistd.h>

#include "adcorre/infer/predictor.h"
#include "adcorre/models/model_file.h"
#include "adcorre/serve/handler.h"

namespace {

adcorre::serve::Handler& handler() {
  static std::unique_ptr<adcorre::serve::Handler> h = [] {
    torch::manual_seed(1);
    auto cfg = adcorre::models::preset("fer-tiny");
    auto net = adcorre::models::create_model(cfg);
    const std::string path = "/tmp/fuzz_serve_http." + std::to_string(getpid()) + ".pt";
    adcorre::models::save_model(path, cfg, *net);
    auto model = adcorre::models::load_model(path, "cpu");
    std::remove(path.c_str());
    adcorre::infer::PredictOptions popt;
    popt.detector.kind = "none";  // the cascade files are not the code under test
    auto predictor = std::make_shared<adcorre::infer::Predictor>(std::move(model), popt);
    adcorre::serve::ServerOptions o;
    o.max_body = 1u << 20;
    o.max_image_side = 512;
    o.max_image_pixels = 512 * 512;
    return std::make_unique<adcorre::serve::Handler>(predictor, o);
  }();
  return *h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::string answer = adcorre::serve::answer_bytes(handler(), bytes);
  // Every answer is HTTP; an input with no complete request may get none.
  if (!answer.empty() && answer.rfind("HTTP/1.1 ", 0) != 0) std::abort();
  return 0;
}
