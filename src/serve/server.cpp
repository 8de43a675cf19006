#include "adcorre/serve/server.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "adcorre/data/preprocess.h"
#include "adcorre/infer/predictor.h"
#include "adcorre/serve/image_header.h"
#include "adcorre/serve/page.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/log.h"

#ifdef ADCORRE_HAVE_HTTPLIB
#include <sys/socket.h>

#include <httplib.h>
#endif

namespace adcorre::serve {

// The Content-Length header as a number (0 when absent or not a number).
// Parsed here: httplib's typed getter changed between 0.11 (Debian 12:
// get_header_value<uint64_t>) and 0.18 (Debian 13: get_header_value_u64).
static uint64_t content_length(const httplib::Request& req) {
  return std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10);
}

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const std::vector<std::string> kDetectors{"haar", "lbp", "dlib", "none"};

// The routes and the methods each allows (HEAD comes with GET).
struct Route {
  const char* path;
  const char* allow;
};
constexpr Route kRoutes[] = {
    {"/", "GET, HEAD"},
    {"/index.html", "GET, HEAD"},
    {"/v1/predict", "POST, OPTIONS"},
    {"/v1/health", "GET, HEAD"},
    {"/v1/model", "GET, HEAD"},
};
const Route* find_route(const std::string& path) {
  for (const auto& r : kRoutes)
    if (path == r.path) return &r;
  return nullptr;
}
bool allows(const Route& r, const std::string& method) {
  const std::string allow = std::string(", ") + r.allow + ",";
  const std::string m = method == "HEAD" ? "GET" : method;
  return allow.find(" " + m + ",") != std::string::npos;
}

std::string not_found_message(const std::string& path) {
  return "no such path: " + path.substr(0, 200) + " (the service has GET /, POST /v1/predict, GET /v1/health, GET /v1/model)";
}
template <class Request>
std::string not_allowed_message(const Request& req, const Route& r) {
  return "method " + req.method.substr(0, 20) + " is not allowed on " + req.path + " (allowed: " + r.allow + ")";
}

// An answer other than 200, thrown inside a handler.
struct HttpError : std::runtime_error {
  int status;
  HttpError(int s, const std::string& message) : std::runtime_error(message), status(s) {}
};

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

