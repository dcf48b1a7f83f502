#pragma once
// What rank 0 tells the user: a live progress bar on a terminal or one line per epoch
// otherwise, and a JSON-lines metrics file (one object per epoch) that tools can plot.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iosfwd>
#include <memory>
#include <string>

namespace syncbn::train::detail {

struct EpochMetrics {
  std::int64_t epoch = 0, steps = 0, global_step = 0;
  double train_loss = 0, test_loss = 0, test_accuracy = 0, lr = 0, images_per_second = 0,
         seconds = 0;
};

class Reporter {
 public:
  // log == nullptr: silent (ranks other than 0). metrics_path "" = no metrics file. Every
  // metrics write is flushed and checked: a failure (full disk) throws IoError naming the file.
  Reporter(std::ostream* log, bool progress_bar, const std::string& metrics_path, bool append);
  void line(const std::string& text);
  void step(std::int64_t epoch, std::int64_t step, std::int64_t steps_per_epoch, double loss,
            double images_per_second);
  void epoch(const EpochMetrics& m);

 private:
  std::ostream* log_;
  bool bar_;
  std::string metrics_path_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> metrics_{nullptr, &std::fclose};
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace syncbn::train::detail
