// Training progress on stderr: a bar redrawn in place on a terminal, plain
// periodic log lines otherwise (logs, CI). Only the main rank shows it.
#pragma once
#include <chrono>
#include <string>

namespace adcorre::train {

class Progress {
 public:
  Progress(bool enabled, int log_every);
  void start_epoch(int epoch, int epochs, int64_t steps, int64_t first_step = 0);
  // `fields`: short "name value" text of running metrics.
  void update(int64_t step, int64_t images_done, const std::string& fields);
  // Whether update(step, ...) would show anything: the trainer reads its
  // running sums back from the device only then.
  bool due(int64_t step) const;
  void end_epoch(const std::string& summary);

 private:
  bool enabled_, tty_;
  int log_every_;
  int epoch_ = 0, epochs_ = 0;
  int64_t steps_ = 0, first_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace adcorre::train
