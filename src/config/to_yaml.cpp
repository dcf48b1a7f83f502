#include <yaml-cpp/yaml.h>

#include "syncbn/config/config.hpp"
#include "yaml_reader.hpp"

namespace syncbn::config {
namespace {
// yaml-cpp writes doubles with 17 significant digits (0.10000000000000001); the shortest form
// reads back the same and is what the user wrote.
std::string number(double v) {
  return detail::format_double(v);
}
}  // namespace

std::string to_yaml(const Config& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << c.model.name;
  out << YAML::Key << "input" << YAML::Value << YAML::Flow << c.model.input;
  out << YAML::Key << "num_classes" << YAML::Value << c.model.num_classes;
  out << YAML::Key << "norm" << YAML::Value << to_string(c.model.norm);
  out << YAML::Key << "stem_channels" << YAML::Value << c.model.stem_channels;
  out << YAML::Key << "stages" << YAML::Value << YAML::BeginSeq;
  for (const auto& s : c.model.stages)
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "channels" << YAML::Value << s.channels
        << YAML::Key << "blocks" << YAML::Value << s.blocks << YAML::Key << "stride" << YAML::Value
        << s.stride << YAML::EndMap;
  out << YAML::EndSeq;
  out << YAML::Key << "dropout" << YAML::Value << number(c.model.dropout);
  out << YAML::Key << "bn_momentum" << YAML::Value << number(c.model.bn_momentum);
  out << YAML::Key << "bn_eps" << YAML::Value << number(c.model.bn_eps) << YAML::EndMap;
  out << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "dataset" << YAML::Value << to_string(c.data.dataset) << YAML::Key << "dir"
      << YAML::Value << c.data.dir;
  out << YAML::Key << "augment" << YAML::Value << c.data.augment;
  out << YAML::Key << "synthetic_train_size" << YAML::Value << c.data.synthetic_train_size;
  out << YAML::Key << "synthetic_test_size" << YAML::Value << c.data.synthetic_test_size;
  out << YAML::Key << "limit_train" << YAML::Value << c.data.limit_train;
  out << YAML::Key << "limit_test" << YAML::Value << c.data.limit_test << YAML::EndMap;
  out << YAML::Key << "optimizer" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "lr" << YAML::Value << number(c.optimizer.lr) << YAML::Key << "momentum"
      << YAML::Value << number(c.optimizer.momentum) << YAML::Key << "nesterov" << YAML::Value
      << c.optimizer.nesterov << YAML::Key << "weight_decay" << YAML::Value
      << number(c.optimizer.weight_decay) << YAML::EndMap;
  out << YAML::Key << "schedule" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << to_string(c.schedule.name) << YAML::Key
      << "warmup_epochs" << YAML::Value << number(c.schedule.warmup_epochs) << YAML::Key
      << "step_size" << YAML::Value << c.schedule.step_size << YAML::Key << "gamma" << YAML::Value
      << number(c.schedule.gamma) << YAML::EndMap;
  out << YAML::Key << "train" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "batch_size" << YAML::Value << c.train.batch_size << YAML::Key << "epochs"
      << YAML::Value << c.train.epochs << YAML::Key << "max_steps" << YAML::Value
      << c.train.max_steps << YAML::Key << "seed" << YAML::Value << c.train.seed << YAML::Key
      << "threads" << YAML::Value << c.train.threads << YAML::Key << "bucket_mb" << YAML::Value
      << number(c.train.bucket_mb) << YAML::Key << "checkpoint_dir" << YAML::Value
      << c.train.checkpoint_dir << YAML::Key << "checkpoint_every" << YAML::Value
      << c.train.checkpoint_every << YAML::Key << "metrics" << YAML::Value << c.train.metrics
      << YAML::Key << "skip_nonfinite" << YAML::Value << c.train.skip_nonfinite << YAML::EndMap;
  out << YAML::EndMap;
  return out.c_str();
}

}  // namespace syncbn::config
