#include "syncbn/config/config.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "layer_reader.hpp"
#include "yaml_reader.hpp"

namespace syncbn::config {
namespace {
using detail::MapReader;

template <typename T>
using Check = std::function<std::string(const T&)>;

template <typename T>
std::string text(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return detail::format_double(v);
  else
    return std::to_string(v);
}
template <typename T>
Check<T> at_least(T low) {
  return [low](const T& v) { return v >= low ? "" : "a value >= " + text(low); };
}
template <typename T>
Check<T> between(T low, T high) {  // [low, high]
  return [=](const T& v) {
    return v >= low && v <= high ? "" : "a value in [" + text(low) + ", " + text(high) + "]";
  };
}
Check<double> in_range(double low, double high) {  // [low, high)
  return [=](const double& v) {
    return v >= low && v < high ? "" : "a number in [" + text(low) + ", " + text(high) + ")";
  };
}
Check<double> positive(double high = std::numeric_limits<double>::max()) {  // (0, high]
  const std::string expected = high < std::numeric_limits<double>::max()
                                   ? "a number in (0, " + text(high) + "]"
                                   : std::string("a positive number");
  return [=](const double& v) { return v > 0 && v <= high ? "" : expected; };
}
// data.mean / data.std: finite numbers (std also > 0), one per channel or one for all.
Check<std::vector<double>> finite_list(bool positive_only) {
  return [=](const std::vector<double>& v) -> std::string {
    for (double x : v)
      if (!std::isfinite(x) || (positive_only && x <= 0))
        return positive_only ? "a list of positive numbers" : "a list of finite numbers";
    return "";
  };
}
std::string non_empty_path(const std::string& v) {
  return v.empty() ? "a non-empty path" : "";
}

// Reads a key that names a kind: `parse` turns the text into the enum, once, here; text it does
// not know is refused with `expected` (the names the key takes).
template <typename Kind>
void read_kind(MapReader& r, const std::string& key, Kind& out,
               std::optional<Kind> (*parse)(const std::string&), const std::string& expected) {
  std::string written = to_string(out);
  r.read<std::string>(key, written, [&](const std::string& v) { return parse(v) ? "" : expected; });
  out = *parse(written);
}

// group:G splits the channels of every normalised layer into G groups: the stem's and those of
// each stage (its blocks and downsample have the stage's channels). Checked here so that the
// mistake is reported with the line of model.norm, before any process starts.
void check_groups(const MapReader& r, const ModelConfig& m) {
  if (m.norm.kind != NormKind::Group) return;
  auto check = [&](std::int64_t channels, const std::string& key) {
    if (channels % m.norm.groups != 0)
      r.fail("norm", to_string(m.norm) + " does not divide " + key + " (" +
                         std::to_string(channels) + "); choose G dividing every channel count");
  };
  check(m.stem_channels, "model.stem_channels");
  for (std::size_t i = 0; i < m.stages.size(); ++i)
    check(m.stages[i].channels, "model.stages[" + std::to_string(i) + "].channels");
}

void read_stages(MapReader& r, ModelConfig& m) {
  if (!r.has("stages")) return;
  m.stages.clear();
  for (MapReader s : r.children("stages")) {
    StageConfig stage;
    s.read<std::int64_t>("channels", stage.channels, at_least<std::int64_t>(1));
    s.read<std::int64_t>("blocks", stage.blocks, at_least<std::int64_t>(1));
    s.read<std::int64_t>("stride", stage.stride, at_least<std::int64_t>(1));
    s.finish();
    m.stages.push_back(stage);
  }
  if (m.stages.empty()) r.fail("stages", "expected at least one stage");
}

const char* const kTemplateKeys[] = {"stem_channels", "stages", "dropout", "bn_momentum", "bn_eps"};

void read_template(MapReader& r, ModelConfig& m) {
  for (const char* key : {"blocks", "norm_conversion"})
    if (r.has(key))
      r.fail(key,
             "goes with model.layers (the model language); the template (stem_channels, "
             "stages) uses model.norm");
  if (m.input.size() != 3)
    r.fail("input", "expected [C, H, W] (without model.layers, the template is a 2-d ResNet)");
  read_kind(r, "norm", m.norm, parse_norm,
            "batch | sync_batch | group:G (G > 0) | batch_no_running_stats | none");
  r.read<std::int64_t>("stem_channels", m.stem_channels, at_least<std::int64_t>(1));
  read_stages(r, m);
  r.read<double>("dropout", m.dropout, in_range(0, 1));
  r.read<double>("bn_momentum", m.bn_momentum, [](const double& v) {
    return v <= 1 ? "" : std::string("a number <= 1 (or negative for a cumulative average)");
  });
  r.read<double>("bn_eps", m.bn_eps, positive());
  check_groups(r, m);
}

// With model.layers the normalisation layers are written out, so model.norm only says whether
// BatchNorm becomes SyncBatchNorm: it is what --norm sets, and it wins over norm_conversion.
void read_language(MapReader& r, ModelConfig& m) {
  for (const char* key : kTemplateKeys)
    if (r.has(key))
      r.fail(key,
             "belongs to the template; with model.layers the model is written out (set it "
             "on the layers themselves)");
  std::string conversion = m.norm.kind == NormKind::SyncBatch ? "sync_batch" : "none";
  r.read<std::string>("norm_conversion", conversion, [](const std::string& v) {
    return v == "sync_batch" || v == "none" ? "" : std::string("sync_batch | none");
  });
  m.norm = {conversion == "sync_batch" ? NormKind::SyncBatch : NormKind::Batch, 0};
  r.read<std::string>("norm", conversion, [](const std::string& v) {
    return v == "sync_batch" || v == "batch"
               ? ""
               : std::string(
                     "sync_batch | batch (with model.layers the normalisation layers are "
                     "written out; model.norm only chooses whether BatchNorm becomes "
                     "SyncBatchNorm, as norm_conversion does)");
  });
  if (r.has("norm")) m.norm = *parse_norm(conversion);
  m.layers = detail::read_layers(r, m.num_classes);
}

void read_model(MapReader r, ModelConfig& m) {
  r.read<std::string>("name", m.name);
  r.read<std::vector<std::int64_t>>("input", m.input, [](const std::vector<std::int64_t>& v) {
    bool ok = !v.empty() && v.size() <= 4;
    for (auto d : v) ok = ok && d > 0;
    return ok ? "" : std::string("[C], [C, L], [C, H, W] or [C, D, H, W] with positive sizes");
  });
  r.read<std::int64_t>("num_classes", m.num_classes, at_least<std::int64_t>(2));
  if (r.has("layers"))
    read_language(r, m);
  else
    read_template(r, m);
  read_kind(r, "init", m.init, parse_init, "resnet | default");
  r.read<std::int64_t>("sync_group_size", m.sync_group_size, at_least<std::int64_t>(0));
  r.finish();
}

void read_data(MapReader r, DataConfig& d) {
  read_kind(r, "dataset", d.dataset, parse_dataset,
            "one of fashion_mnist | synthetic | npy | cifar10 | cifar100 | image_folder");
  r.read<std::string>("dir", d.dir);
  r.read<bool>("augment", d.augment);
  r.read<std::int64_t>("synthetic_train_size", d.synthetic_train_size,
                       between<std::int64_t>(1, kMaxSyntheticSize));
  r.read<std::int64_t>("synthetic_test_size", d.synthetic_test_size,
                       between<std::int64_t>(1, kMaxSyntheticSize));
  r.read<std::int64_t>("limit_train", d.limit_train, at_least<std::int64_t>(0));
  r.read<std::int64_t>("limit_test", d.limit_test, at_least<std::int64_t>(0));
  r.read<std::int64_t>("resize", d.resize, between<std::int64_t>(0, kMaxImageSide));
  r.read<std::vector<double>>("mean", d.mean, finite_list(false));
  r.read<std::vector<double>>("std", d.std, finite_list(true));
  r.read<std::int64_t>("crop_padding", d.crop_padding, between<std::int64_t>(0, kMaxCropPadding));
  r.read<std::int64_t>("prefetch", d.prefetch, between<std::int64_t>(0, kMaxPrefetch));
  r.finish();
}

void read_optimizer(MapReader r, OptimizerConfig& o) {
  r.read<std::string>("name", o.name, [](const std::string& v) {
    return v == "sgd" || v == "adamw" ? "" : "one of sgd | adamw";
  });
  r.read<double>("lr", o.lr, positive());
  r.read<double>("momentum", o.momentum, in_range(0, 1));
  r.read<bool>("nesterov", o.nesterov);
  double weight_decay = -1;  // absent: the chosen optimizer's default
  r.read<double>("weight_decay", weight_decay, at_least<double>(0));
  o.weight_decay = weight_decay >= 0 ? weight_decay : o.name == "adamw" ? 0.01 : 5e-4;
  r.read<std::vector<double>>("betas", o.betas, [](const std::vector<double>& v) {
    return v.size() == 2 && v[0] >= 0 && v[0] < 1 && v[1] >= 0 && v[1] < 1
               ? ""
               : "two numbers in [0, 1), [beta1, beta2]";
  });
  r.read<double>("eps", o.eps, at_least<double>(0));
  r.read<double>("clip_grad_norm", o.clip_grad_norm, at_least<double>(0));
  r.finish();
}

void read_schedule(MapReader r, ScheduleConfig& s) {
  read_kind(r, "name", s.name, parse_schedule, "one of cosine | step | constant");
  r.read<double>("warmup_epochs", s.warmup_epochs, between<double>(0, kMaxWarmupEpochs));
  r.read<std::int64_t>("step_size", s.step_size, at_least<std::int64_t>(1));
  r.read<double>("gamma", s.gamma, at_least<double>(0));
  r.finish();
}

void read_train(MapReader r, TrainConfig& t) {
  r.read<std::int64_t>("batch_size", t.batch_size, between<std::int64_t>(1, kMaxBatchSize));
  r.read<std::int64_t>("epochs", t.epochs, at_least<std::int64_t>(1));
  r.read<std::int64_t>("max_steps", t.max_steps, at_least<std::int64_t>(0));
  r.read<std::uint64_t>("seed", t.seed);
  r.read<std::int64_t>("threads", t.threads, between<std::int64_t>(1, kMaxThreads));
  r.read<double>("bucket_mb", t.bucket_mb, positive(kMaxBucketMb));
  r.read<std::string>("checkpoint_dir", t.checkpoint_dir, non_empty_path);
  r.read<std::int64_t>("checkpoint_every", t.checkpoint_every, at_least<std::int64_t>(0));
  r.read<std::string>("metrics", t.metrics);
  r.read<bool>("skip_nonfinite", t.skip_nonfinite);
  r.read<std::int64_t>("accumulate", t.accumulate, between<std::int64_t>(1, 1024));
  r.read<bool>("scale_lr", t.scale_lr);
  r.read<double>("label_smoothing", t.label_smoothing, between<double>(0, 1));
  r.read<std::int64_t>("log_every", t.log_every, at_least<std::int64_t>(0));
  r.read<double>("log_seconds", t.log_seconds, positive());
  r.finish();
}

// Sets a dotted key in the document, creating mappings on the way, and records the nodes it
// added with the override's origin. Each step must be a mapping (or absent): yaml-cpp throws its
// own BadSubscript for a key under a scalar and silently turns a sequence into a mapping, so
// both are refused here, naming the key in the way.
void apply_override(YAML::Node& root, const Override& o, detail::OverrideNodes& added) {
  const std::string& assignment = o.assignment;
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(o.origin + ": expected key=value, e.g. train.epochs=3");
  std::vector<std::string> path;
  std::stringstream keys(assignment.substr(0, eq));
  for (std::string part; std::getline(keys, part, '.');) path.push_back(part);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw ConfigError(o.origin + ": value is not valid YAML: " + e.msg);
  }
  std::vector<YAML::Node> chain{root};
  std::string walked;  // dotted keys before path[i]
  for (std::size_t i = 0; i < path.size(); ++i) {
    const YAML::Node parent = chain.back();  // a copy: push_back below may reallocate
    if (parent && !parent.IsNull() && !parent.IsMap())
      throw ConfigError(o.origin + ": " + (walked.empty() ? "the document" : "'" + walked + "'") +
                        " is not a mapping, so it has no key '" + path[i] + "'");
    walked += (walked.empty() ? "" : ".") + path[i];
    if (i + 1 == path.size()) break;
    YAML::Node next = chain.back()[path[i]];
    if (!next || next.IsNull()) {
      next = YAML::Node(YAML::NodeType::Map);
      added.push_back({next, o.origin});
    }
    chain.back()[path[i]] = next;
    chain.push_back(chain.back()[path[i]]);
  }
  chain.back()[path.back()] = value;
  added.push_back({value, o.origin});  // after the assignment, which gives `value` its node
}
}  // namespace

