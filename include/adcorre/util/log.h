// Logging to stderr with three levels. Machine-readable results never go
// through here: they go to stdout or files.
#pragma once
#include <sstream>
#include <string>

namespace adcorre::log {

enum class Level { quiet = 0, info = 1, verbose = 2 };

void set_level(Level level);
Level level();

void info(const std::string& message);     // shown unless --quiet
void warn(const std::string& message);     // always shown, prefixed "warning:"
void debug(const std::string& message);    // shown with --verbose

// True when stderr is a terminal (progress bars redraw in place only then).
bool stderr_is_tty();

}  // namespace adcorre::log
