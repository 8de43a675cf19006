// The `adcorre` command line: each subcommand lives in its own tools/cmd_*.cpp
// and registers itself here with a static Registrar, so adding one touches no
// other file. Subcommands stay thin: parse options, call the library, print.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace adcorre::cli {

// Global options, applied before any subcommand runs.
struct Globals {
  int threads = 0;              // 0: all cores
  std::string device = "cpu";
  unsigned long long seed = 0;
  bool quiet = false;
  bool verbose = false;
};
const Globals& globals();

// setup() adds the subcommand's options to `app` and returns the function that
// runs it (its exit code).
struct Command {
  std::string name;
  std::string help;
  std::function<std::function<int()>(CLI::App& app)> setup;
};

// Option checks with plain messages ("must be >= 1", not CLI11's range of
// doubles). at_least(0) for counts where 0 means "off" or "all".
inline CLI::Validator at_least(double min) {
  return CLI::Validator(
      [min](std::string& v) {
        try {
          size_t used = 0;
          const double x = std::stod(v, &used);
          if (used == v.size() && x >= min) return std::string();
        } catch (const std::exception&) {}
        return "must be a number >= " + CLI::detail::to_string(min) + " (got '" + v + "')";
      },
      ">=" + CLI::detail::to_string(min));
}

struct Registrar {
  explicit Registrar(Command c);
};
std::vector<Command>& registry();

}  // namespace adcorre::cli
