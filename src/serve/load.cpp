#include "adcorre/serve/load.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>
#include <vector>

#include "adcorre/util/error.h"

#ifdef ADCORRE_HAVE_HTTPLIB
#include <httplib.h>
#endif

namespace adcorre::serve {

nlohmann::json LoadResult::to_json() const {
  nlohmann::json st = nlohmann::json::object();
  for (auto& [code, n] : statuses) st[std::to_string(code)] = n;
  return {{"requests", requests}, {"ok", ok}, {"errors", errors}, {"seconds", seconds},
          {"requests_per_s", requests_per_s}, {"mean_ms", mean_ms}, {"p50_ms", p50_ms},
          {"p90_ms", p90_ms}, {"p99_ms", p99_ms}, {"max_ms", max_ms}, {"statuses", st},
          {"first_error", first_error}};
}

namespace {
// Nearest-rank percentile of sorted values.
double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}
}  // namespace

#ifdef ADCORRE_HAVE_HTTPLIB

LoadResult run_load(const LoadOptions& o, const std::function<bool(const std::string&)>& validate) {
  check(o.requests >= 1 && o.connections >= 1, "serve-bench: --requests and --connections must be at least 1");
  using Clock = std::chrono::steady_clock;
  std::atomic<int> next{0};
  std::mutex mutex;  // guards the result while threads report
  LoadResult r;
  r.requests = o.requests;
  std::vector<double> latencies;
  latencies.reserve(o.requests);

  auto worker = [&] {
    httplib::Client client(o.host, o.port);
    client.set_keep_alive(true);
    client.set_connection_timeout(o.timeout_s, 0);
    client.set_read_timeout(o.timeout_s, 0);
    client.set_write_timeout(o.timeout_s, 0);
    std::vector<double> mine;
    std::map<int, int> statuses;
    int ok = 0, errors = 0;
    std::string first_error;
    while (next.fetch_add(1) < o.requests) {
      const auto t0 = Clock::now();
      auto res = client.Post(o.path.c_str(), o.body, o.content_type.c_str());
      mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      std::string why;
      if (!res) why = "no response: " + httplib::to_string(res.error());
      else if (res->status != 200) why = "HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 200);
      else if (validate && !validate(res->body)) why = "unexpected answer: " + res->body.substr(0, 200);
      ++statuses[res ? res->status : -1];
      if (why.empty()) ++ok;
      else {
        ++errors;
        if (first_error.empty()) first_error = why;
      }
    }
    std::lock_guard<std::mutex> lock(mutex);
    latencies.insert(latencies.end(), mine.begin(), mine.end());
    for (auto& [k, v] : statuses) r.statuses[k] += v;
    r.ok += ok;
    r.errors += errors;
    if (r.first_error.empty()) r.first_error = first_error;
  };

  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < std::min(o.connections, o.requests); ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.requests_per_s = r.seconds > 0 ? r.requests / r.seconds : 0;
  std::sort(latencies.begin(), latencies.end());
  double sum = 0;
  for (double v : latencies) sum += v;
  r.mean_ms = latencies.empty() ? 0 : sum / latencies.size();
  r.p50_ms = percentile(latencies, 0.50);
  r.p90_ms = percentile(latencies, 0.90);
  r.p99_ms = percentile(latencies, 0.99);
  r.max_ms = latencies.empty() ? 0 : latencies.back();
  return r;
}

#else

LoadResult run_load(const LoadOptions&, const std::function<bool(const std::string&)>&) {
  throw Error("serve-bench: this adcorre was built without cpp-httplib");
}

#endif

}  // namespace adcorre::serve
