#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>

#include "syncbn/config/config.hpp"
#include "syncbn/error.hpp"

namespace syncbn::config {
namespace {

std::string error_of(const std::string& yaml, const Overrides& overrides = {}) {
  try {
    parse_config(yaml, "test.yaml", overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(Config, DefaultsWhenEmpty) {
  Config c = parse_config("", "empty.yaml");
  EXPECT_EQ(c.model.norm, (Norm{NormKind::SyncBatch, 0}));
  EXPECT_EQ(c.data.dataset, DatasetKind::FashionMnist);
  EXPECT_EQ(c.schedule.name, ScheduleKind::Cosine);
  EXPECT_EQ(c.train.batch_size, 64);
  EXPECT_EQ(c.model.stages.size(), 3u);
}

TEST(Config, ReadsEverySection) {
  Config c = parse_config(R"(
model:
  norm: group:4
  stages:
    - {channels: 16, blocks: 2, stride: 1}
data: {dataset: synthetic, synthetic_train_size: 64}
optimizer: {lr: 0.05, nesterov: false}
schedule: {name: step, step_size: 3}
train: {batch_size: 8, epochs: 2, seed: 7}
)",
                          "x.yaml");
  EXPECT_EQ(c.model.norm, (Norm{NormKind::Group, 4}));
  ASSERT_EQ(c.model.stages.size(), 1u);
  EXPECT_EQ(c.model.stages[0].blocks, 2);
  EXPECT_EQ(c.data.dataset, DatasetKind::Synthetic);
  EXPECT_EQ(c.schedule.name, ScheduleKind::Step);
  EXPECT_FALSE(c.optimizer.nesterov);
  EXPECT_EQ(c.schedule.step_size, 3);
  EXPECT_EQ(c.train.seed, 7u);
}

TEST(Config, UnknownKeySuggestsTheNearestWithLine) {
  const std::string e = error_of("train:\n  batch_szie: 3\n");
  EXPECT_NE(e.find("test.yaml:2: train.batch_szie: unknown key (did you mean 'train.batch_size'?)"),
            std::string::npos)
      << e;
}

TEST(Config, WrongTypesAndRangesNameKeyAndLine) {
  EXPECT_NE(error_of("train:\n  epochs: many\n")
                .find("test.yaml:2: train.epochs: expected an integer, got 'many'"),
            std::string::npos);
  EXPECT_NE(error_of("train:\n  batch_size: 0\n")
                .find("train.batch_size: expected a value in [1, 16777216], got '0'"),
            std::string::npos);
  EXPECT_NE(error_of("model:\n  norm: layer\n").find("model.norm: expected batch | sync_batch"),
            std::string::npos);
  EXPECT_NE(error_of("model:\n  input: [1, 28]\n").find("model.input: expected [C, H, W]"),
            std::string::npos);
  EXPECT_NE(error_of("model: 3\n").find("model: expected a mapping"), std::string::npos);
}

// The kinds' text is parsed once, at load; each name the file may use reads back as written.
TEST(Config, KindNamesParseAndPrintAsWritten) {
  for (const char* text :
       {"batch", "sync_batch", "group:1", "group:16", "batch_no_running_stats", "none"}) {
    const std::optional<Norm> norm = parse_norm(text);
    ASSERT_TRUE(norm.has_value()) << text;
    EXPECT_EQ(to_string(*norm), text);
  }
  EXPECT_EQ(*parse_norm("group:16"), (Norm{NormKind::Group, 16}));
  EXPECT_EQ(*parse_norm("group:9223372036854775807"),
            (Norm{NormKind::Group, std::numeric_limits<std::int64_t>::max()}));
  EXPECT_EQ(*parse_norm("batch_no_running_stats"), (Norm{NormKind::BatchNoRunningStats, 0}));
  for (const char* bad : {"", "Batch", "layer", "group", "group:", "group:0", "group:-2",
                          "group:+2", "group: 2", "group:2x", "group:9223372036854775808"})
    EXPECT_FALSE(parse_norm(bad).has_value()) << bad;
  for (auto kind : {DatasetKind::FashionMnist, DatasetKind::Synthetic, DatasetKind::Npy,
                    DatasetKind::Cifar10, DatasetKind::Cifar100, DatasetKind::ImageFolder})
    EXPECT_EQ(parse_dataset(to_string(kind)), kind);
  EXPECT_STREQ(to_string(DatasetKind::FashionMnist), "fashion_mnist");
  EXPECT_FALSE(parse_dataset("imagenet").has_value());
  for (auto kind : {ScheduleKind::Cosine, ScheduleKind::Step, ScheduleKind::Constant})
    EXPECT_EQ(parse_schedule(to_string(kind)), kind);
  EXPECT_STREQ(to_string(ScheduleKind::Constant), "constant");
  EXPECT_FALSE(parse_schedule("multistep").has_value());
}

TEST(Config, KindErrorsListTheNames) {
  EXPECT_NE(error_of("schedule:\n  name: linear\n")
                .find("test.yaml:2: schedule.name: expected one of cosine | step | constant, got "
                      "'linear'"),
            std::string::npos)
      << error_of("schedule:\n  name: linear\n");
  EXPECT_NE(error_of("data: {dataset: imagenet}\n")
                .find("data.dataset: expected one of fashion_mnist | synthetic | npy | cifar10 | "
                      "cifar100 | image_folder, got 'imagenet'"),
            std::string::npos);
  for (const char* norm : {"group:0", "group:99999999999999999999"})
    EXPECT_NE(error_of(std::string("model: {norm: '") + norm + "'}\n")
                  .find(std::string("model.norm: expected batch | sync_batch | group:G (G > 0) | "
                                    "batch_no_running_stats | none, got '") +
                        norm + "'"),
              std::string::npos)
        << norm;
}

// to_yaml is stored in checkpoints and compared on resume: the kinds print as the file wrote
// them. The text below is what to_yaml printed when the kinds were strings.
TEST(Config, ToYamlWritesKindsAsTheFileDoes) {
  const std::string yaml =
      to_yaml(parse_config("model: {norm: 'group:8', stem_channels: 8, stages: [{channels: 16}]}\n"
                           "data: {dataset: synthetic}\nschedule: {name: constant}\n",
                           "t.yaml"));
  for (const char* line :
       {"\n  norm: group:8\n", "\n  dataset: synthetic\n", "\nschedule:\n  name: constant\n"})
    EXPECT_NE(yaml.find(line), std::string::npos) << line << " in\n" << yaml;
  const std::string defaults = to_yaml(Config());
  for (const char* line :
       {"\n  norm: sync_batch\n", "\n  dataset: fashion_mnist\n", "\nschedule:\n  name: cosine\n"})
    EXPECT_NE(defaults.find(line), std::string::npos) << line << " in\n" << defaults;
}

TEST(Config, MalformedYamlIsAConfigError) {
  EXPECT_NE(error_of("train: {batch_size: [1, 2\n").find("malformed YAML"), std::string::npos);
}

TEST(Config, OverridesApplyBeforeValidation) {
  Config c = parse_config("train: {epochs: 5}\n", "o.yaml",
                          {"train.epochs=2", "model.norm=batch", "model.input=[3, 8, 8]"});
  EXPECT_EQ(c.train.epochs, 2);
  EXPECT_EQ(c.model.norm, (Norm{NormKind::Batch, 0}));
  EXPECT_EQ(c.model.input[0], 3);
  EXPECT_NE(error_of("", {"train.epochs"}).find("expected key=value"), std::string::npos);
  EXPECT_NE(error_of("", {"train.epoch=3"}).find("did you mean 'train.epochs'"), std::string::npos);
}

TEST(Config, RoundTripsThroughYaml) {
  Config c = parse_config("model: {norm: group:2}\ntrain: {batch_size: 3}\n", "a.yaml");
  Config again = parse_config(to_yaml(c), "b.yaml");
  EXPECT_EQ(again.model.norm, (Norm{NormKind::Group, 2}));
  EXPECT_EQ(again.train.batch_size, 3);
  EXPECT_EQ(to_yaml(again), to_yaml(c));
}

TEST(Config, DuplicateKeysNameBothLines) {
  EXPECT_NE(error_of("train:\n  epochs: 1\n  epochs: 7\n")
                .find("test.yaml:3: train.epochs: duplicate key (first at line 2)"),
            std::string::npos)
      << error_of("train:\n  epochs: 1\n  epochs: 7\n");
  EXPECT_NE(error_of("train: {epochs: 1}\nmodel: {}\ntrain: {batch_size: 2}\n")
                .find("test.yaml:3: train: duplicate key (first at line 1)"),
            std::string::npos);
  EXPECT_NE(error_of("model:\n  stages:\n    - {channels: 8, channels: 16}\n")
                .find("model.stages[0].channels: duplicate key"),
            std::string::npos);
}

TEST(Config, ConfigPathMustBeARegularFile) {
  std::string message = "<no error>";
  try {
    load_config(::testing::TempDir());
  } catch (const ConfigError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("is a directory, not a config file"), std::string::npos) << message;
}

// Every floating-point key: a non-finite value is refused by type, whatever its range.
TEST(Config, NonFiniteNumbersAreRefusedForEveryFloatKey) {
  for (const char* key :
       {"model.dropout", "model.bn_momentum", "model.bn_eps", "optimizer.lr", "optimizer.momentum",
        "optimizer.weight_decay", "schedule.warmup_epochs", "schedule.gamma", "train.bucket_mb"})
    for (const char* value : {".inf", "-.inf", ".nan"}) {
      const std::string assignment = std::string(key) + "=" + value;
      const std::string e = error_of("", {assignment});
      EXPECT_NE(e.find(std::string(key) + ": expected a finite number, got '" + value + "'"),
                std::string::npos)
          << e;
    }
}

TEST(Config, FloatRanges) {
  EXPECT_NE(error_of("model: {bn_momentum: 1.5}\n").find("model.bn_momentum: expected"),
            std::string::npos);
  EXPECT_EQ(parse_config("model: {bn_momentum: -1}\n", "t.yaml").model.bn_momentum, -1);
  EXPECT_EQ(parse_config("model: {bn_momentum: 1}\n", "t.yaml").model.bn_momentum, 1);
  EXPECT_NE(error_of("train: {bucket_mb: 1e6}\n").find("train.bucket_mb: expected"),
            std::string::npos);
  EXPECT_NE(error_of("schedule: {warmup_epochs: 1e300}\n").find("schedule.warmup_epochs: expected"),
            std::string::npos);
}

TEST(Config, IntegersThatWouldTruncateAreRefused) {
  EXPECT_NE(
      error_of("train: {threads: 2147483648}\n")
          .find("test.yaml:1: train.threads: expected a value in [1, 1024], got '2147483648'"),
      std::string::npos)
      << error_of("train: {threads: 2147483648}\n");
  EXPECT_NE(error_of("train: {threads: 4294967297}\n").find("train.threads: expected"),
            std::string::npos);
  EXPECT_EQ(parse_config("train: {threads: 1024}\n", "t.yaml").train.threads, 1024);
  EXPECT_NE(
      error_of("train: {batch_size: 9223372036854775807}\n").find("train.batch_size: expected"),
      std::string::npos);
}

TEST(Config, StagesMustBeNonEmptyAndDivisibleByGroups) {
  EXPECT_NE(error_of("model:\n  stages: []\n")
                .find("test.yaml:2: model.stages: expected at least one stage"),
            std::string::npos)
      << error_of("model:\n  stages: []\n");
  const std::string e =
      error_of("model:\n  norm: group:3\n  stem_channels: 6\n  stages: [{channels: 8}]\n");
  EXPECT_NE(e.find("test.yaml:2: model.norm: group:3 does not divide model.stages[0].channels (8)"),
            std::string::npos)
      << e;
  EXPECT_NE(error_of("model: {norm: 'group:3'}\n").find("does not divide model.stem_channels (32)"),
            std::string::npos);
  EXPECT_EQ(
      parse_config("model: {norm: 'group:4', stem_channels: 8, stages: [{channels: 12}]}\n", "t")
          .model.norm,
      (Norm{NormKind::Group, 4}));
}

TEST(Config, ValuesFromOverridesAreCitedAsTheOption) {
  const std::string e = error_of("train: {epochs: 5}\n", {"train.epochs=0"});
  EXPECT_NE(e.find("--set train.epochs=0: train.epochs: expected a value >= 1, got '0'"),
            std::string::npos)
      << e;
  EXPECT_EQ(e.find("test.yaml"), std::string::npos) << e;
  EXPECT_NE(error_of("", {Override("train.epochs=0", "--epochs 0")})
                .find("--epochs 0: train.epochs: expected a value >= 1, got '0'"),
            std::string::npos);
  EXPECT_NE(error_of("", {Override("model.norm=group:3", "--norm group:3")})
                .find("--norm group:3: model.norm: group:3 does not divide"),
            std::string::npos);
  EXPECT_NE(
      error_of("", {"data.dataset=imagenet"}).find("--set data.dataset=imagenet: data.dataset"),
      std::string::npos);
  EXPECT_NE(error_of("", {"train.epoch=3"}).find("--set train.epoch=3: train.epoch: unknown key"),
            std::string::npos);
  EXPECT_NE(
      error_of("", {"model.input=[1, 0, 3]"}).find("--set model.input=[1, 0, 3]: model.input"),
      std::string::npos);
  // A later error in the file itself still names the file.
  EXPECT_NE(error_of("train:\n  epochs: 0\n", {"train.seed=3"}).find("test.yaml:2: train.epochs"),
            std::string::npos);
}

TEST(Config, EmptyPathsAndHugeSizesAreRefused) {
  EXPECT_NE(error_of("train: {checkpoint_dir: ''}\n")
                .find("train.checkpoint_dir: expected a non-empty path"),
            std::string::npos);
  EXPECT_NE(error_of("data: {synthetic_train_size: 9223372036854775807}\n")
                .find("data.synthetic_train_size: expected a value in [1, "),
            std::string::npos);
}

TEST(Config, NumbersPrintInTheShortestFormThatReadsBack) {
  const std::string yaml = to_yaml(Config());
  EXPECT_NE(yaml.find("lr: 0.1\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("bn_eps: 1e-05\n"), std::string::npos) << yaml;
  Config c;
  c.optimizer.lr = 0.1 + 0.2;  // 0.30000000000000004 needs all 17 digits
  c.model.bn_momentum = 1.0 / 3;
  const Config again = parse_config(to_yaml(c), "t.yaml");
  EXPECT_EQ(again.optimizer.lr, c.optimizer.lr);
  EXPECT_EQ(again.model.bn_momentum, c.model.bn_momentum);
}

TEST(Config, MissingFileIsAConfigError) {
  EXPECT_THROW(load_config("/nonexistent/x.yaml"), ConfigError);
}

}  // namespace
}  // namespace syncbn::config
