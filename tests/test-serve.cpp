// The HTTP service end to end on an ephemeral loopback port: the sample photo
// gives the same faces as the Predictor called directly; bad, empty, oversized
// and compressed bodies, unknown paths and wrong methods get the right codes
// with JSON errors and never stop the server; 32 concurrent clients get
// correct answers; `adcorre serve` starts, answers and stops on SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <fstream>
#include <thread>
#include <utility>

#include <gtest/gtest.h>
#include <httplib.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "adcorre/data/preprocess.h"
#include "adcorre/infer/face_detector.h"
#include "adcorre/serve/abuse.h"
#include "adcorre/serve/handler.h"
#include "adcorre/serve/image_header.h"
#include "adcorre/serve/load.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "serve_fixture.h"

using namespace adcorre;
using json = nlohmann::json;

namespace {

constexpr std::size_t kMaxBody = 1u << 20;  // small, so the oversized test is cheap

struct Serve : ::testing::Test {
  static std::unique_ptr<test::ServeFixture> fx;
  static std::string photo;  // bytes of the sample JPEG

  static void SetUpTestSuite() {
    serve::ServerOptions o;
    o.max_body = kMaxBody;
    o.max_image_side = 4096;
    o.read_timeout_s = 1;  // the stalled-client tests wait this long
    // The default inference threads (8): 32 concurrent keep-alive clients and
    // slow connections must not need a thread each.
    fx = std::make_unique<test::ServeFixture>(o);
    const std::string path = test::sample_photo(fx->dir);
    if (!path.empty()) photo = fs::read_file(path);
  }
  static void TearDownTestSuite() { fx.reset(); }

  void SetUp() override {
    if (photo.empty()) GTEST_SKIP() << "no sample photo (examples/astronaut.jpg or python3-skimage's astronaut.png)";
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", fx->server->port());
    c.set_read_timeout(30, 0);
    return c;
  }
  // The JSON error of a response, checking its shape.
  static std::string error_of(const httplib::Result& r, int status) {
    EXPECT_TRUE(r) << "no response";
    if (!r) return "";
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    auto j = json::parse(r->body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r->body;
    if (j.is_discarded()) return "";
    EXPECT_EQ(j.value("status", 0), status);
    return j.value("error", "");
  }
  void expect_alive() const {
    auto r = client().Get("/v1/health");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
};
std::unique_ptr<test::ServeFixture> Serve::fx;
std::string Serve::photo;

// True when `data` holds `n` complete HTTP responses (each with a Content-Length).
bool has_responses(const std::string& data, int n) {
  size_t at = 0;
  for (int i = 0; i < n; ++i) {
    const size_t end = data.find("\r\n\r\n", at);
    if (end == std::string::npos) return false;
    size_t length = 0;
    const size_t cl = data.find("Content-Length: ", at);
    if (cl != std::string::npos && cl < end) length = std::stoul(data.substr(cl + 16));
    at = end + 4 + length;
    if (at > data.size()) return false;
  }
  return true;
}

// One client connection speaking raw bytes, for requests httplib's client
// would not send.
struct RawConnection {
  int fd = -1;
  std::string pending;  // received, not yet returned
  RawConnection(int port, double wait_s) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      fd = -1;
      return;
    }
    timeval tv{static_cast<time_t>(wait_s), static_cast<suseconds_t>((wait_s - static_cast<time_t>(wait_s)) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawConnection() {
    if (fd >= 0) close(fd);
  }
  void send_all(const std::string& data) { (void)!send(fd, data.data(), data.size(), MSG_NOSIGNAL); }
  // The next whole response (headers + Content-Length bytes), or what came
  // before the server closed or `wait_s` of silence.
  std::string next_response() {
    char buf[4096];
    for (;;) {
      const size_t end = pending.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        const size_t cl = pending.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) length = std::stoul(pending.substr(cl + 16));
        if (pending.size() >= end + 4 + length) {
          std::string one = pending.substr(0, end + 4 + length);
          pending.erase(0, one.size());
          return one;
        }
      }
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return std::exchange(pending, "");
      pending.append(buf, static_cast<size_t>(n));
    }
  }
};

// Sends raw bytes on a fresh connection and returns the first response.
std::string raw_exchange(int port, const std::string& request, double wait_s = 5) {
  RawConnection c(port, wait_s);
  if (c.fd < 0) return "(connect failed)";
  c.send_all(request);
  return c.next_response();
}

}  // namespace

TEST(ImageHeader, ReadsSizesOfEncodedImages) {
  cv::Mat img(37, 53, CV_8UC3, cv::Scalar(10, 200, 30));
  for (const std::string ext : {".png", ".jpg", ".bmp", ".webp"}) {
    std::vector<uchar> buf;
    ASSERT_TRUE(cv::imencode(ext, img, buf)) << ext;
    auto h = serve::read_image_header(std::string(buf.begin(), buf.end()));
    ASSERT_TRUE(h) << ext;
    EXPECT_EQ(h->width, 53) << ext;
    EXPECT_EQ(h->height, 37) << ext;
  }
  std::vector<uchar> buf;
  cv::imencode(".webp", img, buf, {cv::IMWRITE_WEBP_QUALITY, 101});  // lossless (VP8L)
  auto h = serve::read_image_header(std::string(buf.begin(), buf.end()));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->width, 53);
  EXPECT_EQ(h->height, 37);
}

