#include "adcorre/util/log.h"

#include <unistd.h>

#include <atomic>
#include <iostream>
#include <mutex>

namespace adcorre::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::mutex g_mutex;  // keeps lines from several threads whole
void emit(const std::string& prefix, const std::string& m) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::cerr << prefix << m << "\n" << std::flush;
}
}  // namespace

void set_level(Level l) { g_level = static_cast<int>(l); }
Level level() { return static_cast<Level>(g_level.load()); }
void info(const std::string& m) {
  if (g_level >= static_cast<int>(Level::info)) emit("", m);
}
void warn(const std::string& m) { emit("warning: ", m); }
void debug(const std::string& m) {
  if (g_level >= static_cast<int>(Level::verbose)) emit("", m);
}
bool stderr_is_tty() { return isatty(STDERR_FILENO) != 0; }

}  // namespace adcorre::log
