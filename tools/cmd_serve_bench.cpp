// adcorre serve-bench: a bounded load run against the HTTP service (by
// default an in-process one on an ephemeral loopback port), reporting
// throughput, latency percentiles and errors as JSON on stdout.
#include <atomic>
#include <fstream>
#include <iostream>
#include <regex>
#include <thread>

#include <opencv2/core.hpp>

#include "adcorre/infer/predictor.h"
#include "adcorre/models/model_file.h"
#include "adcorre/serve/abuse.h"
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
  bool abuse = false;
  int slow_clients = 64;
};

// This process's resident memory in bytes (VmRSS), 0 when unknown.
long long resident_bytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  long long kb = 0;
  while (in >> key) {
    if (key == "VmRSS:") {
      in >> kb;
      return kb * 1024;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

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
    o.model = models::resolve_model_path(o.model);
    infer::PredictOptions popt;
    popt.detector.kind = o.detector;
    auto predictor = std::make_shared<infer::Predictor>(models::load_model_for_inference(o.model, cli::globals().device), popt);
    predictor->classify({cv::Mat(64, 64, CV_8UC3, cv::Scalar::all(128))});
    serve::ServerOptions so;
    so.port = 0;
    if (o.server_threads > 0) so.threads = o.server_threads;  // else the service's default
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

  // --abuse: hostile loopback clients run for as long as the normal load does.
  std::atomic<bool> stop_abuse{false};
  serve::AbuseResult abuse;
  std::thread abusers;
  const long long rss_before = resident_bytes();
  if (o.abuse) {
    serve::AbuseOptions ao;
    ao.host = lo.host;
    ao.port = lo.port;
    ao.slow_clients = o.slow_clients;
    check(serve::is_loopback(ao.host), "serve-bench --abuse: only a loopback service may be attacked; '" + ao.host + "' is not");
    abusers = std::thread([&] { abuse = serve::run_abuse(ao, stop_abuse); });
    std::this_thread::sleep_for(std::chrono::seconds(2));  // let the slow clients connect first
  }
  auto result = serve::run_load(lo, [](const std::string& body) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    return !j.is_discarded() && j.contains("faces") && j["faces"].is_array();
  });
  const long long rss_peak_during = resident_bytes();
  stop_abuse = true;
  if (abusers.joinable()) abusers.join();
  const bool in_process = server != nullptr;
  const int server_threads = server ? server->options().threads : 0;
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
    out["server_threads"] = server_threads;
    out["rss_growth_bytes"] = rss_peak_during - rss_before;
    out["torch_threads"] = runtime::threads();
  }
  out["cpu"] = runtime::cpu_model();
  if (o.abuse) out["abuse"] = abuse.to_json();
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
                               app.add_option("--server-threads", o->server_threads, "inference threads of the in-process service (default: the service's)");
                               app.add_flag("--abuse", o->abuse, "also run hostile loopback clients (slowloris, chunked/oversized bodies, malformed, stalled) during the load");
                               app.add_option("--slow-clients", o->slow_clients, "slowloris connections with --abuse")->capture_default_str();
                               app.add_option("--json", o->json_out, "also write the result to this file");
                               return [o] { return run_bench(*o); };
                             }});

}  // namespace
