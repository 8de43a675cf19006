#include "adcorre/serve/handler.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "adcorre/data/preprocess.h"
#include "adcorre/infer/batching_classifier.h"
#include "adcorre/infer/predictor.h"
#include "adcorre/serve/image_header.h"
#include "adcorre/serve/multipart.h"
#include "adcorre/serve/page.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/log.h"

namespace adcorre::serve {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const std::vector<std::string> kDetectors{"blazeface", "haar", "lbp", "dlib", "none"};
const char* const kFormats = "a JPEG, PNG, BMP, GIF, WebP, TIFF or PNM (PGM/PPM) image";

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

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
std::string percent_decode(const std::string& s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += plus_is_space && s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

// Never throws for content: invalid UTF-8 echoed from a request (a path, a
// query value) is replaced, not a reason to fail the answer.
HttpResponse json_response(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

const char* reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

}  // namespace

std::string HttpRequest::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return "";
}
const std::string* HttpRequest::param(const std::string& name) const {
  for (const auto& [k, v] : query)
    if (k == name) return &v;
  return nullptr;
}

void split_target(const std::string& target, std::string* path, std::vector<std::pair<std::string, std::string>>* query) {
  const size_t q = target.find('?');
  *path = percent_decode(target.substr(0, q), false);
  query->clear();
  if (q == std::string::npos) return;
  const std::string qs = target.substr(q + 1);
  size_t at = 0;
  while (at <= qs.size()) {
    size_t end = qs.find('&', at);
    if (end == std::string::npos) end = qs.size();
    const std::string item = qs.substr(at, end - at);
    if (!item.empty()) {
      const size_t eq = item.find('=');
      query->emplace_back(percent_decode(item.substr(0, eq), true), eq == std::string::npos ? "" : percent_decode(item.substr(eq + 1), true));
    }
    at = end + 1;
  }
}

std::string serialize(const HttpResponse& res, bool head_only) {
  std::string out = "HTTP/1.1 " + std::to_string(res.status) + " " + reason(res.status) + "\r\n";
  if (!res.content_type.empty()) out += "Content-Type: " + res.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(res.body.size()) + "\r\n";
  out += "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n";
  for (const auto& [k, v] : res.headers) out += k + ": " + v + "\r\n";
  if (res.close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head_only) out += res.body;
  return out;
}

Handler::Handler(std::shared_ptr<infer::Predictor> predictor, ServerOptions options)
    : predictor_(std::move(predictor)), opt_(std::move(options)) {
  check(predictor_ != nullptr, "serve: no predictor");
  batcher_ = std::make_unique<infer::BatchingClassifier>(*predictor_);
}

Handler::~Handler() = default;

HttpResponse Handler::error(int status, const std::string& message, bool close) {
  ++requests_;
  ++failed_;
  HttpResponse r = json_response(status, {{"error", message}, {"status", status}});
  r.close = close;
  return r;
}

HttpResponse Handler::check_head(const HttpRequest& head) const {
  // A compressed body could inflate far past max_body, so it is refused
  // unread, and the connection is closed after the answer.
  const std::string encoding = fs::lower(head.header("content-encoding"));
  if (!encoding.empty() && encoding != "identity") {
    HttpResponse r = json_response(415, {{"error", "compressed request bodies (Content-Encoding: " + encoding.substr(0, 40) +
                                                       ") are not accepted; send the image as is"},
                                         {"status", 415}});
    r.close = true;
    return r;
  }
  return HttpResponse{0};
}

bool Handler::needs_worker(const HttpRequest& req) const { return req.method == "POST" && req.path == "/v1/predict"; }

HttpResponse Handler::handle(const HttpRequest& req) {
  HttpResponse res;
  try {
    res = route(req);
  } catch (const HttpError& e) {
    res = json_response(e.status, {{"error", e.what()}, {"status", e.status}});
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));  // c10 errors carry a backtrace
    log::warn("serve: " + req.method.substr(0, 20) + " " + req.path.substr(0, 200) + " failed: " + what);
    res = json_response(500, {{"error", "internal error: " + what}, {"status", 500}});
  } catch (...) {
    res = json_response(500, {{"error", "internal error"}, {"status", 500}});
  }
  ++requests_;
  if (res.status >= 400) ++failed_;
  if (log::level() >= log::Level::verbose) {
    try {
      log::debug("serve: " + req.method.substr(0, 20) + " " + req.path.substr(0, 200) + " -> " + std::to_string(res.status));
    } catch (...) {
    }
  }
  return res;
}

