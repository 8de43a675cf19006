// Internal: the HTTP/1.1 parser settings and the conversions shared by the
// Server's connections and answer_bytes(), so both read requests alike.
#pragma once
#include <boost/beast/http.hpp>

#include "adcorre/serve/handler.h"

namespace adcorre::serve::wire {

using Parser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Applies the service's limits: max_body (also for chunked bodies, counted as
// they arrive) and the header size limit.
void configure(Parser& parser, const ServerOptions& options);

// The method, target, headers and (when `with_body`) body of a parsed message.
HttpRequest to_request(const Parser::value_type& message, bool with_body);

// The answer to a request the parser refused (413 body over the limit, 431
// headers too large, 400 malformed); it closes the connection.
HttpResponse refusal(Handler& handler, const boost::beast::error_code& ec);

// The answer to a request not received in full within read_timeout_s.
HttpResponse timeout(Handler& handler);

}  // namespace adcorre::serve::wire
