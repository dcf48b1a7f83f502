#include "syncbn/train/schedule.hpp"

#include <algorithm>
#include <cmath>

#include "syncbn/error.hpp"

namespace syncbn::train {
namespace {
constexpr double kPi = 3.14159265358979323846;
}  // namespace

ScheduleKind schedule_kind(config::ScheduleKind kind) {
  switch (kind) {
    case config::ScheduleKind::Constant:
      return ScheduleKind::Constant;
    case config::ScheduleKind::Step:
      return ScheduleKind::Step;
    case config::ScheduleKind::Cosine:
      return ScheduleKind::Cosine;
  }
  throw ValueError("schedule_kind: not a config::ScheduleKind value: " +
                   std::to_string(static_cast<int>(kind)));
}

const char* schedule_kind_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::Constant:
      return "constant";
    case ScheduleKind::Step:
      return "step";
    case ScheduleKind::MultiStep:
      return "multistep";
    case ScheduleKind::Cosine:
      return "cosine";
  }
  return "?";
}

LrSchedule::LrSchedule(ScheduleOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  SYNCBN_CHECK_AS(ConfigError, o.base_lr() >= 0.0, "lr schedule: base_lr must be >= 0, got ",
                  o.base_lr());
  SYNCBN_CHECK_AS(ConfigError, o.kind() != ScheduleKind::Step || o.step_size() >= 1,
                  "lr schedule 'step': step_size must be >= 1, got ", o.step_size());
  const auto& m = o.milestones();
  SYNCBN_CHECK_AS(ConfigError, std::is_sorted(m.begin(), m.end()) && (m.empty() || m.front() >= 0),
                  "lr schedule 'multistep': milestones must be non-negative and increasing");
  SYNCBN_CHECK_AS(ConfigError, o.kind() != ScheduleKind::Cosine || o.t_max() > 0,
                  "lr schedule 'cosine': t_max must be > 0 epochs, got ", o.t_max());
  SYNCBN_CHECK_AS(ConfigError, o.warmup_epochs() >= 0,
                  "lr schedule: warmup_epochs must be >= 0, got ", o.warmup_epochs());
  SYNCBN_CHECK_AS(ConfigError, o.warmup_start_factor() > 0 && o.warmup_start_factor() <= 1,
                  "lr schedule: warmup_start_factor must be in (0, 1], got ",
                  o.warmup_start_factor());
}

double LrSchedule::main_lr(std::int64_t epoch, double t) const {
  const auto& o = options_;
  switch (o.kind()) {
    case ScheduleKind::Constant:
      return o.base_lr();
    case ScheduleKind::Step:
      return o.base_lr() * std::pow(o.gamma(), static_cast<double>(epoch / o.step_size()));
    case ScheduleKind::MultiStep: {
      const auto passed = std::upper_bound(o.milestones().begin(), o.milestones().end(), epoch) -
                          o.milestones().begin();
      return o.base_lr() * std::pow(o.gamma(), static_cast<double>(passed));
    }
    case ScheduleKind::Cosine: {
      const double progress = std::min(t, o.t_max()) / o.t_max();
      return o.eta_min() + (o.base_lr() - o.eta_min()) * (1.0 + std::cos(kPi * progress)) / 2.0;
    }
  }
  return o.base_lr();
}

double LrSchedule::lr_at(std::int64_t epoch, std::int64_t step_in_epoch,
                         std::int64_t steps_per_epoch) const {
  SYNCBN_CHECK(epoch >= 0 && step_in_epoch >= 0 && steps_per_epoch >= 1,
               "lr_at: invalid position epoch=", epoch, ", step_in_epoch=", step_in_epoch,
               ", steps_per_epoch=", steps_per_epoch);
  const double t = static_cast<double>(epoch) +
                   static_cast<double>(step_in_epoch) / static_cast<double>(steps_per_epoch);
  double lr = main_lr(epoch, t);
  const auto& o = options_;
  if (o.warmup_epochs() > 0) {
    const auto warmup_steps = std::max<std::int64_t>(
        1, std::llround(o.warmup_epochs() * static_cast<double>(steps_per_epoch)));
    const std::int64_t i = epoch * steps_per_epoch + step_in_epoch;
    if (i < warmup_steps)
      lr *= o.warmup_start_factor() + (1.0 - o.warmup_start_factor()) * static_cast<double>(i) /
                                          static_cast<double>(warmup_steps);
  }
  return lr;
}

}  // namespace syncbn::train
