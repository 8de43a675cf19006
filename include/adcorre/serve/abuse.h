// Hostile clients for `adcorre serve-bench --abuse`: while normal clients post
// photos (serve/load.h), these open loopback connections that trickle a
// request one byte a second (slowloris), stream a chunked body past the limit,
// declare a huge Content-Length, send malformed request lines, or stall in
// the middle of an upload, and record what the service answered.
//
// Requires: a service on a loopback address (127.0.0.0/8, ::1 or localhost);
// any other host throws adcorre::Error. Ensures: every client stops by itself
// once `stop` is set (within about a second) and each connection ends within
// its own bound; never throws for network failures (they are counted).
#pragma once
#include <atomic>
#include <cstddef>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace adcorre::serve {

struct AbuseOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  int slow_clients = 64;               // slowloris connections, each 1 byte/s
  int chunked_clients = 1;             // each streams chunked_bytes at full speed
  std::size_t chunked_bytes = 50u << 20;
  int oversized_clients = 1;           // Content-Length: 1000000000, then body bytes
  int malformed_clients = 1;           // a garbage request line, again and again
  int stalled_clients = 2;             // 10 of a declared 1000 bytes, then silence
  double give_up_s = 30;               // longest wait for one answer
};

struct AbuseKind {
  int attempts = 0;
  std::map<int, int> statuses;  // first status code answered -> count; 0: closed without an answer
  double max_answer_s = 0;      // longest time from connect to the answer (or close)
  long long bytes_sent = 0;
};

struct AbuseResult {
  std::map<std::string, AbuseKind> kinds;  // "slowloris", "chunked", "oversized", "malformed", "stalled"
  nlohmann::json to_json() const;
};

// Runs the clients until `stop` is set; returns what each kind got.
AbuseResult run_abuse(const AbuseOptions& options, const std::atomic<bool>& stop);

// True for 127.0.0.0/8, ::1 and localhost.
bool is_loopback(const std::string& host);

}  // namespace adcorre::serve
