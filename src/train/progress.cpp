#include "adcorre/train/progress.h"

#include <cstdio>

#include "adcorre/util/log.h"

namespace adcorre::train {

Progress::Progress(bool enabled, int log_every)
    : enabled_(enabled && log::level() != log::Level::quiet), tty_(log::stderr_is_tty()), log_every_(log_every) {}

void Progress::start_epoch(int epoch, int epochs, int64_t steps, int64_t first_step) {
  epoch_ = epoch;
  epochs_ = epochs;
  steps_ = steps;
  first_ = first_step;
  start_ = std::chrono::steady_clock::now();
}

static std::string hms(double s) {
  char buf[32];
  int t = static_cast<int>(s);
  std::snprintf(buf, sizeof buf, "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60);
  return buf;
}

bool Progress::due(int64_t step) const {
  if (!enabled_) return false;
  return tty_ || (log_every_ > 0 && (step + 1) % log_every_ == 0) || step + 1 == steps_;
}

void Progress::update(int64_t step, int64_t images, const std::string& fields) {
  if (!due(step)) return;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double ips = secs > 0 ? images / secs : 0;
  const int64_t done = step + 1 - first_;
  const double eta = done > 0 ? secs / done * static_cast<double>(steps_ - step - 1) : 0;
  char head[160];
  std::snprintf(head, sizeof head, "epoch %d/%d %5lld/%lld %6.0f img/s ETA %s", epoch_ + 1, epochs_,
                static_cast<long long>(step + 1), static_cast<long long>(steps_), ips, hms(eta).c_str());
  if (tty_) {
    const int width = 20;
    const int filled = static_cast<int>(width * (step + 1) / std::max<int64_t>(steps_, 1));
    std::string bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
    std::fprintf(stderr, "\r%s %s %s\x1b[K", bar.c_str(), head, fields.c_str());
    std::fflush(stderr);
  } else {
    log::info(std::string(head) + " " + fields);
  }
}

void Progress::end_epoch(const std::string& summary) {
  if (!enabled_) return;
  if (tty_) std::fprintf(stderr, "\r\x1b[K");
  log::info(summary);
}

}  // namespace adcorre::train
