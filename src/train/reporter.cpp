#include "reporter.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <utility>

#include "syncbn/error.hpp"

namespace syncbn::train::detail {
namespace {
std::string format(const char* fmt, double a, double b = 0, double c = 0, double d = 0,
                   double e = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, a, b, c, d, e);
  return buf;
}

// "1:02:03", "4:05" or "0:07": how long until the epoch or run ends, at the recent pace.
std::string duration(double seconds) {
  const auto total = static_cast<long long>(std::max(0.0, seconds) + 0.5);
  char buf[64];
  if (total >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", total / 60, total % 60);
  return buf;
}

// JSON has no NaN or infinity (a diverged loss): those are written as null.
std::string json_number(double v) {
  return std::isfinite(v) ? format("%.6g", v) : "null";
}

[[noreturn]] void metrics_failed(const std::string& what, const std::string& path, int err) {
  throw IoError("cannot " + what + " metrics file '" + path + "': " + std::strerror(err));
}
}  // namespace

Reporter::Reporter(std::ostream* log, bool progress_bar, const std::string& metrics_path,
                   bool append, ProgressLines lines)
    : log_(log), bar_(progress_bar && log != nullptr), metrics_path_(metrics_path), lines_(lines) {
  if (!log_ || metrics_path.empty()) return;
  metrics_.reset(std::fopen(metrics_path.c_str(), append ? "a" : "w"));
  if (!metrics_) metrics_failed("open", metrics_path, errno);
}

void Reporter::line(const std::string& text) {
  if (log_) *log_ << text << std::endl;
}

void Reporter::begin_epoch() {
  interval_start_ = std::chrono::steady_clock::now();
  interval_steps_ = interval_images_ = 0;
  interval_loss_ = 0;
}

void Reporter::step(const StepMetrics& s) {
  if (!log_) return;
  const auto now = std::chrono::steady_clock::now();
  ++interval_steps_;
  interval_images_ += s.images;
  interval_loss_ += s.loss;
  if (!bar_) {
    const bool due =
        lines_.every > 0
            ? s.global_step % lines_.every == 0
            : std::chrono::duration<double>(now - interval_start_).count() >= lines_.seconds;
    if (due) progress_line(s, now);
    return;
  }
  if (s.step + 1 < s.steps_per_epoch && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  constexpr int kWidth = 30;
  const int filled =
      static_cast<int>(kWidth * (s.step + 1) / std::max<std::int64_t>(1, s.steps_per_epoch));
  *log_ << "\repoch " << s.epoch << " [" << std::string(filled, '#')
        << std::string(kWidth - filled, ' ') << "] " << s.step + 1 << "/" << s.steps_per_epoch
        << format("  loss %.4f  %.0f img/s ", s.epoch_loss, s.epoch_images_per_second)
        << std::flush;
}

// The loss is the mean since the last line; speed and ETAs use the pace since then (the run's
// ETA counts training steps only, not the evaluations between epochs).
void Reporter::progress_line(const StepMetrics& s, std::chrono::steady_clock::time_point now) {
  const double seconds = std::chrono::duration<double>(now - interval_start_).count();
  const double per_step = seconds / static_cast<double>(interval_steps_);
  const auto left_in_epoch = static_cast<double>(s.steps_per_epoch - (s.step + 1));
  const auto left_in_run =
      static_cast<double>(std::max<std::int64_t>(0, s.total_steps - s.global_step));
  *log_ << "step " << s.global_step << "/" << s.total_steps << "  epoch " << s.epoch << " "
        << s.step + 1 << "/" << s.steps_per_epoch
        << format("  loss %.4f  %.0f img/s", interval_loss_ / static_cast<double>(interval_steps_),
                  seconds > 0 ? static_cast<double>(interval_images_) / seconds : 0)
        << "  eta epoch " << duration(left_in_epoch * per_step) << " run "
        << duration(left_in_run * per_step) << std::endl;
  begin_epoch();  // the next line measures from here
}

void Reporter::epoch(const EpochMetrics& m) {
  if (!log_) return;
  if (bar_) *log_ << "\r" << std::string(80, ' ') << "\r";
  *log_ << "epoch " << m.epoch
        << format("  train_loss %.4f  test_loss %.4f  test_acc %.2f%%  lr %.4g  %.0f img/s",
                  m.train_loss, m.test_loss, 100 * m.test_accuracy, m.lr, m.images_per_second)
        << format("  (%.1f s, data wait %.2f ms/step)", m.seconds, m.data_wait_ms_mean)
        << std::endl;
  if (!metrics_) return;
  std::string record = "{\"epoch\": " + std::to_string(m.epoch) +
                       ", \"global_step\": " + std::to_string(m.global_step);
  for (const auto& [key, value] : {std::pair<const char*, double>{"train_loss", m.train_loss},
                                   {"test_loss", m.test_loss},
                                   {"test_accuracy", m.test_accuracy},
                                   {"lr", m.lr},
                                   {"images_per_second", m.images_per_second},
                                   {"seconds", m.seconds},
                                   {"data_wait_ms_mean", m.data_wait_ms_mean},
                                   {"data_wait_ms_max", m.data_wait_ms_max}})
    record += std::string(", \"") + key + "\": " + json_number(value);
  record += "}\n";
  // Flushed per record so a plot of a running job is current; a full disk surfaces here.
  if (std::fputs(record.c_str(), metrics_.get()) == EOF || std::fflush(metrics_.get()) != 0)
    metrics_failed("write", metrics_path_, errno);
}

}  // namespace syncbn::train::detail