TEST(ImageHeader, ReadsTiffAndPnm) {
  cv::Mat img(37, 53, CV_8UC3, cv::Scalar(10, 200, 30)), gray(41, 29, CV_8UC1, cv::Scalar(9));
  const std::vector<std::pair<std::string, cv::Mat>> encodings{{".tiff", img}, {".pgm", gray}, {".ppm", img}};
  for (const auto& [ext, m] : encodings) {
    std::vector<uchar> buf;
    ASSERT_TRUE(cv::imencode(ext, m, buf)) << ext;
    auto h = serve::read_image_header(std::string(buf.begin(), buf.end()));
    ASSERT_TRUE(h) << ext;
    EXPECT_EQ(h->width, m.cols) << ext;
    EXPECT_EQ(h->height, m.rows) << ext;
  }
  auto h = serve::read_image_header("P2\n# made by hand\n640 480\n255\n");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->format, "pgm");
  EXPECT_EQ(h->width, 640);
  EXPECT_EQ(h->height, 480);
  // Big-endian TIFF with LONG sizes, written by hand: 70000 x 3 is read, not truncated to 16 bits.
  std::string mm("MM\0*\0\0\0\x08\0\x02", 10);
  mm += std::string("\x01\x00\0\x04\0\0\0\x01\0\x01\x11\x70", 12);  // 256 ImageWidth LONG 70000
  mm += std::string("\x01\x01\0\x03\0\0\0\x01\0\x03\0\0", 12);      // 257 ImageLength SHORT 3
  h = serve::read_image_header(mm);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->width, 70000);
  EXPECT_EQ(h->height, 3);
  // Every prefix of a real TIFF is safe to read.
  std::vector<uchar> buf;
  cv::imencode(".tiff", img, buf);
  const std::string tif(buf.begin(), buf.end());
  for (size_t n = 0; n <= std::min<size_t>(tif.size(), 400); ++n) {
    auto p = serve::read_image_header(tif.substr(0, n));
    if (p) EXPECT_EQ(p->width, 53);
  }
}

TEST(ImageHeader, RefusesTextTruncationAndUnknownFormats) {
  EXPECT_FALSE(serve::read_image_header(""));
  EXPECT_FALSE(serve::read_image_header("hello, this is not an image"));
  EXPECT_FALSE(serve::read_image_header("\x89PNG\r\n\x1a\n"));   // signature only
  EXPECT_FALSE(serve::read_image_header("\xFF\xD8\xFF\xE0\x00"));  // JPEG cut inside its first segment
  EXPECT_FALSE(serve::read_image_header("P5\n# only a comment"));
  EXPECT_FALSE(serve::read_image_header(std::string("II*\0\xFF\xFF\xFF\x7F", 8)));  // IFD offset past the end
  // A BMP with a negative width (what fuzz_image_header found: the product
  // with the height was negative and passed the pixel caps).
  EXPECT_FALSE(serve::read_image_header("BM" + std::string(24, '\xEC')));
  // A top-down BMP (negative height) is real: its size is positive.
  std::string top_down = "BM" + std::string(12, '\0') + std::string("\x28\0\0\0\x10\0\0\0\xF0\xFF\xFF\xFF", 12);
  auto td = serve::read_image_header(top_down);
  ASSERT_TRUE(td);
  EXPECT_EQ(td->width, 16);
  EXPECT_EQ(td->height, 16);
  cv::Mat img(8, 8, CV_8UC1, cv::Scalar(1));
  std::vector<uchar> buf;
  // Every prefix of a real JPEG is safe to read (no overrun), known or not.
  cv::imencode(".jpg", img, buf);
  std::string jpg(buf.begin(), buf.end());
  for (size_t n = 0; n <= jpg.size(); ++n) {
    auto h = serve::read_image_header(jpg.substr(0, n));
    if (h) EXPECT_EQ(h->width, 8);
  }
}