// For errors httplib raises itself (its status texts are not exported by the split build).
std::string status_text(int status) {
  switch (status) {
    case 400: return "bad request (malformed HTTP)";
    case 404: return "not found";
    case 408: return "request timeout";
    case 413: return "payload too large";
    case 414: return "URI too long";
    case 416: return "range not satisfiable";
    case 417: return "expectation failed";
    case 431: return "request header fields too large";
    case 500: return "internal error";
    default: return "HTTP error " + std::to_string(status);
  }
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

struct Server::Impl {
  std::shared_ptr<infer::Predictor> predictor;
  ServerOptions opt;
  Clock::time_point started = Clock::now();
  std::atomic<long long> requests{0}, failed{0}, predictions{0}, faces{0};
  int bound_port = -1;
  std::mutex lifecycle;  // start() and stop() from different threads
  bool started_once = false;
#ifdef ADCORRE_HAVE_HTTPLIB
  httplib::Server http;
  std::thread listener;

  // Never throws for content: invalid UTF-8 echoed from a request (a path, a
  // query value) is replaced, not a reason to fail the answer.
  static void send_json(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  }
  static void send_error(httplib::Response& res, int status, const std::string& message) {
    send_json(res, status, {{"error", message}, {"status", status}});
  }

  // A whole number from the query string within [lo, hi]; `fallback` when absent.
  static long long query_int(const httplib::Request& req, const char* name, long long fallback, long long lo, long long hi) {
    if (!req.has_param(name)) return fallback;
    const std::string v = req.get_param_value(name);
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno == ERANGE || x < lo || x > hi)
      throw HttpError(400, std::string("query parameter ") + name + "='" + v.substr(0, 40) + "' is not a whole number in [" +
                               std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
  }

  void check_dimensions(long long w, long long h, const std::string& what) const {
    if (w <= 0 || h <= 0) throw HttpError(400, what + " declares an empty picture (" + std::to_string(w) + "x" + std::to_string(h) + ")");
    if (w > opt.max_image_side || h > opt.max_image_side || w * h > opt.max_image_pixels)
      throw HttpError(413, what + " is " + std::to_string(w) + "x" + std::to_string(h) + " pixels; this service takes at most " +
                               std::to_string(opt.max_image_side) + " pixels a side and " + std::to_string(opt.max_image_pixels) +
                               " pixels in all");
  }

  // The image bytes of a request: the raw body, or a multipart file field
  // ("image" preferred, else the first field that carries a file name).
  static const std::string& image_bytes(const httplib::Request& req, std::string* what) {
    if (!req.is_multipart_form_data()) {
      *what = "request body";
      return req.body;
    }
    if (req.files.empty()) throw HttpError(400, "the multipart body has no fields; send the image as the field 'image'");
    auto it = req.files.find("image");
    if (it == req.files.end())
      it = std::find_if(req.files.begin(), req.files.end(), [](const auto& f) { return !f.second.filename.empty(); });
    if (it == req.files.end())
      throw HttpError(400, "the multipart body has no file field; send the image as the field 'image'");
    *what = "multipart field '" + it->first + "'";
    return it->second.content;
  }

  void predict(const httplib::Request& req, httplib::Response& res) {
    const auto t0 = Clock::now();
    std::string what;
    const std::string& bytes = image_bytes(req, &what);
    if (bytes.empty())
      throw HttpError(400, "the " + what + " is empty; send a JPEG, PNG, BMP or WebP image as the body or as the multipart field 'image'");

    infer::PredictOptions popt = predictor->options();
    if (req.has_param("detector")) {
      const std::string kind = req.get_param_value("detector");
      if (std::find(kDetectors.begin(), kDetectors.end(), kind) == kDetectors.end())
        throw HttpError(400, "query parameter detector='" + kind.substr(0, 40) + "' is not one of " + join(kDetectors, ", "));
      popt.detector.kind = kind;
    }
    const int num_classes = predictor->config().num_classes();
    popt.top_k = static_cast<int>(query_int(req, "top_k", popt.top_k, 0, num_classes));
    popt.detector.min_face = static_cast<int>(query_int(req, "min_face", popt.detector.min_face, 1, opt.max_image_side));

    // Refuse oversized pictures from their header, before any pixel is allocated;
    // only formats whose header we can read are decoded at all.
    const auto header = read_image_header(bytes);
    if (!header)
      throw HttpError(400, "the " + what + " (" + std::to_string(bytes.size()) +
                               " bytes) is not a JPEG, PNG, BMP or WebP image, or its header is truncated");
    check_dimensions(header->width, header->height, "the " + header->format + " image in the " + what);
    cv::Mat image;
    try {
      image = data::decode_image_bytes(bytes, 3, what);
    } catch (const Error& e) {
      throw HttpError(400, e.what());
    }
    check_dimensions(image.cols, image.rows, "the decoded image");

    std::vector<infer::Face> found;
    try {
      found = predictor->predict(image, popt);
    } catch (const Error& e) {  // e.g. a detector this build lacks
      throw HttpError(400, std::string("cannot process the image: ") + e.what());
    }
    json faces = json::array();
    for (const auto& f : found) faces.push_back(infer::face_to_json(f, predictor->config().class_names, popt.top_k));
    ++predictions;
    this->faces += static_cast<long long>(found.size());
    send_json(res, 200,
              {{"image", {{"width", image.cols}, {"height", image.rows}}},
               {"detector", popt.detector.kind},
               {"faces", std::move(faces)},
               {"elapsed_ms", ms_since(t0)}});
  }

  json health() const {
    return {{"status", "ok"},
            {"version", ADCORRE_VERSION},
            {"uptime_s", std::chrono::duration<double>(Clock::now() - started).count()},
            {"requests", requests.load()},
            {"failed_requests", failed.load()},
            {"predictions", predictions.load()},
            {"faces", faces.load()}};
  }

  json model_info() const {
    const auto& cfg = predictor->config();
    json config = cfg.to_json();
    // An imported Keras graph can be megabytes of JSON; the page needs none of it.
    if (config.contains("graph") && !config["graph"].is_null()) config["graph"] = "(omitted)";
    return {{"path", opt.model_path},
            {"class_names", cfg.class_names},
            {"input", {{"size", cfg.input_size}, {"channels", cfg.in_channels}}},
            {"provenance", cfg.provenance},
            {"config", config},
            {"detectors", kDetectors},
            {"default_detector", predictor->options().detector.kind},
            {"limits",
             {{"max_body", opt.max_body},
              {"max_image_side", opt.max_image_side},
              {"max_image_pixels", opt.max_image_pixels}}}};
  }

  // Runs a handler body, turning HttpError into its JSON answer. Anything else
  // goes to the exception handler (500).
  template <class F>
  httplib::Server::Handler guarded(F f) {
    return [this, f](const httplib::Request& req, httplib::Response& res) {
      try {
        f(req, res);
      } catch (const HttpError& e) {
        send_error(res, e.status, e.what());
      }
    };
  }

  void install_routes() {
    http.set_payload_max_length(opt.max_body);
    http.set_read_timeout(opt.read_timeout_s, 0);
    http.set_write_timeout(opt.write_timeout_s, 0);
    http.set_keep_alive_timeout(opt.keep_alive_timeout_s);
    const int threads = std::max(1, opt.threads);
    http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    http.set_default_headers({{"X-Content-Type-Options", "nosniff"}, {"Cache-Control", "no-store"}});

    // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a
    // second server bind the same port and silently take half the requests.
    http.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });

    // Requests without a body to unknown paths or with the wrong method are
    // answered here, before routing. One that carries a body is left to httplib,
    // which reads (bounded by max_body) and discards the body, so that a
    // keep-alive connection stays in step; the error handler below then words
    // its 404 (or turns it into 405).
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      const bool has_body = content_length(req) > 0 || req.has_header("Transfer-Encoding");
      const Route* route = find_route(req.path);
      // A compressed body could inflate far past max_body while httplib decodes
      // it, so it is refused unread, and the connection is closed after the answer.
      const std::string encoding = fs::lower(req.get_header_value("Content-Encoding"));
      if (!encoding.empty() && encoding != "identity") {
        send_error(res, 415, "compressed request bodies (Content-Encoding: " + encoding.substr(0, 40) + ") are not accepted; send the image as is");
        res.set_header("Connection", "close");
        return httplib::Server::HandlerResponse::Handled;
      }
      if (has_body) return httplib::Server::HandlerResponse::Unhandled;
      if (!route) {
        send_error(res, 404, not_found_message(req.path));
        return httplib::Server::HandlerResponse::Handled;
      }
      if (req.method == "OPTIONS") {
        res.status = 204;
        res.set_header("Allow", route->allow);
        return httplib::Server::HandlerResponse::Handled;
      }
      if (!allows(*route, req.method)) {
        send_error(res, 405, not_allowed_message(req, *route));
        res.set_header("Allow", route->allow);
        return httplib::Server::HandlerResponse::Handled;
      }
      // httplib calls a POST without Content-Length malformed; say what is missing instead.
      if (req.method == "POST")
        send_error(res, 400, "the request body is empty; send a JPEG, PNG, BMP or WebP image as the body or as the multipart field 'image'");
      return req.method == "POST" ? httplib::Server::HandlerResponse::Handled : httplib::Server::HandlerResponse::Unhandled;
    });
    // curl and others ask before sending a large body: refuse it without reading it.
    http.set_expect_100_continue_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (content_length(req) > opt.max_body) {
        send_error(res, 413, "the request body (" + req.get_header_value("Content-Length") + " bytes) is larger than this service's limit of " +
                                 std::to_string(opt.max_body) + " bytes");
        res.set_header("Connection", "close");
        return 413;
      }
      return 100;
    });

    auto page = [](const httplib::Request&, httplib::Response& res) {
      res.set_content(index_html(), "text/html; charset=utf-8");
      // The page may talk only to this server: no external assets, ever.
      res.set_header("Content-Security-Policy",
                     "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data: blob:; "
                     "media-src 'self' blob: mediastream:; connect-src 'self'");
    };
    http.Get("/", page);
    http.Get("/index.html", page);
    http.Get("/v1/health", [this](const httplib::Request&, httplib::Response& res) { send_json(res, 200, health()); });
    http.Get("/v1/model", [this](const httplib::Request&, httplib::Response& res) { send_json(res, 200, model_info()); });
    http.Post("/v1/predict", guarded([this](const httplib::Request& req, httplib::Response& res) { predict(req, res); }));

    // httplib's own errors (413 for a body over max_body, 400 for a malformed
    // request, 414 for a long URI) come with an empty body: give them JSON.
    // httplib calls this (and the logger) outside its exception guard: they must not throw.
    http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Handled;
      try {
        if (res.status == 404) {  // no handler: an unknown path, or a known one with the wrong method
          if (const Route* route = find_route(req.path)) {
            send_error(res, 405, not_allowed_message(req, *route));
            res.set_header("Allow", route->allow);
          } else {
            send_error(res, 404, not_found_message(req.path));
          }
        } else if (res.status == 413) {
          send_error(res, 413, "the request body is larger than this service's limit of " + std::to_string(opt.max_body) + " bytes");
        } else {
          send_error(res, res.status, status_text(res.status));
        }
      } catch (...) {
        res.body = "{\"error\":\"error\",\"status\":" + std::to_string(res.status) + "}";
      }
      return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_exception_handler([this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown exception";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      what = what.substr(0, what.find('\n'));  // c10 errors carry a backtrace
      log::warn("serve: " + req.method + " " + req.path.substr(0, 200) + " failed: " + what);
      send_error(res, 500, "internal error: " + what);
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      ++requests;
      if (res.status >= 400) ++failed;
      if (log::level() >= log::Level::verbose) {
        try {
          log::debug("serve: " + req.remote_addr + " " + req.method + " " + req.path.substr(0, 200) + " -> " + std::to_string(res.status));
        } catch (...) {
        }
      }
    });
  }
