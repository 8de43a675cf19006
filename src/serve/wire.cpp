#include "adcorre/serve/handler.h"
#include "adcorre/util/error.h"

#ifdef ADCORRE_HAVE_BEAST
#include "wire.h"

#include "adcorre/util/fs.h"

namespace adcorre::serve {

namespace http = boost::beast::http;

namespace wire {

constexpr std::size_t kHeaderLimit = 16 * 1024;

void configure(Parser& parser, const ServerOptions& options) {
  parser.body_limit(options.max_body);
  parser.header_limit(kHeaderLimit);
}

HttpRequest to_request(const Parser::value_type& m, bool with_body) {
  HttpRequest r;
  r.method = std::string(m.method_string());
  r.target = std::string(m.target());
  split_target(r.target, &r.path, &r.query);
  for (const auto& f : m) r.headers.emplace_back(fs::lower(std::string(f.name_string())), std::string(f.value()));
  if (with_body) r.body = m.body();
  return r;
}

HttpResponse refusal(Handler& handler, const boost::beast::error_code& ec) {
  const auto& o = handler.options();
  if (ec == http::error::body_limit)
    return handler.error(413, "the request body is larger than this service's limit of " + std::to_string(o.max_body) + " bytes", true);
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
    return handler.error(431, "the request line and headers are larger than this service's limit of " + std::to_string(kHeaderLimit) + " bytes", true);
  return handler.error(400, "malformed HTTP request (" + ec.message() + ")", true);
}

HttpResponse timeout(Handler& handler) {
  return handler.error(408, "the request was not received in full within " + std::to_string(handler.options().read_timeout_s) + " s", true);
}

}  // namespace wire

std::string answer_bytes(Handler& handler, const std::string& bytes) {
  std::string out;
  size_t at = 0;
  while (at < bytes.size()) {
    wire::Parser parser;
    wire::configure(parser, handler.options());
    const size_t start = at;
    bool head_checked = false;
    boost::beast::error_code ec;
    while (!parser.is_done() && at < bytes.size()) {
      const size_t n = parser.put(boost::asio::buffer(bytes.data() + at, bytes.size() - at), ec);
      at += n;
      if (ec == http::error::need_more) {
        ec = {};
        if (n == 0) break;  // the rest is an incomplete header or chunk
        continue;
      }
      if (ec) break;
      if (parser.is_header_done() && !head_checked) {
        head_checked = true;
        HttpResponse r = handler.check_head(wire::to_request(parser.get(), false));
        if (r.status) return out + serialize(r, false);
      }
    }
    if (ec) return out + serialize(wire::refusal(handler, ec), false);
    if (!parser.is_done()) {
      // The connection would wait for the rest, then give up.
      if (at > start || parser.got_some()) out += serialize(wire::timeout(handler), false);
      return out;
    }
    const HttpRequest req = wire::to_request(parser.get(), true);
    HttpResponse res = handler.handle(req);
    if (!parser.get().keep_alive()) res.close = true;
    out += serialize(res, req.method == "HEAD");
    if (res.close) return out;
  }
  return out;
}

}  // namespace adcorre::serve

#else

namespace adcorre::serve {
std::string answer_bytes(Handler&, const std::string&) { throw Error("serve: this adcorre was built without Boost.Beast"); }
}  // namespace adcorre::serve

#endif
