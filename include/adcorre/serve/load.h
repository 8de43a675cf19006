// A bounded HTTP load run against a running adcorre service: `requests` POSTs
// of one body spread over `connections` keep-alive connections (one thread
// each), timing every request. For `adcorre serve-bench` and the tests.
//
// Requires: a server listening on host:port. Ensures: every request is either
// ok (status 200 and, when given, `validate(body)` true) or counted in
// `errors` with its cause in `first_error`; never throws for HTTP failures.
#pragma once
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace adcorre::serve {

struct LoadOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string path = "/v1/predict";  // may carry a query string
  std::string body;                  // the image bytes
  std::string content_type = "image/jpeg";
  int requests = 2000;
  int connections = 32;
  int timeout_s = 120;               // per request
};

struct LoadResult {
  int requests = 0, ok = 0, errors = 0;
  double seconds = 0, requests_per_s = 0;
  double mean_ms = 0, p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
  std::map<int, int> statuses;       // HTTP status -> count (-1: no response)
  std::string first_error;
  nlohmann::json to_json() const;
};

LoadResult run_load(const LoadOptions& options, const std::function<bool(const std::string& body)>& validate = {});

}  // namespace adcorre::serve
