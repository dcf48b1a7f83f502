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

// A list of doubles in the shortest form that reads back the same; absent when empty.
void emit_numbers(YAML::Emitter& out, const char* key, const std::vector<double>& values) {
  if (values.empty()) return;
  out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (double v : values) out << number(v);
  out << YAML::EndSeq;
}

void emit_arg(YAML::Emitter& out, const ArgValue& v) {
  switch (v.kind) {
    case ArgValue::Kind::Int:
      out << v.integer;
      return;
    case ArgValue::Kind::Sizes:
      if (v.sizes.size() == 1)
        out << v.sizes[0];
      else
        out << YAML::Flow << v.sizes;
      return;
    case ArgValue::Kind::Bool:
      out << v.boolean;
      return;
    case ArgValue::Kind::Number:
      out << number(v.number);
      return;
    case ArgValue::Kind::Null:
      out << YAML::Null;
      return;
  }
}

void emit_layers(YAML::Emitter& out, const std::vector<LayerSpec>& layers);

// One layer as a mapping: type, its written arguments, and a container's parts.
void emit_layer(YAML::Emitter& out, const LayerSpec& l) {
  out << YAML::BeginMap << YAML::Key << "type" << YAML::Value << to_string(l.type);
  for (const auto& [key, value] : l.args) {
    out << YAML::Key << key << YAML::Value;
    emit_arg(out, value);
  }
  if (l.type == LayerType::Sequential) {
    out << YAML::Key << "layers" << YAML::Value;
    emit_layers(out, l.layers);
  }
  if (l.type == LayerType::Residual) {
    out << YAML::Key << "main" << YAML::Value;
    emit_layers(out, l.layers);
    if (l.shortcut) {
      out << YAML::Key << "shortcut" << YAML::Value;
      emit_layers(out, *l.shortcut);
    }
    out << YAML::Key << "shortcut_name" << YAML::Value << l.shortcut_name;
    out << YAML::Key << "shortcut_when" << YAML::Value
        << (l.shortcut_when == ShortcutWhen::Always ? "always" : "shape_changes");
    out << YAML::Key << "activation" << YAML::Value
        << (l.activation == Activation::ReLU ? "relu" : "none");
  }
  out << YAML::EndMap;
}

void emit_layers(YAML::Emitter& out, const std::vector<LayerSpec>& layers) {
  out << YAML::BeginMap;
  for (const auto& l : layers) {
    out << YAML::Key << YAML::DoubleQuoted << l.name << YAML::Value;
    emit_layer(out, l);
  }
  out << YAML::EndMap;
}

void emit_template(YAML::Emitter& out, const ModelConfig& m) {
  out << YAML::Key << "norm" << YAML::Value << to_string(m.norm);
  out << YAML::Key << "stem_channels" << YAML::Value << m.stem_channels;
  out << YAML::Key << "stages" << YAML::Value << YAML::BeginSeq;
  for (const auto& s : m.stages)
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "channels" << YAML::Value << s.channels
        << YAML::Key << "blocks" << YAML::Value << s.blocks << YAML::Key << "stride" << YAML::Value
        << s.stride << YAML::EndMap;
  out << YAML::EndSeq;
  out << YAML::Key << "dropout" << YAML::Value << number(m.dropout);
  out << YAML::Key << "bn_momentum" << YAML::Value << number(m.bn_momentum);
  out << YAML::Key << "bn_eps" << YAML::Value << number(m.bn_eps);
  // Printed only when set, so a template config's text stays what checkpoints already hold.
  if (m.init != InitKind::Resnet) out << YAML::Key << "init" << YAML::Value << to_string(m.init);
  if (m.sync_group_size != 0)
    out << YAML::Key << "sync_group_size" << YAML::Value << m.sync_group_size;
}

void emit_language(YAML::Emitter& out, const ModelConfig& m) {
  out << YAML::Key << "norm_conversion" << YAML::Value
      << (m.norm.kind == NormKind::SyncBatch ? "sync_batch" : "none");
  out << YAML::Key << "init" << YAML::Value << to_string(m.init);
  out << YAML::Key << "sync_group_size" << YAML::Value << m.sync_group_size;
  out << YAML::Key << "layers" << YAML::Value;
  emit_layers(out, m.layers);
}
}  // namespace

std::string to_yaml(const Config& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << c.model.name;
  out << YAML::Key << "input" << YAML::Value << YAML::Flow << c.model.input;
  out << YAML::Key << "num_classes" << YAML::Value << c.model.num_classes;
  if (c.model.layers.empty())
    emit_template(out, c.model);
  else
    emit_language(out, c.model);
  out << YAML::EndMap;
  out << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "dataset" << YAML::Value << to_string(c.data.dataset) << YAML::Key << "dir"
      << YAML::Value << c.data.dir;
  out << YAML::Key << "augment" << YAML::Value << c.data.augment;
  out << YAML::Key << "synthetic_train_size" << YAML::Value << c.data.synthetic_train_size;
  out << YAML::Key << "synthetic_test_size" << YAML::Value << c.data.synthetic_test_size;
  out << YAML::Key << "limit_train" << YAML::Value << c.data.limit_train;
  out << YAML::Key << "limit_test" << YAML::Value << c.data.limit_test;
  out << YAML::Key << "resize" << YAML::Value << c.data.resize;
  emit_numbers(out, "mean", c.data.mean);
  emit_numbers(out, "std", c.data.std);
  out << YAML::Key << "crop_padding" << YAML::Value << c.data.crop_padding;
  out << YAML::Key << "prefetch" << YAML::Value << c.data.prefetch << YAML::EndMap;
  out << YAML::Key << "optimizer" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << c.optimizer.name;
  out << YAML::Key << "lr" << YAML::Value << number(c.optimizer.lr) << YAML::Key << "momentum"
      << YAML::Value << number(c.optimizer.momentum) << YAML::Key << "nesterov" << YAML::Value
      << c.optimizer.nesterov << YAML::Key << "weight_decay" << YAML::Value
      << number(c.optimizer.weight_decay);
  out << YAML::Key << "betas" << YAML::Value << YAML::Flow << YAML::BeginSeq
      << number(c.optimizer.betas[0]) << number(c.optimizer.betas[1]) << YAML::EndSeq;
  out << YAML::Key << "eps" << YAML::Value << number(c.optimizer.eps);
  out << YAML::Key << "clip_grad_norm" << YAML::Value << number(c.optimizer.clip_grad_norm)
      << YAML::EndMap;
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
      << YAML::Key << "skip_nonfinite" << YAML::Value << c.train.skip_nonfinite;
  out << YAML::Key << "accumulate" << YAML::Value << c.train.accumulate;
  out << YAML::Key << "scale_lr" << YAML::Value << c.train.scale_lr;
  out << YAML::Key << "label_smoothing" << YAML::Value << number(c.train.label_smoothing);
  out << YAML::Key << "log_every" << YAML::Value << c.train.log_every << YAML::Key << "log_seconds"
      << YAML::Value << number(c.train.log_seconds) << YAML::EndMap;
  out << YAML::EndMap;
  return out.c_str();
}

}  // namespace syncbn::config
