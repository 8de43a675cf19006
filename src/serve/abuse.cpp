#include "adcorre/serve/abuse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "adcorre/util/error.h"

namespace adcorre::serve {

using Clock = std::chrono::steady_clock;

nlohmann::json AbuseResult::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, k] : kinds) {
    nlohmann::json st = nlohmann::json::object();
    for (const auto& [code, n] : k.statuses) st[std::to_string(code)] = n;
    j[name] = {{"attempts", k.attempts}, {"statuses", st}, {"max_answer_s", k.max_answer_s}, {"bytes_sent", k.bytes_sent}};
  }
  return j;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

namespace {

// One raw connection to the service with a non-blocking check for its answer.
struct Conn {
  int fd = -1;
  std::string got;
  Conn(const std::string& host, int port) {
    const bool v6 = host.find(':') != std::string::npos;
    fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return;
    int rc = -1;
    if (v6) {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(static_cast<uint16_t>(port));
      inet_pton(AF_INET6, host.c_str(), &a.sin6_addr);
      rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &a.sin_addr);
      rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    if (rc != 0) {
      close(fd);
      fd = -1;
    }
  }
  ~Conn() {
    if (fd >= 0) close(fd);
  }
  // False once the server closed or answered (then `got` holds what came).
  bool open_after(int wait_ms) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, wait_ms) <= 0) return true;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    got.append(buf, static_cast<size_t>(n));
    return got.find("\r\n\r\n") == std::string::npos;
  }
  bool send_all(const std::string& s) {
    size_t at = 0;
    while (at < s.size()) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, 1000) <= 0) return false;
      const ssize_t n = send(fd, s.data() + at, s.size() - at, MSG_NOSIGNAL);
      if (n <= 0) return false;
      at += static_cast<size_t>(n);
    }
    return true;
  }
  int status() const {
    if (got.rfind("HTTP/1.", 0) != 0 || got.size() < 12) return 0;
    return std::atoi(got.c_str() + 9);
  }
};

}  // namespace

AbuseResult run_abuse(const AbuseOptions& o, const std::atomic<bool>& stop) {
  check(is_loopback(o.host), "serve-bench --abuse: only a loopback service may be attacked; '" + o.host + "' is not 127.x, ::1 or localhost");
  AbuseResult result;
  std::mutex mutex;
  auto record = [&](const std::string& kind, int status, double seconds, long long bytes) {
    std::lock_guard<std::mutex> lock(mutex);
    auto& k = result.kinds[kind];
    ++k.attempts;
    ++k.statuses[status];
    k.max_answer_s = std::max(k.max_answer_s, seconds);
    k.bytes_sent += bytes;
  };
  // Runs `attack` on fresh connections until stop; each returns bytes sent.
  auto loop = [&](const std::string& kind, const std::function<long long(Conn&)>& attack) {
    while (!stop) {
      const auto t0 = Clock::now();
      Conn c(o.host, o.port);
      if (c.fd < 0) {
        record(kind, -1, 0, 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      const long long sent = attack(c);
      // Wait for the answer (or the close), bounded.
      while (!stop && c.open_after(100) && std::chrono::duration<double>(Clock::now() - t0).count() < o.give_up_s) {
      }
      if (stop && c.status() == 0) return;  // cut off by the end of the run: not a result
      record(kind, c.status(), std::chrono::duration<double>(Clock::now() - t0).count(), sent);
    }
  };
  auto elapsed = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };

  std::vector<std::thread> threads;
  for (int i = 0; i < o.slow_clients; ++i)
    threads.emplace_back(loop, "slowloris", [&](Conn& c) {
      const std::string req = "POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + std::string(4000, 'a');
      long long sent = 0;
      const auto t0 = Clock::now();
      for (char ch : req) {
        if (stop || !c.send_all(std::string(1, ch))) break;
        ++sent;
        if (!c.open_after(1000) || elapsed(t0) > o.give_up_s) break;
      }
      return sent;
    });
  for (int i = 0; i < o.chunked_clients; ++i)
    threads.emplace_back(loop, "chunked", [&](Conn& c) {
      if (!c.send_all("POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n")) return 0LL;
      const std::string chunk = "100000\r\n" + std::string(0x100000, '\xAB') + "\r\n";
      long long sent = 0;
      while (!stop && static_cast<std::size_t>(sent) < o.chunked_bytes && c.open_after(0)) {
        if (!c.send_all(chunk)) break;
        sent += 0x100000;
      }
      if (static_cast<std::size_t>(sent) >= o.chunked_bytes) c.send_all("0\r\n\r\n");
      return sent;
    });
  for (int i = 0; i < o.oversized_clients; ++i)
    threads.emplace_back(loop, "oversized", [&](Conn& c) {
      c.send_all("POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000\r\n\r\n" + std::string(65536, 'x'));
      return 65536LL;
    });
  for (int i = 0; i < o.malformed_clients; ++i)
    threads.emplace_back(loop, "malformed", [&](Conn& c) {
      const std::string bad = "GARBAGE \x01\x02 NOT HTTP\r\n\r\n";
      c.send_all(bad);
      return static_cast<long long>(bad.size());
    });
  for (int i = 0; i < o.stalled_clients; ++i)
    threads.emplace_back(loop, "stalled", [&](Conn& c) {
      c.send_all("POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n0123456789");
      return 10LL;
    });
  for (auto& t : threads) t.join();
  return result;
}

}  // namespace adcorre::serve
