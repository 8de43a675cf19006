#include "adcorre/serve/server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "adcorre/infer/predictor.h"
#include "adcorre/serve/handler.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/log.h"

#ifdef ADCORRE_HAVE_BEAST
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "wire.h"
#endif

namespace adcorre::serve {

#ifdef ADCORRE_HAVE_BEAST

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Inference threads behind a bounded queue: a burst of uploads waits here
// (not in sockets or threads) and past max_queue is refused with 503.
class WorkerPool {
 public:
  WorkerPool(int threads, size_t max_queue) : max_queue_(max_queue) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  }
  ~WorkerPool() { stop(); }
  bool submit(std::function<void()> job) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || queue_.size() >= max_queue_) return false;
    queue_.push_back(std::move(job));
    cv_.notify_one();
    return true;
  }
  size_t queued() {
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_.size();
  }
  // Finishes the jobs already queued, then joins.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job();
    }
  }
  size_t max_queue_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// The bytes of request bodies held over all connections. A request reserves
// its announced size (max_body for chunked) before its body is read and keeps
// the reservation until its answer is made; past the limit it gets 503.
class BodyBudget {
 public:
  explicit BodyBudget(size_t limit) : limit_(limit) {}
  // A reservation of n bytes (released when the last copy is dropped), or
  // null when n more bytes would pass the limit.
  std::shared_ptr<void> reserve(size_t n) {
    size_t used = used_.load();
    do {
      if (n > limit_ - std::min(limit_, used)) return nullptr;
    } while (!used_.compare_exchange_weak(used, used + n));
    return std::shared_ptr<void>(this, [this, n](void*) { used_ -= n; });  // non-null: a held reservation
  }
  size_t limit() const { return limit_; }

 private:
  const size_t limit_;
  std::atomic<size_t> used_{0};
};

}  // namespace

struct Server::Impl {
  std::shared_ptr<infer::Predictor> predictor;
  ServerOptions opt;
  int bound_port = -1;
  std::mutex lifecycle;  // start() and stop() from different threads
  bool started_once = false;
  std::atomic<bool> running{false};
  std::atomic<int> connections{0};

  asio::io_context io{1};
  std::optional<Handler> handler;
  std::unique_ptr<WorkerPool> pool;
  std::unique_ptr<BodyBudget> bodies;
  std::optional<tcp::acceptor> acceptor;
  std::thread io_thread;

  void accept();
};

namespace {

using Seconds = std::chrono::seconds;

// One client connection: waits for a request (keep-alive idle limit), reads
// it whole within the request deadline, answers, and loops. Every step runs
// on the one I/O thread; inference answers are posted back to it.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Handler& handler, WorkerPool& pool, BodyBudget& bodies, std::atomic<int>& count)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), handler_(handler), pool_(pool), bodies_(bodies),
        count_(count) {
    ++count_;
  }
  ~Session() { --count_; }
  void start() { wait_for_request(handler_.options().read_timeout_s); }

 private:
  const ServerOptions& opt() const { return handler_.options(); }

  // Cancels the socket's pending operation when `seconds` pass. The
  // generation guards against an expiry already queued when it was re-armed.
  void arm(int seconds) {
    timed_out_ = false;
    const unsigned generation = ++generation_;
    timer_.expires_after(Seconds(std::max(1, seconds)));
    timer_.async_wait([self = shared_from_this(), generation](beast::error_code ec) {
      if (ec || generation != self->generation_) return;  // re-armed or cancelled
      self->timed_out_ = true;
      beast::error_code ignored;
      self->socket_.cancel(ignored);
    });
  }

