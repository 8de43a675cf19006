// Server: adcorre's HTTP service (Boost.Beast/Asio, plain HTTP, one process).
//
//   POST /v1/predict   an image as the raw body, or as the multipart form field
//                      "image" (any file field is accepted when there is no
//                      "image") -> {"image":{"width","height"},"detector",
//                      "faces":[{"box":[x,y,w,h],"label","score","probs":{..}}],
//                      "elapsed_ms"}; the faces use infer::face_to_json, the
//                      schema `adcorre predict` writes. Query parameters:
//                      detector=haar|lbp|dlib|none, top_k=N (0: all classes),
//                      min_face=PIXELS.
//   GET  /v1/health    {"status":"ok", version, uptime, request counts}
//   GET  /v1/model     the model's path, config (class names, input, provenance)
//                      and the service's limits
//   GET  /             the web page (self-contained; see serve/page.h)
//
// Every error is JSON {"error": message, "status": code}: 400 for an empty,
// malformed or non-image body and for bad query parameters, 413 for a body over
// max_body or an image over the dimension limits, 404 for unknown paths, 405
// (with Allow) for a known path with the wrong method, 415 for compressed
// request bodies (refused so that a small gzip cannot inflate past max_body),
// 500 when inference itself fails. Bad input never stops the server.
//
// Design: one I/O thread handles every connection asynchronously, so an open
// connection costs a socket and a buffer, not a thread; a connection that
// idles past keep_alive_timeout_s between requests is closed, and one whose
// request (headers and body, chunked or not) is not in within read_timeout_s
// of its first byte gets 408. Only inference (POST /v1/predict) runs on the
// `threads` workers, through a queue of at most max_queue requests (503 when
// full); health, model, the page and every refusal are answered at once. The
// bodies held at once are bounded by max_body_memory (503 past it).
// Requests on one connection are answered in order (pipelining works).
//
// Requires: a Predictor whose predict() is thread-safe (infer::Predictor is).
// Ensures: start() returns once the socket is bound and accepting (port() is
// then the real port, also for port 0); stop() (and the destructor) stops
// accepting, finishes the requests in flight and joins every thread.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

namespace adcorre::infer { class Predictor; }

namespace adcorre::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                          // 0: an ephemeral port, see Server::port()
  int threads = 8;                          // inference worker threads
  int max_queue = 256;                      // predictions waiting for a worker; more get 503
  int max_connections = 1000;               // open connections; more are closed at once
  std::size_t max_body = 10u << 20;         // bytes; a larger request gets 413
  // Bytes of request bodies the service holds at once, over every connection
  // (being received, queued or in inference): a request whose body would go
  // past it gets 503 at once, so memory stays bounded by this, not by
  // max_connections x max_body. A chunked body counts as max_body.
  std::size_t max_body_memory = 512u << 20;
  long long max_image_side = 8192;          // width or height in pixels; larger gets 413
  long long max_image_pixels = 40'000'000;  // width * height; larger gets 413
  int read_timeout_s = 10;                  // a whole request must arrive within this (else 408)
  int write_timeout_s = 10;
  int keep_alive_timeout_s = 5;             // idle time allowed between requests
  std::string model_path;                   // shown by /v1/model
};

class Server {
 public:
  Server(std::shared_ptr<infer::Predictor> predictor, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port and serves on background threads. Throws adcorre::Error
  // when the address cannot be bound (naming it) or when adcorre was built
  // without Boost.Beast.
  void start();
  // Idempotent; safe to call from any thread except a request handler.
  void stop();
  bool running() const;

  int port() const;          // the bound port (valid after start())
  std::string url() const;   // "http://host:port/"
  const ServerOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace adcorre::serve
