// adcorre::Error: the one exception type the library throws for bad input,
// bad files and impossible requests. Its message always names the thing at
// fault (file, line, field, option). Only the CLI decides exit codes.
#pragma once
#include <stdexcept>
#include <string>

namespace adcorre {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws adcorre::Error(message) when cond is false.
inline void check(bool cond, const std::string& message) {
  if (!cond) throw Error(message);
}

}  // namespace adcorre
