#include "reporter.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ostream>

#include "syncbn/error.hpp"

namespace syncbn::train::detail {
namespace {
std::string format(const char* fmt, double a, double b = 0, double c = 0, double d = 0,
                   double e = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, a, b, c, d, e);
  return buf;
}

[[noreturn]] void metrics_failed(const std::string& what, const std::string& path, int err) {
  throw IoError("cannot " + what + " metrics file '" + path + "': " + std::strerror(err));
}
}  // namespace

Reporter::Reporter(std::ostream* log, bool progress_bar, const std::string& metrics_path,
                   bool append)
    : log_(log), bar_(progress_bar && log != nullptr), metrics_path_(metrics_path) {
  if (!log_ || metrics_path.empty()) return;
  metrics_.reset(std::fopen(metrics_path.c_str(), append ? "a" : "w"));
  if (!metrics_) metrics_failed("open", metrics_path, errno);
}

void Reporter::line(const std::string& text) {
  if (log_) *log_ << text << std::endl;
}

void Reporter::step(std::int64_t epoch, std::int64_t step, std::int64_t steps_per_epoch,
                    double loss, double images_per_second) {
  if (!bar_) return;
  const auto now = std::chrono::steady_clock::now();
  if (step + 1 < steps_per_epoch && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  constexpr int kWidth = 30;
  const int filled =
      static_cast<int>(kWidth * (step + 1) / std::max<std::int64_t>(1, steps_per_epoch));
  *log_ << "\repoch " << epoch << " [" << std::string(filled, '#')
        << std::string(kWidth - filled, ' ') << "] " << step + 1 << "/" << steps_per_epoch
        << format("  loss %.4f  %.0f img/s ", loss, images_per_second) << std::flush;
}

void Reporter::epoch(const EpochMetrics& m) {
  if (!log_) return;
  if (bar_) *log_ << "\r" << std::string(80, ' ') << "\r";
  *log_ << "epoch " << m.epoch
        << format("  train_loss %.4f  test_loss %.4f  test_acc %.2f%%  lr %.4g  %.0f img/s",
                  m.train_loss, m.test_loss, 100 * m.test_accuracy, m.lr, m.images_per_second)
        << format("  (%.1f s)", m.seconds) << std::endl;
  if (!metrics_) return;
  const std::string record =
      "{\"epoch\": " + std::to_string(m.epoch) +
      ", \"global_step\": " + std::to_string(m.global_step) +
      format(", \"train_loss\": %.6g, \"test_loss\": %.6g, \"test_accuracy\": %.6g", m.train_loss,
             m.test_loss, m.test_accuracy) +
      format(", \"lr\": %.6g, \"images_per_second\": %.6g, \"seconds\": %.6g}\n", m.lr,
             m.images_per_second, m.seconds);
  // Flushed per record so a plot of a running job is current; a full disk surfaces here.
  if (std::fputs(record.c_str(), metrics_.get()) == EOF || std::fflush(metrics_.get()) != 0)
    metrics_failed("write", metrics_path_, errno);
}

}  // namespace syncbn::train::detail