  void wait_for_request(int idle_seconds) {
    reservation_.reset();
    parser_.emplace();
    wire::configure(*parser_, opt());
    if (buffer_.size() > 0) return read_header();  // a pipelined request is already here
    arm(idle_seconds);
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->close();  // idle too long, or the server stops
      self->read_header();
    });
  }

  // From the request's first byte, headers and body share one deadline.
  void read_header() {
    arm(opt().read_timeout_s);
    http::async_read_header(socket_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->fail(ec);
      self->on_header();
    });
  }

  void on_header() {
    HttpRequest head = wire::to_request(parser_->get(), false);
    HttpResponse refused = handler_.check_head(head);
    if (refused.status) return respond(std::move(refused), false);
    const auto announced = parser_->content_length();
    const size_t need = announced ? static_cast<size_t>(*announced) : (parser_->chunked() ? opt().max_body : 0);
    if (need > 0 && !(reservation_ = bodies_.reserve(need)))
      return respond(handler_.error(503, "the service holds its limit of " + std::to_string(bodies_.limit()) +
                                             " bytes of uploads; try again shortly", true),
                     false);
    // A chunked body has no announced size, and a string grown by doubling
    // would reach twice max_body; the reservation costs only address space
    // (pages become resident as bytes arrive).
    if (parser_->chunked()) parser_->get().body().reserve(opt().max_body);
    if (fs::lower(head.header("expect")) == "100-continue") {
      // The body is within max_body (the parser refused a larger Content-Length already).
      auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      asio::async_write(socket_, asio::buffer(*cont), [self = shared_from_this(), cont](beast::error_code ec, size_t) {
        if (ec) return self->fail(ec);
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(socket_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->fail(ec);
      self->on_request();
    });
  }

  void on_request() {
    ++generation_;
    timer_.cancel();
    auto req = std::make_shared<HttpRequest>(wire::to_request(parser_->get(), true));
    const bool keep_alive = parser_->get().keep_alive();
    const bool head_only = req->method == "HEAD";
    parser_.reset();  // frees the body (req holds its copy, under the same reservation)
    auto reservation = std::move(reservation_);
    if (!handler_.needs_worker(*req)) {
      HttpResponse res = handler_.handle(*req);
      if (!keep_alive) res.close = true;
      return respond(std::move(res), head_only);
    }
    auto self = shared_from_this();
    const bool queued = pool_.submit([self, req, keep_alive, reservation] {
      HttpResponse res = self->handler_.handle(*req);
      if (!keep_alive) res.close = true;
      asio::post(self->socket_.get_executor(), [self, res = std::move(res)]() mutable { self->respond(std::move(res), false); });
    });
    if (!queued)
      respond(handler_.error(503, "the service is busy (" + std::to_string(opt().max_queue) + " predictions queued); try again shortly", true), false);
  }

  void fail(const beast::error_code& ec) {
    const bool got_some = parser_ && parser_->got_some();
    parser_.reset();  // frees a refused body before the answer and the lingering close
    reservation_.reset();
    if (timed_out_) return got_some ? respond(wire::timeout(handler_), false) : close();
    // The client went away (or the server stops): nobody to answer.
    if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof || ec == asio::error::broken_pipe)
      return close();
    respond(wire::refusal(handler_, ec), false);
  }

  void respond(HttpResponse res, bool head_only) {
    auto out = std::make_shared<std::string>(serialize(res, head_only));
    const bool close_after = res.close;
    arm(opt().write_timeout_s);
    asio::async_write(socket_, asio::buffer(*out), [self = shared_from_this(), out, close_after](beast::error_code ec, size_t) {
      ++self->generation_;
      self->timer_.cancel();
      if (ec) return self->close();
      if (close_after) return self->linger();
      self->wait_for_request(self->opt().keep_alive_timeout_s);
    });
  }

  // After a refusal the client may still be sending (a 50 MB upload): shut
  // our side, then read and drop its bytes for a moment, so that closing
  // does not reset the connection before the client has read the answer.
  void linger() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    arm(2);
    drain();
  }
  void drain() {
    auto sink = std::make_shared<std::array<char, 16384>>();
    socket_.async_read_some(asio::buffer(*sink), [self = shared_from_this(), sink](beast::error_code ec, size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  void close() {
    beast::error_code ignored;
    ++generation_;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<wire::Parser> parser_;
  bool timed_out_ = false;
  unsigned generation_ = 0;
  Handler& handler_;
  WorkerPool& pool_;
  BodyBudget& bodies_;
  std::shared_ptr<void> reservation_;  // this request's share of max_body_memory
  std::atomic<int>& count_;
};

}  // namespace

void Server::Impl::accept() {
  acceptor->async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
    if (!ec) {
      if (connections.load() >= opt.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(socket), *handler, *pool, *bodies, connections)->start();
      }
    } else {
      log::warn("serve: accept failed: " + ec.message());
    }
    accept();
  });
}

