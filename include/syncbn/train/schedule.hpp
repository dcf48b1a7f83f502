#pragma once
// Learning-rate schedules with linear warm-up, as a pure function of the position in training:
// lr_at(epoch, step_in_epoch, steps_per_epoch). Being stateless, a resumed run gets the right
// rate from its epoch alone, and every rank computes the same value.
//
// With t = epoch + step_in_epoch / steps_per_epoch (fractional epochs) and lr0 = base_lr:
//   constant:   lr0
//   step:       lr0 * gamma^floor(epoch / step_size)                  (torch StepLR per epoch)
//   multistep:  lr0 * gamma^(number of milestones <= epoch)           (torch MultiStepLR)
//   cosine:     eta_min + (lr0 - eta_min) * (1 + cos(pi * min(t, t_max) / t_max)) / 2
//               (torch CosineAnnealingLR at epoch boundaries, interpolated within an epoch and
//                held at eta_min after t_max instead of rising again)
// Warm-up multiplies the above, over the first W = round(warmup_epochs * steps_per_epoch)
// steps (at least 1 when warmup_epochs > 0), step index i = epoch * steps_per_epoch + step:
//   factor = start + (1 - start) * i / W   for i < W, then 1
// which is torch LinearLR(start_factor=start, total_iters=W) stepped per iteration and chained.
#include <cstdint>
#include <string>
#include <vector>

#include "syncbn/config/kinds.hpp"
#include "syncbn/options.hpp"

namespace syncbn::train {

enum class ScheduleKind { Constant, Step, MultiStep, Cosine };

// The schedule a config's schedule.name chose (the config reader parsed the name; multistep is
// not offered there, since the config has no milestones key).
ScheduleKind schedule_kind(config::ScheduleKind kind);
const char* schedule_kind_name(ScheduleKind kind);

struct ScheduleOptions {
  explicit ScheduleOptions(double base_lr, ScheduleKind kind = ScheduleKind::Constant)
      : base_lr_(base_lr), kind_(kind) {}
  SYNCBN_ARG(double, base_lr);
  SYNCBN_ARG(ScheduleKind, kind);
  SYNCBN_ARG(std::int64_t, step_size) = 30;           // step
  SYNCBN_ARG(std::vector<std::int64_t>, milestones);  // multistep, epochs, increasing
  SYNCBN_ARG(double, gamma) = 0.1;                    // step, multistep
  SYNCBN_ARG(double, t_max) = 0;                      // cosine, epochs (> 0)
  SYNCBN_ARG(double, eta_min) = 0;                    // cosine
  SYNCBN_ARG(double, warmup_epochs) = 0;
  SYNCBN_ARG(double, warmup_start_factor) = 1.0 / 3;  // torch LinearLR's default
};

class LrSchedule {
 public:
  // Throws ConfigError for an invalid setting (negative lr, step_size < 1, unsorted or
  // negative milestones, t_max <= 0 for cosine, negative warm-up, start factor outside (0, 1]).
  explicit LrSchedule(ScheduleOptions options);
  const ScheduleOptions& options() const { return options_; }

  // The rate for step `step_in_epoch` of `epoch` (both from 0). Throws ValueError for negative
  // positions or steps_per_epoch < 1.
  double lr_at(std::int64_t epoch, std::int64_t step_in_epoch = 0,
               std::int64_t steps_per_epoch = 1) const;

 private:
  double main_lr(std::int64_t epoch, double t) const;
  ScheduleOptions options_;
};

}  // namespace syncbn::train
