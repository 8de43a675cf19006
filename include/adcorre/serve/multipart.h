// Reading a multipart/form-data body (RFC 7578) into its parts, for the
// service's POST /v1/predict form uploads.
#pragma once
#include <string>
#include <vector>

namespace adcorre::serve {

struct MultipartPart {
  std::string name;          // Content-Disposition name
  std::string filename;      // Content-Disposition filename ("" when none)
  bool has_filename = false; // a file field (filename given, even empty)
  std::string content;
};

// Splits `body` by the boundary named in `content_type`. Returns "" and fills
// `parts` on success, else why the body is not well-formed multipart (no
// boundary, no closing delimiter, a part without headers). Never throws and
// never reads past the body.
std::string parse_multipart(const std::string& content_type, const std::string& body, std::vector<MultipartPart>* parts);

}  // namespace adcorre::serve
