// One field of a CSV file written by adcorre (predict --csv, eval
// --predictions, embed's embeddings CSV).
//
// Ensures: the text unchanged when it holds no comma, quote or line break;
//   otherwise quoted as RFC 4180 says (in quotes, each quote doubled), so any
//   CSV reader gets the text back.
#pragma once
#include <string>

namespace adcorre {

inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace adcorre