HttpResponse Handler::route(const HttpRequest& req) {
  const Route* route = find_route(req.path);
  if (!route)
    throw HttpError(404, "no such path: " + req.path.substr(0, 200) + " (the service has GET /, POST /v1/predict, GET /v1/health, GET /v1/model)");
  if (req.method == "OPTIONS") {
    HttpResponse r;
    r.status = 204;
    r.headers.emplace_back("Allow", route->allow);
    return r;
  }
  if (!allows(*route, req.method)) {
    HttpResponse r = json_response(405, {{"error", "method " + req.method.substr(0, 20) + " is not allowed on " + req.path + " (allowed: " + route->allow + ")"},
                                         {"status", 405}});
    r.headers.emplace_back("Allow", route->allow);
    return r;
  }
  if (req.path == "/v1/predict") return predict(req);
  if (req.path == "/v1/health")
    return json_response(200, {{"status", "ok"},
                               {"version", ADCORRE_VERSION},
                               {"uptime_s", std::chrono::duration<double>(Clock::now() - started_).count()},
                               {"requests", requests_.load()},
                               {"failed_requests", failed_.load()},
                               {"predictions", predictions_.load()},
                               {"faces", faces_.load()},
                               {"batches", batcher_->stats().batches},
                               {"largest_batch", batcher_->stats().largest_batch}});
  if (req.path == "/v1/model") {
    const auto& cfg = predictor_->config();
    json config = cfg.to_json();
    // An imported Keras graph can be megabytes of JSON; the page needs none of it.
    if (config.contains("graph") && !config["graph"].is_null()) config["graph"] = "(omitted)";
    return json_response(200, {{"path", opt_.model_path},
                               {"class_names", cfg.class_names},
                               {"input", {{"size", cfg.input_size}, {"channels", cfg.in_channels}}},
                               {"provenance", cfg.provenance},
                               {"config", config},
                               {"detectors", kDetectors},
                               {"default_detector", predictor_->options().detector.kind},
                               {"limits",
                                {{"max_body", opt_.max_body},
                                 {"max_body_memory", opt_.max_body_memory},
                                 {"max_image_side", opt_.max_image_side},
                                 {"max_image_pixels", opt_.max_image_pixels}}}});
  }
  // "/" and "/index.html"
  HttpResponse r;
  r.content_type = "text/html; charset=utf-8";
  r.body = index_html();
  // The page may talk only to this server: no external assets, ever.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data: blob:; "
                         "media-src 'self' blob: mediastream:; connect-src 'self'");
  return r;
}

namespace {

// A whole number from the query string within [lo, hi]; `fallback` when absent.
long long query_int(const HttpRequest& req, const char* name, long long fallback, long long lo, long long hi) {
  const std::string* p = req.param(name);
  if (!p) return fallback;
  const std::string& v = *p;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno == ERANGE || x < lo || x > hi)
    throw HttpError(400, std::string("query parameter ") + name + "='" + v.substr(0, 40) + "' is not a whole number in [" + std::to_string(lo) +
                             ", " + std::to_string(hi) + "]");
  return x;
}

void check_dimensions(const ServerOptions& opt, long long w, long long h, const std::string& what) {
  if (w <= 0 || h <= 0) throw HttpError(400, what + " declares an empty picture (" + std::to_string(w) + "x" + std::to_string(h) + ")");
  if (w > opt.max_image_side || h > opt.max_image_side || w * h > opt.max_image_pixels)
    throw HttpError(413, what + " is " + std::to_string(w) + "x" + std::to_string(h) + " pixels; this service takes at most " +
                             std::to_string(opt.max_image_side) + " pixels a side and " + std::to_string(opt.max_image_pixels) + " pixels in all");
}

