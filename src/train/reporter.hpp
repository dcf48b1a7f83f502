#pragma once
// What rank 0 tells the user: a live progress bar on a terminal, otherwise progress lines (every
// N steps, or every so many seconds) and one line per epoch; and a JSON-lines metrics file (one
// object per epoch) that tools can plot (scripts/plot-metrics).
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
  // How long steps waited for their batch (data.prefetch hides loading when it is fast enough).
  double data_wait_ms_mean = 0, data_wait_ms_max = 0;
};

// One optimizer step, as the trainer saw it.
struct StepMetrics {
  std::int64_t epoch = 0, step = 0, steps_per_epoch = 0;  // epoch 1-based, step 0-based
  std::int64_t global_step = 0, total_steps = 0;          // after this step; of the whole run
  std::int64_t images = 0;                                // this step, all ranks
  double loss = 0;                                        // this step's, averaged over ranks
  double epoch_loss = 0, epoch_images_per_second = 0;     // since the epoch began (the bar)
};

// When progress lines are printed (not with the bar): every `every` steps, or when 0, after
// `seconds` of wall time since the last line (train.log_every / train.log_seconds).
struct ProgressLines {
  std::int64_t every = 0;
  double seconds = 10;
};

class Reporter {
 public:
  // log == nullptr: silent (ranks other than 0). metrics_path "" = no metrics file. Every
  // metrics write is flushed and checked: a failure (full disk) throws IoError naming the file.
  Reporter(std::ostream* log, bool progress_bar, const std::string& metrics_path, bool append,
           ProgressLines lines = {});
  void line(const std::string& text);
  // Starts the interval the next progress line measures (evaluation time stays out of it).
  void begin_epoch();
  void step(const StepMetrics& s);
  void epoch(const EpochMetrics& m);

 private:
  std::ostream* log_;
  bool bar_;
  std::string metrics_path_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> metrics_{nullptr, &std::fclose};
  std::chrono::steady_clock::time_point last_draw_{};
  void progress_line(const StepMetrics& s, std::chrono::steady_clock::time_point now);
  ProgressLines lines_;
  // Since the last progress line (or the epoch's start): steps, images and summed loss.
  std::chrono::steady_clock::time_point interval_start_ = std::chrono::steady_clock::now();
  std::int64_t interval_steps_ = 0, interval_images_ = 0;
  double interval_loss_ = 0;
};

}  // namespace syncbn::train::detail
