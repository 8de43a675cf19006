// adcorre serve: the HTTP service and its web page (see serve/server.h).
// Stops cleanly on SIGINT / SIGTERM: the signal handler only writes a byte to
// a pipe; the main thread reads it and stops the server, so no thread is
// interrupted mid-request whichever thread the signal lands on.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>

#include <opencv2/core.hpp>

#include "adcorre/infer/predictor.h"
#include "adcorre/models/model_file.h"
#include "adcorre/serve/server.h"
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"
#include "cli.h"

namespace {

struct ServeOptions {
  std::string model;
  adcorre::serve::ServerOptions server;
  std::string detector = adcorre::infer::default_detector_kind();
  int min_face = 24;
};

int g_signal_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int sig) {
  const unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &b, 1);
}

// Blocks until SIGINT or SIGTERM arrives; returns the signal number.
int wait_for_stop_signal() {
  unsigned char b = 0;
  for (;;) {
    const ssize_t n = read(g_signal_pipe[0], &b, 1);
    if (n == 1) return b;
    if (n < 0 && errno != EINTR) return 0;
  }
}

void install_stop_signals() {
  adcorre::check(pipe(g_signal_pipe) == 0, "serve: cannot create the signal pipe");
  fcntl(g_signal_pipe[1], F_SETFL, O_NONBLOCK);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int run_serve(ServeOptions o) {
  using namespace adcorre;
  o.model = models::resolve_model_path(o.model);
  infer::PredictOptions popt;
  popt.detector.kind = o.detector;
  popt.detector.min_face = o.min_face;
  auto predictor = std::make_shared<infer::Predictor>(models::load_model_for_inference(o.model, cli::globals().device), popt);
  // One classification up front so the first request does not pay for
  // LibTorch's lazy initialisation.
  predictor->classify({cv::Mat(64, 64, CV_8UC3, cv::Scalar::all(128))});

  o.server.model_path = o.model;
  serve::Server server(predictor, o.server);
  install_stop_signals();
  server.start();
  log::info("serve: model " + o.model + ", " + std::to_string(o.server.threads) + " inference threads, max body " +
            std::to_string(o.server.max_body) + " bytes; Ctrl-C stops");
  std::cout << "adcorre serve: listening on " << server.url() << std::endl;
  const int sig = wait_for_stop_signal();
  log::info(std::string("serve: ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ", stopping");
  server.stop();
  log::info("serve: stopped");
  return 0;
}

adcorre::cli::Registrar register_serve({"serve", "the HTTP service: POST /v1/predict, GET /v1/health, GET /v1/model, and a web page at /",
                             [](CLI::App& app) {
                               auto o = std::make_shared<ServeOptions>();
                               auto& s = o->server;
                               app.add_option("--model", o->model, "model file (default: the shipped model)");
                               app.add_option("--host", s.host, "address to listen on")->capture_default_str();
                               app.add_option("--port", s.port, "port (0: any free port; the URL is printed)")->capture_default_str();
                               app.add_option("--threads", s.threads, "inference worker threads (LibTorch's own come from the global --threads before 'serve')")
                                   ->capture_default_str();
                               app.add_option("--max-body", s.max_body, "largest request body in bytes (larger: 413)")->capture_default_str();
                               app.add_option("--max-body-memory", s.max_body_memory,
                                              "bytes of request bodies held at once over all connections (more: 503)")
                                   ->capture_default_str();
                               app.add_option("--max-image-side", s.max_image_side, "largest image width or height in pixels")->capture_default_str();
                               app.add_option("--max-image-pixels", s.max_image_pixels, "largest image width * height")->capture_default_str();
                               app.add_option("--max-queue", s.max_queue, "predictions waiting for a worker (more: 503)")->capture_default_str();
                               app.add_option("--max-connections", s.max_connections, "open connections (more are closed at once)")->capture_default_str();
                               app.add_option("--read-timeout", s.read_timeout_s, "seconds a whole request may take to arrive (else 408)")->capture_default_str();
                               app.add_option("--keep-alive-timeout", s.keep_alive_timeout_s, "seconds a connection may idle between requests")->capture_default_str();
                               app.add_option("--write-timeout", s.write_timeout_s, "seconds a client may stall while receiving")->capture_default_str();
                               app.add_option("--detector", o->detector, "default face detector: blazeface | haar | lbp | dlib | none")->capture_default_str();
                               app.add_option("--min-face", o->min_face, "default smallest face in pixels")->capture_default_str();
                               return [o] { return run_serve(*o); };
                             }});

}  // namespace
