// adcorre serve-bench: a bounded load run against the HTTP service (by
// default an in-process one on an ephemeral loopback port), reporting
// throughput, latency percentiles and errors as JSON on stdout.
#include <fstream>
#include <iostream>
#include <regex>

#include <opencv2/core.hpp>

#include "adcorre/infer/predictor.h"
#include "adcorre/models/model_file.h"
#include "adcorre/serve/load.h"
#include "adcorre/serve/server.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/log.h"
#include "adcorre/util/runtime.h"
#include "cli.h"

namespace {

struct BenchOptions {
  std::string url, model, image, json_out, detector = "haar";
  int requests = 2000, connections = 32, server_threads = 0;
};

std::string default_image() {
  return std::string(ADCORRE_SOURCE_DIR) + "/examples/astronaut.jpg";
}

int run_bench(BenchOptions o) {
  using namespace adcorre;
  if (o.image.empty()) o.image = default_image();
  serve::LoadOptions lo;
  lo.body = fs::read_file(o.image);
  const std::string ext = fs::lower(o.image.substr(o.image.find_last_of('.') + 1));
  lo.content_type = ext == "png" ? "image/png" : ext == "bmp" ? "image/bmp" : ext == "webp" ? "image/webp" : "image/jpeg";
  lo.requests = o.requests;
  lo.connections = o.connections;
  lo.path = "/v1/predict?detector=" + o.detector;

  std::unique_ptr<serve::Server> server;
  if (o.url.empty()) {
    if (o.model.empty()) o.model = models::default_model_path();
    infer::PredictOptions popt;
    popt.detector.kind = o.detector;
    auto predictor = std::make_shared<infer::Predictor>(models::load_model(o.model, cli::globals().device), popt);
    predictor->classify({cv::Mat(64, 64, CV_8UC3, cv::Scalar::all(128))});
    serve::ServerOptions so;
    so.port = 0;
    // One worker per connection: httplib holds a worker for a keep-alive connection.
    so.threads = o.server_threads > 0 ? o.server_threads : o.connections;
    so.model_path = o.model;
    server = std::make_unique<serve::Server>(predictor, so);
    server->start();
    lo.port = server->port();
    o.url = server->url();
  } else {
    std::smatch m;
    const std::regex url_re(R"(^http://([^/:]+|\[[^\]]+\]):(\d+)/?$)");
    check(std::regex_match(o.url, m, url_re), "serve-bench: --url must look like http://HOST:PORT, got '" + o.url + "'");
    lo.host = m[1].str();
    if (lo.host.front() == '[') lo.host = lo.host.substr(1, lo.host.size() - 2);
    lo.port = std::stoi(m[2].str());
  }
  log::info("serve-bench: " + std::to_string(lo.requests) + " requests over " + std::to_string(lo.connections) +
            " connections to " + o.url + " with " + o.image + " (" + std::to_string(lo.body.size()) + " bytes)");

  auto result = serve::run_load(lo, [](const std::string& body) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    return !j.is_discarded() && j.contains("faces") && j["faces"].is_array();
  });
  const bool in_process = server != nullptr;
  if (server) server->stop();

  nlohmann::json out = result.to_json();
  out["url"] = o.url;
  out["image"] = o.image;
  out["image_bytes"] = lo.body.size();
  out["connections"] = lo.connections;
  out["detector"] = o.detector;
  out["in_process_server"] = in_process;
  if (in_process) {
    out["model"] = o.model;
    out["server_threads"] = o.server_threads > 0 ? o.server_threads : o.connections;
    out["torch_threads"] = runtime::threads();
  }
  out["cpu"] = runtime::cpu_model();
  std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  if (!o.json_out.empty()) fs::write_file_atomic(o.json_out, out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  char line[256];
  std::snprintf(line, sizeof line, "serve-bench: %.1f requests/s, p50 %.1f ms, p99 %.1f ms, %d errors of %d", result.requests_per_s,
                result.p50_ms, result.p99_ms, result.errors, result.requests);
  log::info(line);
  if (result.errors) log::warn("serve-bench: first error: " + result.first_error);
  return result.errors == 0 ? 0 : 1;
}

adcorre::cli::Registrar register_serve_bench({"serve-bench", "load-test the HTTP service: throughput, p50/p99 latency, errors (JSON on stdout)",
                             [](CLI::App& app) {
                               auto o = std::make_shared<BenchOptions>();
                               app.add_option("--url", o->url, "a running service (http://HOST:PORT); default: start one in-process");
                               app.add_option("--model", o->model, "model for the in-process service (default: the shipped model)");
                               app.add_option("--image", o->image, "image to post (default: examples/astronaut.jpg)");
                               app.add_option("--requests", o->requests, "requests in all")->capture_default_str();
                               app.add_option("--connections", o->connections, "concurrent keep-alive connections")->capture_default_str();
                               app.add_option("--detector", o->detector, "detector query parameter")->capture_default_str();
                               app.add_option("--server-threads", o->server_threads, "HTTP threads of the in-process service (default: --connections)");
                               app.add_option("--json", o->json_out, "also write the result to this file");
                               return [o] { return run_bench(*o); };
                             }});

}  // namespace