#endif
};

Server::Server(std::shared_ptr<infer::Predictor> predictor, ServerOptions options) : impl_(std::make_unique<Impl>()) {
  check(predictor != nullptr, "serve: no predictor");
  check(options.port >= 0 && options.port <= 65535, "serve: --port " + std::to_string(options.port) + " is not in 0..65535");
  check(options.threads >= 1, "serve: --threads must be at least 1");
  check(options.max_body >= 1, "serve: --max-body must be at least 1 byte");
  check(options.max_image_side >= 1 && options.max_image_pixels >= 1, "serve: image limits must be positive");
  impl_->predictor = std::move(predictor);
  impl_->opt = std::move(options);
}

Server::~Server() { stop(); }

const ServerOptions& Server::options() const { return impl_->opt; }
int Server::port() const { return impl_->bound_port; }
std::string Server::url() const {
  const std::string& h = impl_->opt.host;
  const bool v6 = h.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + h + "]" : h) + ":" + std::to_string(impl_->bound_port) + "/";
}

#ifdef ADCORRE_HAVE_HTTPLIB

void Server::start() {
  std::lock_guard<std::mutex> lock(impl_->lifecycle);
  check(!impl_->started_once, "serve: a Server can be started once");
  impl_->started_once = true;
  impl_->install_routes();
  auto& o = impl_->opt;
  const int port = o.port == 0 ? impl_->http.bind_to_any_port(o.host) : (impl_->http.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port <= 0)
    throw Error("serve: cannot listen on " + o.host + ":" + std::to_string(o.port) +
                " (address in use, not a local address, or not permitted)");
  impl_->bound_port = port;
  impl_->listener = std::thread([this] { impl_->http.listen_after_bind(); });
  // listen_after_bind flags itself running on its own thread; wait for that so
  // that a stop() right after start() is never lost.
  for (int i = 0; i < 5000 && !impl_->http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void Server::stop() {
  std::lock_guard<std::mutex> lock(impl_->lifecycle);
  if (impl_->listener.joinable()) {
    impl_->http.stop();
    impl_->listener.join();
  }
}

bool Server::running() const { return impl_->http.is_running(); }

#else

void Server::start() { throw Error("serve: this adcorre was built without cpp-httplib (install libcpp-httplib-dev and rebuild)"); }
void Server::stop() {}
bool Server::running() const { return false; }

#endif

}  // namespace adcorre::serve
