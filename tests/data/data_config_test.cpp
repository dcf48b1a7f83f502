// The input pipeline's config keys: parsed strictly, printed by to_yaml so they round-trip (a
// checkpoint stores the config), and checked against the data set when it is built.
#include <gtest/gtest.h>

#include "syncbn/builders/data.hpp"
#include "syncbn/config/config.hpp"
#include "syncbn/data/transforms.hpp"
#include "syncbn/error.hpp"

namespace syncbn::config {
namespace {

const char* kSynthetic =
    "model: {input: [3, 6, 6], num_classes: 4}\n"
    "data: {dataset: synthetic, synthetic_train_size: 40, synthetic_test_size: 8}\n";

Config with(const Overrides& o) {
  return parse_config(kSynthetic, "p.yaml", o);
}

std::string error_of(const Overrides& o) {
  try {
    const Config c = with(o);
    builders::make_dataset(c, data::Split::Train);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(DataConfig, DefaultsKeepTodaysBehaviour) {
  const Config c;
  EXPECT_TRUE(c.data.mean.empty());
  EXPECT_TRUE(c.data.std.empty());
  EXPECT_EQ(c.data.crop_padding, 4);
  EXPECT_EQ(c.data.prefetch, 2);
}

TEST(DataConfig, ReadsAndRoundTrips) {
  const Config c = with({"data.mean=[0.4914, 0.4822, 0.4465]", "data.std=[0.247, 0.2435, 0.2616]",
                         "data.crop_padding=2", "data.prefetch=0", "data.augment=true"});
  EXPECT_EQ(c.data.mean, (std::vector<double>{0.4914, 0.4822, 0.4465}));
  EXPECT_EQ(c.data.std, (std::vector<double>{0.247, 0.2435, 0.2616}));
  EXPECT_EQ(c.data.crop_padding, 2);
  EXPECT_EQ(c.data.prefetch, 0);
  const std::string yaml = to_yaml(c);
  const Config again = parse_config(yaml, "again.yaml");
  EXPECT_EQ(again.data.mean, c.data.mean);
  EXPECT_EQ(again.data.std, c.data.std);
  EXPECT_EQ(again.data.crop_padding, 2);
  EXPECT_EQ(again.data.prefetch, 0);
  EXPECT_EQ(to_yaml(again), yaml);
}

TEST(DataConfig, RangesAndTypesAreRefusedWithTheKey) {
  for (const char* bad :
       {"data.prefetch=-1", "data.prefetch=65", "data.crop_padding=-1", "data.crop_padding=65",
        "data.std=[0.5, 0]", "data.mean=[.nan]", "data.mean=abc"}) {
    const std::string key = std::string(bad).substr(0, std::string(bad).find('='));
    try {
      with({bad});
      ADD_FAILURE() << bad << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

TEST(DataConfig, MeanAndStdMustFitTheChannels) {
  EXPECT_NE(error_of({"data.mean=[0.5, 0.5]", "data.std=[0.5, 0.5]"}).find("1 or 3 values"),
            std::string::npos);
  EXPECT_NE(error_of({"data.mean=[0.5]"}).find("data.std has 0"), std::string::npos);
  EXPECT_EQ(error_of({"data.mean=[0.5]", "data.std=[0.25]", "data.augment=true"}), "");
}

TEST(DataConfig, NormalisationReachesTheSamples) {
  const Config plain = with({});
  const Config normed = with({"data.mean=[1, 2, 3]", "data.std=[2, 4, 8]"});
  const auto a = builders::make_dataset(plain, data::Split::Test)->get_batch({0, 5});
  const auto b = builders::make_dataset(normed, data::Split::Test)->get_batch({0, 5});
  for (std::int64_t i = 0; i < a.images.numel(); ++i) {
    const std::int64_t ch = i / 36 % 3;
    const double expected = (a.images.data<float>()[i] - (ch + 1.0)) / (2.0 * (1 << ch));
    EXPECT_NEAR(b.images.data<float>()[i], expected, 1e-6) << i;
  }
}

}  // namespace
}  // namespace syncbn::config
