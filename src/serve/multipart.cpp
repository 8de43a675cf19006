#include "adcorre/serve/multipart.h"

#include "adcorre/util/fs.h"

namespace adcorre::serve {
namespace {

// The value of `key` (e.g. name) in a header value like
// `form-data; name="image"; filename="a.jpg"`; false when absent.
bool header_param(const std::string& value, const std::string& key, std::string* out) {
  const std::string lower = fs::lower(value);
  size_t at = 0;
  while ((at = lower.find(key + "=", at)) != std::string::npos) {
    // a whole parameter name: preceded by ';', ' ' or the start
    if (at > 0 && lower[at - 1] != ';' && lower[at - 1] != ' ' && lower[at - 1] != '\t') {
      at += key.size();
      continue;
    }
    size_t v = at + key.size() + 1;
    if (v < value.size() && value[v] == '"') {
      const size_t end = value.find('"', v + 1);
      *out = value.substr(v + 1, end == std::string::npos ? std::string::npos : end - v - 1);
    } else {
      const size_t end = value.find(';', v);
      *out = value.substr(v, end == std::string::npos ? std::string::npos : end - v);
      while (!out->empty() && (out->back() == ' ' || out->back() == '\t')) out->pop_back();
    }
    return true;
  }
  return false;
}

}  // namespace

std::string parse_multipart(const std::string& content_type, const std::string& body, std::vector<MultipartPart>* parts) {
  parts->clear();
  std::string boundary;
  if (!header_param(content_type, "boundary", &boundary) || boundary.empty() || boundary.size() > 200)
    return "the Content-Type names no boundary (or one over 200 characters)";
  const std::string delim = "--" + boundary;
  size_t at = body.find(delim);
  if (at == std::string::npos) return "the boundary never occurs in the body";
  for (;;) {
    at += delim.size();
    if (body.compare(at, 2, "--") == 0) return "";  // the closing delimiter
    if (body.compare(at, 2, "\r\n") != 0) return "a boundary line is not followed by CRLF";
    at += 2;
    const size_t head_end = body.find("\r\n\r\n", at);
    if (head_end == std::string::npos) return "a part has no blank line after its headers";
    MultipartPart part;
    size_t line = at;
    while (line < head_end) {
      size_t eol = body.find("\r\n", line);
      if (eol == std::string::npos || eol > head_end) eol = head_end;
      const std::string h = body.substr(line, eol - line);
      const size_t colon = h.find(':');
      if (colon != std::string::npos && fs::lower(h.substr(0, colon)) == "content-disposition") {
        const std::string v = h.substr(colon + 1);
        header_param(v, "name", &part.name);
        part.has_filename = header_param(v, "filename", &part.filename);
      }
      line = eol + 2;
    }
    const size_t content = head_end + 4;
    const size_t next = body.find("\r\n" + delim, content);
    if (next == std::string::npos) return "part '" + part.name.substr(0, 40) + "' has no closing boundary";
    part.content = body.substr(content, next - content);
    parts->push_back(std::move(part));
    at = next + 2;
  }
}

}  // namespace adcorre::serve
