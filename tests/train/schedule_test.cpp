// Learning-rate schedules at their key points, warm-up, and configuration errors.
#include <gtest/gtest.h>

#include <cmath>

#include "syncbn/error.hpp"
#include "syncbn/train/schedule.hpp"

namespace syncbn::train {
namespace {

TEST(LrSchedule, ConstantAndStep) {
  EXPECT_DOUBLE_EQ(LrSchedule(ScheduleOptions(0.1)).lr_at(57, 3, 10), 0.1);
  LrSchedule step(ScheduleOptions(0.1, ScheduleKind::Step).step_size(30).gamma(0.1));
  EXPECT_DOUBLE_EQ(step.lr_at(0), 0.1);
  EXPECT_DOUBLE_EQ(step.lr_at(29, 99, 100), 0.1);
  EXPECT_NEAR(step.lr_at(30), 0.01, 1e-15);
  EXPECT_NEAR(step.lr_at(89), 0.001, 1e-15);
  EXPECT_NEAR(step.lr_at(90), 0.0001, 1e-15);
}

TEST(LrSchedule, MultiStep) {
  LrSchedule s(ScheduleOptions(1.0, ScheduleKind::MultiStep).milestones({3, 5}).gamma(0.5));
  const double expected[] = {1, 1, 1, 0.5, 0.5, 0.25, 0.25};
  for (int epoch = 0; epoch < 7; ++epoch)
    EXPECT_DOUBLE_EQ(s.lr_at(epoch), expected[epoch]) << epoch;
}

TEST(LrSchedule, CosineMatchesTheClosedFormAndHoldsAtTheEnd) {
  LrSchedule s(ScheduleOptions(0.1, ScheduleKind::Cosine).t_max(10).eta_min(0.001));
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.1);
  EXPECT_NEAR(s.lr_at(5), 0.001 + 0.099 / 2, 1e-15);  // half way: the mean
  EXPECT_NEAR(s.lr_at(2), 0.001 + 0.099 * (1 + std::cos(M_PI * 0.2)) / 2, 1e-15);
  EXPECT_NEAR(s.lr_at(10), 0.001, 1e-15);
  EXPECT_NEAR(s.lr_at(15), 0.001, 1e-15);
  // Within an epoch it interpolates: step 50 of 100 in epoch 4 is t = 4.5.
  EXPECT_NEAR(s.lr_at(4, 50, 100), 0.001 + 0.099 * (1 + std::cos(M_PI * 0.45)) / 2, 1e-15);
  EXPECT_GT(s.lr_at(4, 1, 100), s.lr_at(4, 2, 100));
}

TEST(LrSchedule, LinearWarmupMultipliesTheSchedule) {
  // 2 warm-up epochs of 10 steps: factor 0.1 + 0.9 * i / 20 for steps i < 20.
  LrSchedule s(ScheduleOptions(0.4, ScheduleKind::Cosine)
                   .t_max(10)
                   .warmup_epochs(2)
                   .warmup_start_factor(0.1));
  auto cosine = [](double t) { return 0.4 * (1 + std::cos(M_PI * t / 10)) / 2; };
  EXPECT_NEAR(s.lr_at(0, 0, 10), 0.04, 1e-15);
  EXPECT_NEAR(s.lr_at(0, 5, 10), cosine(0.5) * (0.1 + 0.9 * 5 / 20), 1e-15);
  EXPECT_NEAR(s.lr_at(1, 9, 10), cosine(1.9) * (0.1 + 0.9 * 19 / 20), 1e-15);
  EXPECT_NEAR(s.lr_at(2, 0, 10), cosine(2.0), 1e-15);
  // Half an epoch of warm-up on a constant rate; at least one step even when it rounds to 0.
  LrSchedule half(ScheduleOptions(1.0).warmup_epochs(0.5));
  EXPECT_NEAR(half.lr_at(0, 0, 4), 1.0 / 3, 1e-15);
  EXPECT_NEAR(half.lr_at(0, 1, 4), 1.0 / 3 + 2.0 / 3 / 2, 1e-15);
  EXPECT_DOUBLE_EQ(half.lr_at(0, 2, 4), 1.0);
  EXPECT_NEAR(LrSchedule(ScheduleOptions(1.0).warmup_epochs(0.01)).lr_at(0, 0, 4), 1.0 / 3, 1e-15);
  EXPECT_DOUBLE_EQ(LrSchedule(ScheduleOptions(1.0).warmup_epochs(0.01)).lr_at(0, 1, 4), 1.0);
}

TEST(LrSchedule, KindNamesAndErrors) {
  EXPECT_EQ(schedule_kind(config::ScheduleKind::Cosine), ScheduleKind::Cosine);
  EXPECT_EQ(schedule_kind(config::ScheduleKind::Step), ScheduleKind::Step);
  EXPECT_EQ(schedule_kind(config::ScheduleKind::Constant), ScheduleKind::Constant);
  EXPECT_STREQ(schedule_kind_name(ScheduleKind::Step), "step");
  EXPECT_THROW(LrSchedule(ScheduleOptions(0.1, ScheduleKind::Cosine)), ConfigError);
  EXPECT_THROW(LrSchedule(ScheduleOptions(0.1, ScheduleKind::Step).step_size(0)), ConfigError);
  EXPECT_THROW(LrSchedule(ScheduleOptions(0.1, ScheduleKind::MultiStep).milestones({5, 3})),
               ConfigError);
  EXPECT_THROW(LrSchedule(ScheduleOptions(-0.1)), ConfigError);
  EXPECT_THROW(LrSchedule(ScheduleOptions(0.1).warmup_epochs(1).warmup_start_factor(0)),
               ConfigError);
  EXPECT_THROW(LrSchedule(ScheduleOptions(0.1)).lr_at(-1), ValueError);
  EXPECT_THROW(LrSchedule(ScheduleOptions(0.1)).lr_at(0, 0, 0), ValueError);
}

}  // namespace
}  // namespace syncbn::train