Override::Override(std::string assignment_text, std::string origin_text)
    : assignment(std::move(assignment_text)),
      origin(origin_text.empty() ? "--set " + assignment : std::move(origin_text)) {}

Config parse_config(const std::string& yaml, const std::string& origin,
                    const Overrides& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw ConfigError(origin + ":" + std::to_string(e.mark.line + 1) +
                      ": malformed YAML: " + e.msg);
  }
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  detail::OverrideNodes added;
  for (const auto& o : overrides) apply_override(root, o, added);
  Config c;
  c.source = origin;
  MapReader top(root, "", origin, &added);
  read_model(top.child("model"), c.model);
  read_data(top.child("data"), c.data);
  read_optimizer(top.child("optimizer"), c.optimizer);
  read_schedule(top.child("schedule"), c.schedule);
  read_train(top.child("train"), c.train);
  top.finish();
  return c;
}

Config load_config(const std::string& path, const Overrides& overrides) {
  // Checked before opening: a directory reads as an empty config (so the default model would
  // train) and opening a FIFO blocks until something writes to it.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw ConfigError("cannot read config file '" + path + "': " + std::strerror(errno));
  if (S_ISDIR(st.st_mode))
    throw ConfigError("config file '" + path + "' is a directory, not a config file");
  if (!S_ISREG(st.st_mode))
    throw ConfigError("config file '" + path +
                      "' is not a regular file (a FIFO, socket or device); give a YAML file");
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot read config file '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path, overrides);
}

}  // namespace syncbn::config