TEST_F(Serve, HealthModelAndPage) {
  auto c = client();
  auto h = c.Get("/v1/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  const json hj = json::parse(h->body);
  EXPECT_EQ(hj["status"], "ok");
  // Concurrent predictions share forward passes: never more passes than predictions.
  ASSERT_TRUE(hj.contains("batches") && hj.contains("largest_batch")) << h->body;
  EXPECT_LE(hj["batches"].get<long long>(), hj["predictions"].get<long long>());

  auto m = c.Get("/v1/model");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->status, 200);
  auto mj = json::parse(m->body);
  EXPECT_EQ(mj["class_names"].get<std::vector<std::string>>(), fx->predictor->config().class_names);
  EXPECT_EQ(mj["path"], fx->model_path);
  EXPECT_EQ(mj["config"]["preset"], "fer-tiny");
  EXPECT_EQ(mj["limits"]["max_body"], kMaxBody);

  auto p = c.Get("/");
  ASSERT_TRUE(p);
  ASSERT_EQ(p->status, 200);
  EXPECT_EQ(p->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(p->get_header_value("Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  EXPECT_NE(p->body.find("<canvas id=\"view\""), std::string::npos);
  EXPECT_NE(p->body.find("getUserMedia"), std::string::npos);
  EXPECT_NE(p->body.find("/v1/predict"), std::string::npos);
  // Self-contained: nothing loaded from elsewhere.
  for (const char* external : {"src=\"http", "href=\"http", "@import", "url(http", "src=\"//", "href=\"//"})
    EXPECT_EQ(p->body.find(external), std::string::npos) << external;
}

TEST_F(Serve, PredictRawBodyMatchesThePredictor) {
  auto r = client().Post("/v1/predict", photo, "image/jpeg");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  auto j = json::parse(r->body);
  EXPECT_EQ(j["image"]["width"], 512);
  EXPECT_EQ(j["image"]["height"], 512);
  EXPECT_EQ(j["detector"], infer::default_detector_kind());  // the service default is predict's
  ASSERT_GE(j["faces"].size(), 1u) << r->body;

  // The astronaut's face: the largest box, near the top middle of the picture.
  const auto& names = fx->predictor->config().class_names;
  auto box = j["faces"][0]["box"].get<std::vector<int>>();
  ASSERT_EQ(box.size(), 4u);
  const double cx = box[0] + box[2] / 2.0, cy = box[1] + box[3] / 2.0;
  EXPECT_GT(cx, 140);
  EXPECT_LT(cx, 330);
  EXPECT_GT(cy, 40);
  EXPECT_LT(cy, 260);
  for (const auto& f : j["faces"]) {
    ASSERT_EQ(f["probs"].size(), names.size());
    double sum = 0, best = -1;
    std::string best_name;
    for (const auto& n : names) {
      const double p = f["probs"].at(n).get<double>();
      sum += p;
      if (p > best) best = p, best_name = n;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
    EXPECT_EQ(f["label"], best_name);
    EXPECT_NEAR(f["score"].get<double>(), best, 1e-6);
  }

  // Exactly what the library says for the same picture.
  auto direct = fx->predictor->predict(data::decode_image_bytes(photo, 3));
  ASSERT_EQ(direct.size(), j["faces"].size());
  for (size_t i = 0; i < direct.size(); ++i) {
    auto want = infer::face_to_json(direct[i], names);
    EXPECT_EQ(j["faces"][i]["box"], want["box"]);
    EXPECT_EQ(j["faces"][i]["label"], want["label"]);
    for (const auto& n : names) EXPECT_NEAR(j["faces"][i]["probs"][n].get<double>(), want["probs"][n].get<double>(), 1e-6);
  }
}

TEST_F(Serve, PredictMultipart) {
  auto c = client();
  auto raw = json::parse(c.Post("/v1/predict", photo, "image/jpeg")->body);
  httplib::MultipartFormDataItems items{{"note", "hello", "", ""}, {"image", photo, "astronaut.jpg", "image/jpeg"}};
  auto r = c.Post("/v1/predict", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["faces"], raw["faces"]);

  // Any file field will do when none is called "image".
  httplib::MultipartFormDataItems other{{"photo", photo, "me.jpg", "image/jpeg"}};
  r = c.Post("/v1/predict", other);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;

  httplib::MultipartFormDataItems no_file{{"note", "hello", "", ""}};
  EXPECT_NE(error_of(c.Post("/v1/predict", no_file), 400).find("'image'"), std::string::npos);
  httplib::MultipartFormDataItems empty_file{{"image", "", "empty.jpg", "image/jpeg"}};
  EXPECT_NE(error_of(c.Post("/v1/predict", empty_file), 400).find("empty"), std::string::npos);
}

TEST_F(Serve, QueryOptions) {
  auto c = client();
  auto r = c.Post("/v1/predict?top_k=2", photo, "image/jpeg");
  ASSERT_EQ(r->status, 200) << r->body;
  // (The parsed body must outlive the loop: a range over a temporary's member
  // dangles, which ASan caught here.)
  const json top2 = json::parse(r->body);
  ASSERT_FALSE(top2.at("faces").empty());
  for (const auto& f : top2.at("faces")) EXPECT_EQ(f.at("probs").size(), 2u);

  r = c.Post("/v1/predict?detector=none", photo, "image/jpeg");
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  EXPECT_EQ(j["detector"], "none");
  ASSERT_EQ(j["faces"].size(), 1u);
  EXPECT_EQ(j["faces"][0]["box"], json({0, 0, 512, 512}));

  // Every detector of the build can be asked for, the default included.
  for (const auto& kind : infer::detector_kinds()) {
    r = c.Post("/v1/predict?detector=" + kind, photo, "image/jpeg");
    ASSERT_EQ(r->status, 200) << kind << ": " << r->body;
    EXPECT_EQ(json::parse(r->body)["detector"], kind);
  }
  EXPECT_NE(error_of(c.Post("/v1/predict?detector=yolo", photo, "image/jpeg"), 400).find("detector"), std::string::npos);
  EXPECT_NE(error_of(c.Post("/v1/predict?top_k=two", photo, "image/jpeg"), 400).find("top_k"), std::string::npos);
  EXPECT_NE(error_of(c.Post("/v1/predict?top_k=99", photo, "image/jpeg"), 400).find("top_k"), std::string::npos);
  EXPECT_NE(error_of(c.Post("/v1/predict?min_face=-3", photo, "image/jpeg"), 400).find("min_face"), std::string::npos);
}

TEST_F(Serve, BadBodiesGet400AndTheServerLives) {
  auto c = client();
  EXPECT_NE(error_of(c.Post("/v1/predict", "", "image/jpeg"), 400).find("empty"), std::string::npos);
  EXPECT_NE(error_of(c.Post("/v1/predict", "this is not a picture", "text/plain"), 400).find("not a JPEG"), std::string::npos);
  std::string noise(5000, '\0');
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>((i * 7919 + 13) & 0xFF);
  error_of(c.Post("/v1/predict", noise, "application/octet-stream"), 400);

  // A PNG whose header is fine but whose pixel data is corrupt.
  cv::Mat img(64, 64, CV_8UC3, cv::Scalar(40, 90, 160));
  std::vector<uchar> buf;
  cv::imencode(".png", img, buf);
  std::string png(buf.begin(), buf.end());
  for (size_t i = 41; i < png.size() - 12; ++i) png[i] = static_cast<char>(png[i] ^ 0x5A);
  EXPECT_NE(error_of(c.Post("/v1/predict", png, "image/png"), 400).find("decode"), std::string::npos);

  // A header claiming a zero-sized picture.
  std::string zero = png.substr(0, 33);
  zero[16] = zero[17] = zero[18] = zero[19] = 0;
  error_of(c.Post("/v1/predict", zero, "image/png"), 400);
  expect_alive();
}

TEST_F(Serve, OversizedBodiesAndImagesGet413) {
  auto c = client();
  const std::string big(kMaxBody + 1, 'x');
  EXPECT_NE(error_of(c.Post("/v1/predict", big, "image/jpeg"), 413).find("limit"), std::string::npos);

  // A small PNG that claims 60000 x 60000 pixels is refused from its header.
  cv::Mat img(16, 16, CV_8UC3, cv::Scalar(1, 2, 3));
  std::vector<uchar> buf;
  cv::imencode(".png", img, buf);
  std::string huge(buf.begin(), buf.end());
  const uint32_t side = htonl(60000);
  std::memcpy(&huge[16], &side, 4);
  std::memcpy(&huge[20], &side, 4);
  EXPECT_NE(error_of(c.Post("/v1/predict", huge, "image/png"), 413).find("60000x60000"), std::string::npos);

  // A client that asks first (Expect: 100-continue) is refused before sending the body.
  const std::string ask = "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nConnection: close\r\nContent-Length: " +
                          std::to_string(50u << 20) + "\r\nExpect: 100-continue\r\n\r\n";
  const std::string answer = raw_exchange(fx->server->port(), ask);
  EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer;
  EXPECT_NE(answer.find("\"status\":413"), std::string::npos) << answer;
  expect_alive();
}

TEST_F(Serve, UnknownPathsAndWrongMethods) {
  auto c = client();
  EXPECT_NE(error_of(c.Get("/nope"), 404).find("/nope"), std::string::npos);
  error_of(c.Post("/v1/nope", photo, "image/jpeg"), 404);
  error_of(c.Get("/v1/predict/extra"), 404);

  auto r = c.Get("/v1/predict");
  EXPECT_NE(error_of(r, 405).find("GET"), std::string::npos);
  EXPECT_EQ(r->get_header_value("Allow"), "POST, OPTIONS");
  error_of(c.Post("/v1/health", "x", "text/plain"), 405);
  error_of(c.Delete("/"), 405);
  error_of(c.Put("/v1/model", photo, "image/jpeg"), 405);
  r = c.Options("/v1/predict");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(r->get_header_value("Allow"), "POST, OPTIONS");
  expect_alive();
}

TEST_F(Serve, HostileRequestsNeverStopTheServer) {
  const int port = fx->server->port();
  // Not HTTP at all.
  EXPECT_EQ(raw_exchange(port, "GARBAGE\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  // A very long path.
  const std::string long_path = "GET /" + std::string(8000, 'a') + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::string a = raw_exchange(port, long_path);
  EXPECT_TRUE(a.rfind("HTTP/1.1 404", 0) == 0 || a.rfind("HTTP/1.1 414", 0) == 0) << a.substr(0, 100);
  // Bytes that are not UTF-8, echoed in the error message, still give a JSON 404 / 400.
  std::string bad_utf8 = raw_exchange(port, "GET /%FF%FEx HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(bad_utf8.rfind("HTTP/1.1 404", 0), 0u) << bad_utf8;
  EXPECT_NE(bad_utf8.find("\"status\":404"), std::string::npos) << bad_utf8;
  auto r = client().Post("/v1/predict?detector=%FF", photo, "image/jpeg");
  EXPECT_NE(error_of(r, 400).find("detector"), std::string::npos);
  // A compressed body is refused (it could inflate past max_body).
  const std::string gz = "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nabcd";
  EXPECT_EQ(raw_exchange(port, gz).rfind("HTTP/1.1 415", 0), 0u);
  // A body shorter than its Content-Length, then silence: 408 after the read timeout (1 s here).
  const auto t0 = std::chrono::steady_clock::now();
  const std::string stalled = raw_exchange(port, "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc", 10);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(stalled.rfind("HTTP/1.1 408", 0), 0u) << stalled;
  EXPECT_NE(stalled.find("\"status\":408"), std::string::npos) << stalled;
  EXPECT_GE(waited, 0.9);
  EXPECT_LT(waited, 3) << stalled;
  // Malformed requests and a Content-Length over the limit are refused at once, not after a timeout.
  for (const std::string bad : {std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/9\r\n\r\n"),
                                std::string("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\nab")}) {
    const auto t1 = std::chrono::steady_clock::now();
    const std::string a = raw_exchange(port, bad, 10);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count(), 0.9) << bad;
    EXPECT_TRUE(a.rfind("HTTP/1.1 400", 0) == 0 || a.rfind("HTTP/1.1 413", 0) == 0) << bad << " -> " << a;
  }
  // Bodies sent to an unknown path or with the wrong method are read and dropped,
  // so the next request on the same keep-alive connection is understood.
  // (httplib does not take pipelined requests, so the second is sent after the first answer.)
  for (const std::string first : {"POST /nope", "PUT /v1/predict", "POST /v1/health"}) {
    RawConnection c(port, 5);
    c.send_all(first + " HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world");
    const std::string a1 = c.next_response();
    EXPECT_EQ(a1.rfind(first == "POST /nope" ? "HTTP/1.1 404" : "HTTP/1.1 405", 0), 0u) << a1;
    c.send_all("GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const std::string a2 = c.next_response();
    EXPECT_EQ(a2.rfind("HTTP/1.1 200", 0), 0u) << first << ": " << a2;
  }
  expect_alive();
}

// A chunked body is counted as it arrives: past max_body it is refused with
// 413 and the connection is closed, the rest never buffered.
TEST_F(Serve, ChunkedBodyOverTheLimitGets413AndCloses) {
  RawConnection c(fx->server->port(), 10);
  ASSERT_GE(c.fd, 0);
  c.send_all("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n");
  const std::string chunk = "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
  for (size_t sent = 0; sent < 3 * kMaxBody; sent += 0x10000) c.send_all(chunk);  // 3x the limit; later sends may fail
  const std::string a = c.next_response();
  EXPECT_EQ(a.rfind("HTTP/1.1 413", 0), 0u) << a.substr(0, 200);
  EXPECT_NE(a.find("\"status\":413"), std::string::npos) << a;
  EXPECT_NE(a.find("Connection: close"), std::string::npos) << a;
  // Closed: after draining what was in flight the server sends nothing more and ends the stream.
  char buf[65536];
  ssize_t n;
  while ((n = recv(c.fd, buf, sizeof buf, 0)) > 0) {
  }
  EXPECT_EQ(n, 0) << "the connection was not closed (recv timed out)";
  // A chunked body within the limit is a normal upload.
  RawConnection ok(fx->server->port(), 30);
  std::string req = "POST /v1/predict?detector=none HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  for (size_t at = 0; at < photo.size(); at += 10000) {
    const std::string part = photo.substr(at, 10000);
    char hex[16];
    std::snprintf(hex, sizeof hex, "%zx\r\n", part.size());
    req += hex + part + "\r\n";
  }
  ok.send_all(req + "0\r\n\r\n");
  const std::string good = ok.next_response();
  EXPECT_EQ(good.rfind("HTTP/1.1 200", 0), 0u) << good.substr(0, 300);
  expect_alive();
}

// Slowloris: more connections than inference threads trickle a request one
// byte at a time; each gets 408 when its deadline (1 s here) passes, and
// meanwhile a normal client is served at once.
TEST_F(Serve, SlowClientsGet408WhileOthersAreServed) {
  const int port = fx->server->port();
  constexpr int kSlow = 16;  // twice the default inference threads
  std::vector<std::string> answers(kSlow);
  std::vector<double> took(kSlow);
  std::vector<std::thread> slow;
  for (int i = 0; i < kSlow; ++i)
    slow.emplace_back([&, i] {
      const auto t0 = std::chrono::steady_clock::now();
      RawConnection c(port, 10);
      const std::string req = "POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(100, 'a');
      for (size_t b = 0; b < req.size(); ++b) {
        c.send_all(req.substr(b, 1));
        pollfd p{c.fd, POLLIN, 0};
        if (poll(&p, 1, 200) > 0) break;  // answered
      }
      answers[i] = c.next_response();
      took[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = client().Post("/v1/predict?detector=none", photo, "image/jpeg");
  const double normal = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(normal, 0.9) << "a normal client waited for the slow ones";
  for (auto& t : slow) t.join();
  for (int i = 0; i < kSlow; ++i) {
    EXPECT_EQ(answers[i].rfind("HTTP/1.1 408", 0), 0u) << i << ": " << answers[i];
    EXPECT_LT(took[i], 3.5) << i;
  }
}

// curl --data-binary @photo.jpg labels the photo application/x-www-form-urlencoded:
// the image bytes decide, not the label.
TEST_F(Serve, UrlencodedLabelledPhotoIsAccepted) {
  auto want = client().Post("/v1/predict", photo, "image/jpeg");
  ASSERT_EQ(want->status, 200);
  ASSERT_GT(photo.size(), 8192u);
  auto r = client().Post("/v1/predict", photo, "application/x-www-form-urlencoded");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["faces"], json::parse(want->body)["faces"]);
  // Labelled multipart but sent raw: still the photo.
  r = client().Post("/v1/predict", photo, "multipart/form-data; boundary=xyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(Serve, TiffAndPgmPhotosAreAccepted) {
  const cv::Mat img = data::decode_image_bytes(photo, 3);
  cv::Mat gray;
  cv::cvtColor(img, gray, cv::COLOR_BGR2GRAY);
  const std::vector<std::pair<std::string, cv::Mat>> encodings{{".tiff", img}, {".pgm", gray}, {".ppm", img}};
  for (const auto& [ext, m] : encodings) {
    std::vector<uchar> buf;
    ASSERT_TRUE(cv::imencode(ext, m, buf)) << ext;
    auto r = client().Post("/v1/predict?detector=none", std::string(buf.begin(), buf.end()), "application/octet-stream");
    ASSERT_TRUE(r) << ext;
    ASSERT_EQ(r->status, 200) << ext << ": " << r->body;
    auto j = json::parse(r->body);
    EXPECT_EQ(j["image"]["width"], 512) << ext;
    EXPECT_EQ(j["faces"].size(), 1u) << ext;
  }
  // A TIFF that declares more pixels than the limit is refused from its header.
  std::string mm("MM\0*\0\0\0\x08\0\x02", 10);
  mm += std::string("\x01\x00\0\x04\0\0\0\x01\0\x01\x11\x70", 12);
  mm += std::string("\x01\x01\0\x03\0\0\0\x01\0\x03\0\0", 12);
  EXPECT_NE(error_of(client().Post("/v1/predict", mm, "image/tiff"), 413).find("70000x3"), std::string::npos);
}

// One connection, many requests: every one answered (no request-count limit,
// no close between them), sequential and pipelined.
TEST_F(Serve, KeepAliveAnswersManyRequestsOnOneConnection) {
  RawConnection c(fx->server->port(), 30);
  ASSERT_GE(c.fd, 0);
  const std::string predict = "POST /v1/predict?detector=none HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                              std::to_string(photo.size()) + "\r\n\r\n" + photo;
  for (int i = 0; i < 30; ++i) {
    c.send_all(i % 3 == 0 ? predict : "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string a = c.next_response();
    ASSERT_EQ(a.rfind("HTTP/1.1 200", 0), 0u) << "request " << i << ": " << a.substr(0, 200);
    EXPECT_EQ(a.find("Connection: close"), std::string::npos) << i;
  }
  c.send_all(predict + "GET /v1/model HTTP/1.1\r\nHost: x\r\n\r\n" + predict);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.next_response().rfind("HTTP/1.1 200", 0), 0u) << "pipelined " << i;
}

// The fuzz target's entry point answers raw bytes as a connection would.
TEST_F(Serve, AnswerBytesIsTheConnectionsHandling) {
  serve::ServerOptions o;
  o.max_body = 1000;
  serve::Handler h(fx->predictor, o);
  std::string a = serve::answer_bytes(h, "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
  EXPECT_EQ(a.rfind("HTTP/1.1 200", 0), 0u) << a;
  EXPECT_NE(a.find("HTTP/1.1 404"), std::string::npos) << a;
  a = serve::answer_bytes(h, "POST /v1/predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + std::string(0x800, 'x') + "\r\n0\r\n\r\n");
  EXPECT_EQ(a.rfind("HTTP/1.1 413", 0), 0u) << a;
  EXPECT_EQ(serve::answer_bytes(h, "\x01\x02garbage\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(serve::answer_bytes(h, "POST /v1/predict HTTP/1.1\r\nContent-Length: 10\r\n\r\nab").rfind("HTTP/1.1 408", 0), 0u);
  EXPECT_EQ(serve::answer_bytes(h, ""), "");
}

// serve-bench --abuse's clients: each kind gets the answer it should, while
// a normal client keeps being served; a non-loopback target is refused.
TEST_F(Serve, AbuseClientsGetTheirRefusals) {
  serve::AbuseOptions ao;
  ao.port = fx->server->port();
  ao.slow_clients = 4;
  ao.chunked_bytes = 3 * kMaxBody;
  std::atomic<bool> stop{false};
  serve::AbuseResult got;
  std::thread abusers([&] { got = serve::run_abuse(ao, stop); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  serve::LoadOptions lo;
  lo.port = fx->server->port();
  lo.body = photo;
  lo.path = "/v1/predict?detector=none";
  lo.requests = 20;
  lo.connections = 2;
  const auto normal = serve::run_load(lo);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // past the 1 s request deadline
  stop = true;
  abusers.join();
  EXPECT_EQ(normal.errors, 0) << normal.first_error;
  const std::map<std::string, int> want{{"slowloris", 408}, {"chunked", 413}, {"oversized", 413}, {"malformed", 400}, {"stalled", 408}};
  for (const auto& [kind, status] : want) {
    ASSERT_TRUE(got.kinds.count(kind)) << kind << " never finished an attempt";
    const auto& k = got.kinds.at(kind);
    EXPECT_GE(k.attempts, 1) << kind;
    EXPECT_EQ(k.statuses.at(status), k.attempts) << kind << ": " << got.to_json().dump();
  }
  EXPECT_THROW(serve::run_abuse(serve::AbuseOptions{"10.1.2.3"}, stop), Error);
  expect_alive();
}

TEST_F(Serve, ThirtyTwoConcurrentClientsGetCorrectAnswers) {
  // Reference answers, one request at a time.
  const std::vector<std::string> paths{"/v1/predict", "/v1/predict?detector=none", "/v1/predict?top_k=3"};
  std::vector<json> want;
  for (const auto& p : paths) want.push_back(json::parse(client().Post(p, photo, "image/jpeg")->body)["faces"]);

  constexpr int kClients = 32, kEach = 2;
  std::vector<std::thread> threads;
  std::vector<std::string> problems(kClients);
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      auto c = client();
      c.set_keep_alive(true);
      c.set_read_timeout(300, 0);  // all 64 requests may queue behind each other on a 2-core machine
      for (int i = 0; i < kEach; ++i) {
        const size_t which = static_cast<size_t>(t + i) % paths.size();
        auto r = c.Post(paths[which], photo, "image/jpeg");
        if (!r || r->status != 200) {
          problems[t] = "request failed: " + (r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error()));
          return;
        }
        const json got = json::parse(r->body)["faces"];
        if (got.size() != want[which].size()) {
          problems[t] = "face count differs";
          return;
        }
        for (size_t f = 0; f < got.size(); ++f) {
          if (got[f]["box"] != want[which][f]["box"] || got[f]["label"] != want[which][f]["label"] ||
              got[f]["probs"].size() != want[which][f]["probs"].size())
            problems[t] = "face " + std::to_string(f) + " differs: " + got[f].dump();
          for (auto& [name, p] : want[which][f]["probs"].items())
            if (std::abs(got[f]["probs"].value(name, -1.0) - p.get<double>()) > 1e-5) problems[t] = "probability of " + name + " differs";
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kClients; ++t) EXPECT_EQ(problems[t], "") << "client " << t;
}

TEST_F(Serve, LoadRunCountsEveryRequest) {
  serve::LoadOptions lo;
  lo.port = fx->server->port();
  lo.body = photo;
  lo.path = "/v1/predict?detector=none";
  lo.requests = 48;
  lo.connections = 8;
  auto r = serve::run_load(lo, [](const std::string& b) { return json::parse(b)["faces"].size() == 1; });
  EXPECT_EQ(r.ok, 48) << r.first_error;
  EXPECT_EQ(r.errors, 0);
  EXPECT_EQ(r.statuses[200], 48);
  EXPECT_GT(r.requests_per_s, 0);
  EXPECT_LE(r.p50_ms, r.p99_ms);
  EXPECT_LE(r.p99_ms, r.max_ms);

  // Errors are counted, not hidden: an empty body is a 400 every time.
  lo.body.clear();
  lo.requests = 6;
  r = serve::run_load(lo);
  EXPECT_EQ(r.errors, 6);
  EXPECT_EQ(r.statuses[400], 6);
  EXPECT_NE(r.first_error.find("HTTP 400"), std::string::npos);
}

// Memory is bounded over all connections, not per connection: uploads that
// would pass max_body_memory get 503 as soon as their header is in, and the
// budget comes back when an upload ends (here: its client goes away).
TEST(ServeServer, BodiesHeldAtOnceAreBoundedByMaxBodyMemory) {
  serve::ServerOptions o;
  o.max_body = 1u << 20;
  o.max_body_memory = 2u << 20;  // two full uploads
  o.read_timeout_s = 20;         // the stalled uploads must outlive the test's steps
  test::ServeFixture fx(o);
  const int port = fx.server->port();
  const std::string head = "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n";
  auto a = std::make_unique<RawConnection>(port, 10);
  RawConnection b(port, 10);
  ASSERT_GE(a->fd, 0);
  ASSERT_GE(b.fd, 0);
  for (RawConnection* c : {a.get(), &b}) c->send_all(head + "Content-Length: 1048576\r\n\r\n" + std::string(1000, 'x'));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The budget is taken: a small upload and a chunked one are refused at once.
  RawConnection small(port, 5);
  small.send_all(head + "Content-Length: 1000\r\n\r\n");
  const std::string refused = small.next_response();
  EXPECT_EQ(refused.rfind("HTTP/1.1 503", 0), 0u) << refused.substr(0, 300);
  EXPECT_NE(refused.find("2097152 bytes of uploads"), std::string::npos) << refused;
  RawConnection chunked(port, 5);
  chunked.send_all(head + "Transfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(chunked.next_response().rfind("HTTP/1.1 503", 0), 0u);
  // Requests without a body are not held back.
  EXPECT_EQ(raw_exchange(port, "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5).rfind("HTTP/1.1 200", 0), 0u);
  // One stalled client leaves: its share returns and a real photo is served.
  a.reset();
  std::string photo_path = test::sample_photo(fx.dir);
  if (photo_path.empty()) GTEST_SKIP() << "no sample photo";
  const std::string photo = fs::read_file(photo_path);
  std::string answer;
  for (int attempt = 0; attempt < 20; ++attempt) {
    RawConnection c(port, 30);
    c.send_all("POST /v1/predict?detector=none HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: " +
               std::to_string(photo.size()) + "\r\n\r\n" + photo);
    answer = c.next_response();
    if (answer.rfind("HTTP/1.1 503", 0) != 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer.substr(0, 300);
  // A budget smaller than one body is an option error naming both.
  serve::ServerOptions bad;
  bad.max_body = 1u << 20;
  bad.max_body_memory = 1000;
  try {
    serve::Server s(fx.predictor, bad);
    FAIL() << "accepted --max-body-memory below --max-body";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--max-body-memory"), std::string::npos) << e.what();
  }
}

TEST(ServeServer, StopRightAfterStartAndBindErrors) {
  test::ServeFixture fx;
  const int port = fx.server->port();
  EXPECT_GT(port, 0);
  EXPECT_TRUE(fx.server->running());
  EXPECT_EQ(fx.server->url(), "http://127.0.0.1:" + std::to_string(port) + "/");
  // A second server cannot take the same port: a clear error naming it.
  serve::ServerOptions o;
  o.port = port;
  serve::Server second(fx.predictor, o);
  try {
    second.start();
    FAIL() << "bound a port that is in use";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(port)), std::string::npos) << e.what();
  }
  const auto t0 = std::chrono::steady_clock::now();
  fx.server->stop();
  fx.server->stop();  // idempotent
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5);
  EXPECT_FALSE(fx.server->running());
  EXPECT_EQ(raw_exchange(port, "GET / HTTP/1.1\r\n\r\n", 1), "(connect failed)");
}

// The binary: `adcorre serve --port 0` prints its URL, answers, and exits 0 on SIGTERM.
TEST(ServeBinary, StartsAnswersAndStopsOnSigterm) {
  test::TempDir dir;
  torch::manual_seed(3);
  auto cfg = models::preset("fer-tiny");
  auto net = models::create_model(cfg);
  const std::string model = dir / "m.pt";
  models::save_model(model, cfg, *net);

  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const std::string log = dir / "serve.log";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], 1);
    FILE* err = freopen(log.c_str(), "w", stderr);
    (void)err;
    close(out[0]);
    const std::string bin = test::adcorre_binary();
    execl(bin.c_str(), bin.c_str(), "--threads", "1", "serve", "--model", model.c_str(), "--port", "0", "--threads", "2",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  // Read the first line ("adcorre serve: listening on http://127.0.0.1:PORT/").
  std::string line;
  char ch;
  while (line.find('\n') == std::string::npos && read(out[0], &ch, 1) == 1) line += ch;
  close(out[0]);
  const auto at = line.find("http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << line << fs::read_file(log);
  const int port = std::stoi(line.substr(at + 17));
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get("/v1/model");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["path"], model);

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  bool exited = false;
  for (int i = 0; i < 100 && !exited; ++i) {
    exited = waitpid(pid, &status, WNOHANG) == pid;
    if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "adcorre serve did not stop within 10 s of SIGTERM";
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << fs::read_file(log);
  EXPECT_NE(fs::read_file(log).find("stopped"), std::string::npos);
}

// `adcorre serve-bench` against its own in-process service: JSON with every request counted.
TEST(ServeBinary, ServeBenchReportsAShortRun) {
  test::TempDir dir;
  const std::string photo = test::sample_photo(dir);
  if (photo.empty()) GTEST_SKIP() << "no sample photo";
  torch::manual_seed(5);
  auto cfg = models::preset("fer-tiny");
  auto net = models::create_model(cfg);
  const std::string model = dir / "m.pt";
  models::save_model(model, cfg, *net);
  std::string out;
  const int rc = test::run_command(test::adcorre_binary() + " --threads 1 -q serve-bench --model " + model + " --image " + photo +
                                       " --requests 24 --connections 4 --detector none --json " + (dir / "bench.json"),
                                   &out);
  ASSERT_EQ(rc, 0) << out;
  auto j = json::parse(out);
  EXPECT_EQ(j["requests"], 24);
  EXPECT_EQ(j["ok"], 24);
  EXPECT_EQ(j["errors"], 0);
  EXPECT_EQ(j["statuses"]["200"], 24);
  EXPECT_GT(j["requests_per_s"].get<double>(), 0);
  EXPECT_LE(j["p50_ms"].get<double>(), j["p99_ms"].get<double>());
  EXPECT_EQ(json::parse(fs::read_file(dir / "bench.json"))["requests"], 24);
}
