// The service's request handling, apart from any socket: the routes, the
// JSON answers and errors of serve/server.h, and the HTTP/1.1 wire format
// (Boost.Beast's parser with the service's limits). Server runs it on its
// connections; fuzz/fuzz_serve_http.cpp feeds it raw bytes directly.
//
// Requires: a Predictor whose predict() is thread-safe (infer::Predictor is).
// Ensures: handle() and answer_bytes() never throw; every answer other than
// 200/204 is JSON {"error": message, "status": code}.
#pragma once
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "adcorre/serve/server.h"

namespace adcorre::infer {
class Predictor;
class BatchingClassifier;
}  // namespace adcorre::infer

namespace adcorre::serve {

struct HttpRequest {
  std::string method;
  std::string target;  // as sent: path and query
  std::string path;    // percent-decoded, without the query
  std::vector<std::pair<std::string, std::string>> query;    // decoded, in order
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  // The first value of a header (name lower-case), "" when absent.
  std::string header(const std::string& name) const;
  const std::string* param(const std::string& name) const;  // nullptr when absent
};

struct HttpResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // the connection closes after this answer
};

// Splits "a/b?x=1&y=%20" into its decoded path and query parameters.
void split_target(const std::string& target, std::string* path, std::vector<std::pair<std::string, std::string>>* query);

// The wire bytes of a response: status line, headers (Content-Length always,
// Connection: close when `close`), and the body unless `head_only`.
std::string serialize(const HttpResponse& res, bool head_only);

class Handler {
 public:
  // Concurrent predictions' faces are classified in shared batches
  // (infer/batching_classifier.h); /v1/health counts the batches.
  Handler(std::shared_ptr<infer::Predictor> predictor, ServerOptions options);
  ~Handler();

  // A refusal due before the body is read (a compressed body: 415), else
  // status 0. Only the method, target and headers of `head` are looked at.
  HttpResponse check_head(const HttpRequest& head) const;
  // True for requests that run inference (they belong on a worker thread).
  bool needs_worker(const HttpRequest& req) const;
  // The answer to a whole request; counts it in /v1/health.
  HttpResponse handle(const HttpRequest& req);
  // A JSON error answer, counted as a failed request.
  HttpResponse error(int status, const std::string& message, bool close = false);

  const ServerOptions& options() const { return opt_; }

 private:
  HttpResponse route(const HttpRequest& req);
  HttpResponse predict(const HttpRequest& req);
  std::shared_ptr<infer::Predictor> predictor_;
  std::unique_ptr<infer::BatchingClassifier> batcher_;
  ServerOptions opt_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::atomic<long long> requests_{0}, failed_{0}, predictions_{0}, faces_{0};
};

// Reads `bytes` as the requests of one connection, exactly as Server does
// (same parser, limits and refusals; requests answered in order, inference
// run inline), and returns the bytes it would send back. Stops at the first
// answer that closes the connection; a request cut short at the end of
// `bytes` gets the 408 a stalled client would. For the fuzz target and tests.
std::string answer_bytes(Handler& handler, const std::string& bytes);

}  // namespace adcorre::serve