Server::Server(std::shared_ptr<infer::Predictor> predictor, ServerOptions options) : impl_(std::make_unique<Impl>()) {
  check(predictor != nullptr, "serve: no predictor");
  check(options.port >= 0 && options.port <= 65535, "serve: --port " + std::to_string(options.port) + " is not in 0..65535");
  check(options.threads >= 1, "serve: --threads must be at least 1");
  check(options.max_queue >= 1, "serve: --max-queue must be at least 1");
  check(options.max_connections >= 1, "serve: --max-connections must be at least 1");
  check(options.max_body >= 1, "serve: --max-body must be at least 1 byte");
  check(options.max_body_memory >= options.max_body,
        "serve: --max-body-memory (" + std::to_string(options.max_body_memory) + ") must be at least --max-body (" +
            std::to_string(options.max_body) + ")");
  check(options.read_timeout_s >= 1 && options.write_timeout_s >= 1 && options.keep_alive_timeout_s >= 1,
        "serve: --read-timeout and --write-timeout must be at least 1 s");
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

void Server::start() {
  std::lock_guard<std::mutex> lock(impl_->lifecycle);
  check(!impl_->started_once, "serve: a Server can be started once");
  impl_->started_once = true;
  auto& o = impl_->opt;
  const std::string where = o.host + ":" + std::to_string(o.port);
  try {
    tcp::resolver resolver(impl_->io);
    const auto endpoints = resolver.resolve(o.host, std::to_string(o.port), tcp::resolver::passive | tcp::resolver::numeric_service);
    const tcp::endpoint ep = endpoints.begin()->endpoint();
    impl_->acceptor.emplace(impl_->io);
    impl_->acceptor->open(ep.protocol());
    // SO_REUSEADDR only (restarts need not wait for TIME_WAIT); never
    // SO_REUSEPORT, which would let a second server take half the requests.
    impl_->acceptor->set_option(asio::socket_base::reuse_address(true));
    impl_->acceptor->bind(ep);
    // The kernel's largest backlog: a burst of clients queues instead of
    // being refused (cpp-httplib listened with 5).
    impl_->acceptor->listen(asio::socket_base::max_listen_connections);
    impl_->bound_port = impl_->acceptor->local_endpoint().port();
  } catch (const std::exception& e) {
    impl_->acceptor.reset();
    throw Error("serve: cannot listen on " + where + " (" + e.what() + "; address in use, not a local address, or not permitted)");
  }
  impl_->handler.emplace(impl_->predictor, o);
  impl_->pool = std::make_unique<WorkerPool>(o.threads, static_cast<size_t>(o.max_queue));
  impl_->bodies = std::make_unique<BodyBudget>(o.max_body_memory);
  impl_->accept();
  impl_->running = true;
  impl_->io_thread = std::thread([this] {
    try {
      impl_->io.run();
    } catch (const std::exception& e) {
      log::warn(std::string("serve: the I/O loop stopped: ") + e.what());
    }
  });
}

void Server::stop() {
  std::lock_guard<std::mutex> lock(impl_->lifecycle);
  if (!impl_->io_thread.joinable()) return;
  asio::post(impl_->io, [this] {
    beast::error_code ignored;
    impl_->acceptor->close(ignored);
  });
  impl_->pool->stop();  // the predictions already queued finish
  impl_->io.stop();
  impl_->io_thread.join();
  // io.stop() can win the race with the posted close (seen with Boost 1.83 in
  // the Debian 13 check: the port still accepted connections after stop);
  // with the I/O thread gone, closing here is safe.
  beast::error_code ignored;
  impl_->acceptor->close(ignored);
  impl_->running = false;
}

bool Server::running() const { return impl_->running.load(); }

#else

struct Server::Impl {
  ServerOptions opt;
  int bound_port = -1;
};
Server::Server(std::shared_ptr<infer::Predictor>, ServerOptions options) : impl_(std::make_unique<Impl>()) { impl_->opt = std::move(options); }
Server::~Server() = default;
const ServerOptions& Server::options() const { return impl_->opt; }
int Server::port() const { return impl_->bound_port; }
std::string Server::url() const { return ""; }
void Server::start() { throw Error("serve: this adcorre was built without Boost.Beast (install libboost-dev and rebuild)"); }
void Server::stop() {}
bool Server::running() const { return false; }

#endif

}  // namespace adcorre::serve