// The image bytes of a request: a multipart file field ("image" preferred,
// else the first field with a file name) when the body is multipart, else the
// raw body whatever its Content-Type says (curl --data-binary labels a photo
// application/x-www-form-urlencoded).
std::string image_bytes(const HttpRequest& req, std::string* what) {
  const std::string ct = req.header("content-type");
  if (fs::lower(ct).rfind("multipart/form-data", 0) == 0 && !read_image_header(req.body)) {
    std::vector<MultipartPart> parts;
    const std::string problem = parse_multipart(ct, req.body, &parts);
    if (!problem.empty()) throw HttpError(400, "the multipart body is malformed: " + problem);
    if (parts.empty()) throw HttpError(400, "the multipart body has no fields; send the image as the field 'image'");
    auto it = std::find_if(parts.begin(), parts.end(), [](const MultipartPart& p) { return p.name == "image"; });
    if (it == parts.end()) it = std::find_if(parts.begin(), parts.end(), [](const MultipartPart& p) { return p.has_filename; });
    if (it == parts.end()) throw HttpError(400, "the multipart body has no file field; send the image as the field 'image'");
    *what = "multipart field '" + it->name + "'";
    return std::move(it->content);
  }
  *what = "request body";
  return req.body;
}

}  // namespace

HttpResponse Handler::predict(const HttpRequest& req) {
  const auto t0 = Clock::now();
  std::string what;
  const std::string bytes = image_bytes(req, &what);
  if (bytes.empty()) throw HttpError(400, "the " + what + " is empty; send " + kFormats + " as the body or as the multipart field 'image'");

  infer::PredictOptions popt = predictor_->options();
  if (const std::string* kind = req.param("detector")) {
    if (std::find(kDetectors.begin(), kDetectors.end(), *kind) == kDetectors.end())
      throw HttpError(400, "query parameter detector='" + kind->substr(0, 40) + "' is not one of " + join(kDetectors, ", "));
    popt.detector.kind = *kind;
  }
  const int num_classes = predictor_->config().num_classes();
  popt.top_k = static_cast<int>(query_int(req, "top_k", popt.top_k, 0, num_classes));
  popt.detector.min_face = static_cast<int>(query_int(req, "min_face", popt.detector.min_face, 1, opt_.max_image_side));

  // Refuse oversized pictures from their header, before any pixel is allocated;
  // only formats whose header we can read are decoded at all.
  const auto header = read_image_header(bytes);
  if (!header)
    throw HttpError(400, "the " + what + " (" + std::to_string(bytes.size()) + " bytes) is not " + kFormats + ", or its header is truncated");
  check_dimensions(opt_, header->width, header->height, "the " + header->format + " image in the " + what);
  cv::Mat image;
  try {
    image = data::decode_image_bytes(bytes, 3, what);
  } catch (const Error& e) {
    throw HttpError(400, e.what());
  }
  check_dimensions(opt_, image.cols, image.rows, "the decoded image");

  std::vector<infer::Face> found;
  try {
    // Detection runs on this worker; the faces join the other requests'
    // faces in the next batch (one forward pass for all of them).
    const infer::DetectedFaces detected = predictor_->detect(image, popt);
    if (!detected.boxes.empty()) found = predictor_->faces_from(detected.boxes, batcher_->classify(detected.crops, popt.tta));
  } catch (const Error& e) {  // e.g. a detector this build lacks
    throw HttpError(400, std::string("cannot process the image: ") + e.what());
  }
  json faces = json::array();
  for (const auto& f : found) faces.push_back(infer::face_to_json(f, predictor_->config().class_names, popt.top_k));
  ++predictions_;
  faces_ += static_cast<long long>(found.size());
  return json_response(200, {{"image", {{"width", image.cols}, {"height", image.rows}}},
                             {"detector", popt.detector.kind},
                             {"faces", std::move(faces)},
                             {"elapsed_ms", std::chrono::duration<double, std::milli>(Clock::now() - t0).count()}});
}

}  // namespace adcorre::serve
