#include "layer_reader.hpp"

#include <algorithm>
#include <map>

#include "expression.hpp"
#include "layer_args.hpp"

namespace syncbn::config::detail {
namespace {

using Env = std::map<std::string, YAML::Node>;  // $ names and their (resolved) values

// Nested repeats multiply: a bound keeps a typo (repeat: 100000 inside repeat: 100000) an
// error instead of an out-of-memory kill.
constexpr std::int64_t kMaxLayers = 1'000'000;

// The nearest of `candidates` to `word`, as " (did you mean 'x'?)", or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  std::string hint;
  std::size_t best = 3;  // suggest only close matches
  for (const auto& c : candidates)
    if (const std::size_t d = edit_distance(word, c); d < best) best = d, hint = c;
  return hint.empty() ? "" : " (did you mean '" + hint + "'?)";
}

// Where a layer's settings come from: its own mapping and, for the first copy of a repeat,
// the `first` mapping, which wins. Both mark the keys they are asked for as known.
class Source {
 public:
  Source(MapReader* own, MapReader* first) : own_(own), first_(first) {}
  YAML::Node get(const std::string& key) {
    YAML::Node mine = own_ ? own_->node(key) : YAML::Node(YAML::NodeType::Undefined);
    if (first_ && first_->has(key)) return first_->node(key);
    if (first_) first_->allow(key);
    return mine;
  }
  void finish() const {
    if (own_) own_->finish();
    if (first_) first_->finish();
  }

 private:
  MapReader* own_;
  MapReader* first_;
};

class LayerReader {
 public:
  LayerReader(MapReader& model, std::int64_t num_classes) : model_(model) {
    base_env_["num_classes"] = YAML::Node(num_classes);
  }

  void read_blocks(const YAML::Node& blocks) {
    if (!blocks || blocks.IsNull()) return;
    MapReader check(blocks, "model.blocks", model_.origin(), model_.overrides());  // duplicates
    for (const auto& entry : blocks) {
      const std::string name = entry.first.as<std::string>();
      const std::string path = "model.blocks." + name;
      if (parse_layer_type(name))
        fail(entry.first, path, "'" + name + "' is a built-in layer type; choose another name");
      if (!entry.second.IsMap()) fail(entry.second, path, "expected a mapping (a layer with args)");
      definitions_[name] = entry.second;
    }
  }

  std::vector<LayerSpec> read_top(const YAML::Node& layers) {
    std::vector<LayerSpec> out = children(layers, "model.layers", base_env_);
    if (out.empty()) fail(layers, "model.layers", "expected at least one layer");
    return out;
  }

 private:
  [[noreturn]] void fail(const YAML::Node& at, const std::string& path,
                         const std::string& what) const {
    throw ConfigError(model_.where(at) + ": " + path + ": " + what);
  }
  MapReader reader(const YAML::Node& node, const std::string& path) const {
    return MapReader(node, path, model_.origin(), model_.overrides());
  }

  // A mapping (children named by key, in file order) or a list (named 0, 1, ...).
  std::vector<LayerSpec> children(const YAML::Node& node, const std::string& path, const Env& env) {
    std::vector<LayerSpec> out;
    if (node.IsSequence()) {
      for (std::size_t i = 0; i < node.size(); ++i)
        out.push_back(layer(node[i], std::to_string(i), path + "." + std::to_string(i), env));
      return out;
    }
    if (!node.IsMap()) fail(node, path, "expected a mapping of named layers or a list of layers");
    reader(node, path);  // refuses repeated names
    for (const auto& entry : node) {
      const std::string name = entry.first.IsScalar() ? entry.first.Scalar() : "";
      if (name.empty() || name.find('.') != std::string::npos)
        fail(entry.first, path, "layer names must be non-empty and contain no '.'");
      out.push_back(layer(entry.second, name, path + "." + name, env));
    }
    return out;
  }

  // One written layer: a type alone ("relu"), or a mapping with type, arguments, and maybe
  // repeat/first.
  LayerSpec layer(const YAML::Node& node, const std::string& name, const std::string& path,
                  const Env& env, bool definition = false) {
    if (node.IsScalar()) {
      Source none(nullptr, nullptr);
      return make(node.Scalar(), node, name, path, env, none);
    }
    if (!node.IsMap()) fail(node, path, "expected a layer: a type name or a mapping with 'type'");
    MapReader r = reader(node, path);
    if (definition) r.allow("args");
    const YAML::Node type = r.node("type");
    if (!type || !type.IsScalar() || type.Scalar().empty())
      fail(type ? type : node, path + ".type", "expected a layer type (a name)");
    const YAML::Node repeat = r.node("repeat"), first = r.node("first");
    if (!repeat) {
      if (first) fail(first, path + ".first", "'first' goes with 'repeat'");
      Source own(&r, nullptr);
      return make(type.Scalar(), node, name, path, env, own);
    }
    const std::int64_t copies = integer(repeat, path + ".repeat", env);
    if (copies < 1) fail(repeat, path + ".repeat", "expected an integer >= 1");
    LayerSpec seq = container(LayerType::Sequential, node, name, path);
    for (std::int64_t i = 0; i < copies; ++i) {
      const std::string index = std::to_string(i);
      Source own(&r, nullptr);
      if (i > 0 || !first) {
        seq.layers.push_back(make(type.Scalar(), node, index, path + "." + index, env, own));
        continue;
      }
      MapReader f = reader(first, path + ".first");
      Source with_first(&r, &f);
      seq.layers.push_back(make(type.Scalar(), node, index, path + "." + index, env, with_first));
    }
    return seq;
  }

  LayerSpec container(LayerType type, const YAML::Node& at, const std::string& name,
                      const std::string& path) {
    if (++count_ > kMaxLayers)
      fail(at, path,
           "the model has more than " + std::to_string(kMaxLayers) +
               " layers once expanded; check the repeat counts");
    LayerSpec spec;
    spec.type = type;
    spec.name = name;
    spec.path = path;
    spec.where = model_.where(at) + ": " + path;
    return spec;
  }

  LayerSpec make(const std::string& type, const YAML::Node& at, const std::string& name,
                 const std::string& path, const Env& env, Source& src) {
    if (definitions_.count(type)) return instance(type, at, name, path, env, src);
    const std::optional<LayerType> builtin = parse_layer_type(type);
    if (!builtin) {
      std::vector<std::string> known = layer_type_names();
      for (const auto& [n, _] : definitions_) known.push_back(n);
      std::string list;
      for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
      fail(at, path,
           "unknown layer type '" + type + "'" + did_you_mean(type, known) +
               "; known types: " + list);
    }
    LayerSpec spec = container(*builtin, at, name, path);
    if (*builtin == LayerType::Sequential)
      read_sequential(spec, at, env, src);
    else if (*builtin == LayerType::Residual)
      read_residual(spec, at, env, src);
    else
      read_args(spec, at, env, src);
    src.finish();
    return spec;
  }

  // Unknown keys are reported before missing ones: a misspelt required argument reads as the
  // typo it is ("out_channel", did you mean ...), not as a missing one.
  void read_args(LayerSpec& spec, const YAML::Node& at, const Env& env, Source& src) {
    const int dims = spatial_dims(spec.type);
    std::string missing;
    for (const ArgInfo& info : args_of(spec.type)) {
      const YAML::Node raw = src.get(info.name);
      const std::string key = spec.path + "." + info.name;
      if (!raw) {
        if (info.required && missing.empty()) missing = info.name;
        continue;
      }
      const YAML::Node value = resolve(raw, key, env);
      ArgValue v;
      const std::string expected = convert_arg(info, dims, value, v);
      if (!expected.empty()) fail(raw, key, "expected " + expected + ", got " + text(value));
      spec.args[info.name] = v;
    }
    src.finish();
    if (!missing.empty())
      fail(at, spec.path, std::string(to_string(spec.type)) + " needs '" + missing + "'");
  }

  void read_sequential(LayerSpec& spec, const YAML::Node& at, const Env& env, Source& src) {
    const YAML::Node layers = src.get("layers");
    if (!layers) fail(at, spec.path, "sequential needs 'layers'");
    spec.layers = children(layers, spec.path, env);
  }

  void read_residual(LayerSpec& spec, const YAML::Node& at, const Env& env, Source& src) {
    const YAML::Node main = src.get("main"), shortcut = src.get("shortcut");
    if (!main || !main.IsMap() || main.size() == 0)
      fail(main ? main : at, spec.path + ".main", "expected a mapping of named layers");
    spec.shortcut_name =
        word(src.get("shortcut_name"), spec.path, "shortcut_name", "downsample", {});
    spec.shortcut_when = word(src.get("shortcut_when"), spec.path, "shortcut_when", "always",
                              {"always", "shape_changes"}) == "always"
                             ? ShortcutWhen::Always
                             : ShortcutWhen::ShapeChanges;
    spec.activation =
        word(src.get("activation"), spec.path, "activation", "relu", {"relu", "none"}) == "relu"
            ? Activation::ReLU
            : Activation::None;
    spec.layers = children(main, spec.path, env);
    for (const auto& child : spec.layers)
      if (child.name == spec.shortcut_name)
        fail(at, spec.path,
             "the main path has a layer called '" + child.name +
                 "', the shortcut's name; set shortcut_name to another");
    if (shortcut) {
      if (!shortcut.IsMap()) fail(shortcut, spec.path + ".shortcut", "expected a mapping");
      spec.shortcut = children(shortcut, spec.path + "." + spec.shortcut_name, env);
    }
  }

  // A string setting with a default, one of `choices` when given.
  std::string word(const YAML::Node& v, const std::string& path, const std::string& key,
                   const std::string& fallback, const std::vector<std::string>& choices) const {
    if (!v) return fallback;
    std::string choice_list;
    for (const auto& c : choices) choice_list += (choice_list.empty() ? "" : " | ") + c;
    const bool ok = v.IsScalar() && !v.Scalar().empty() &&
                    v.Scalar().find('.') == std::string::npos &&
                    (choices.empty() || std::count(choices.begin(), choices.end(), v.Scalar()));
    if (!ok)
      fail(v, path + "." + key,
           "expected " + (choices.empty() ? std::string("a name without '.'") : choice_list) +
               ", got " + text(v));
    return v.Scalar();
  }

  // A layer whose type is a definition of model.blocks.
  LayerSpec instance(const std::string& type, const YAML::Node& at, const std::string& name,
                     const std::string& path, const Env& env, Source& src) {
    if (std::count(stack_.begin(), stack_.end(), type)) {
      std::string chain;
      for (const auto& s : stack_) chain += s + " -> ";
      fail(at, path, "block '" + type + "' is defined in terms of itself (" + chain + type + ")");
    }
    const YAML::Node def = definitions_.at(type);
    const std::string def_path = "model.blocks." + type;
    Env inner = base_env_;
    std::string missing;
    const YAML::Node args = def["args"];
    if (args && !args.IsNull()) {
      if (!args.IsMap()) fail(args, def_path + ".args", "expected a mapping of names to defaults");
      reader(args, def_path + ".args");  // refuses repeated names
      for (const auto& entry : args) {
        const std::string arg = entry.first.as<std::string>();
        if (!is_identifier(arg) || arg == "num_classes")
          fail(entry.first, def_path + ".args", "'" + arg + "' cannot be an argument name");
        if (const YAML::Node given = src.get(arg))
          inner[arg] = resolve(given, path + "." + arg, env);
        else if (entry.second.IsScalar() && entry.second.Scalar() == "required")
          missing = missing.empty() ? arg : missing;
        else
          inner[arg] = resolve(entry.second, def_path + ".args." + arg, base_env_);
      }
    }
    src.finish();
    if (!missing.empty()) fail(at, path, type + " needs argument '" + missing + "'");
    stack_.push_back(type);
    LayerSpec spec = layer(def, name, path, inner, /*definition=*/true);
    stack_.pop_back();
    return spec;
  }

  // `raw` with its `$` expressions evaluated in `env` (elements of a list too).
  YAML::Node resolve(const YAML::Node& raw, const std::string& key, const Env& env) const {
    if (raw.IsSequence()) {
      YAML::Node out(YAML::NodeType::Sequence);
      for (const auto& element : raw) out.push_back(resolve(element, key, env));
      return out;
    }
    if (!raw.IsScalar() || raw.Scalar().empty() || raw.Scalar()[0] != '$') return raw;
    const std::string expr = raw.Scalar().substr(1);
    if (is_identifier(expr)) return lookup(raw, key, env, expr);
    try {
      return YAML::Node(evaluate(expr, [&](const std::string& id) {
        std::int64_t v = 0;
        const YAML::Node n = lookup(raw, key, env, id);
        try {
          v = n.as<std::int64_t>();
        } catch (const YAML::Exception&) {
          throw ExpressionError("'" + id + "' is " + text(n) + ", not an integer, in '" +
                                raw.Scalar() + "'");
        }
        return v;
      }));
    } catch (const ExpressionError& e) {
      fail(raw, key, e.what());
    }
  }

  YAML::Node lookup(const YAML::Node& raw, const std::string& key, const Env& env,
                    const std::string& id) const {
    if (const auto it = env.find(id); it != env.end()) return it->second;
    std::vector<std::string> names;
    std::string list;
    for (const auto& [n, _] : env) names.push_back(n), list += (list.empty() ? "" : ", ") + n;
    fail(raw, key,
         "unknown name '" + id + "' in '" + raw.Scalar() + "'" + did_you_mean(id, names) +
             "; names here: " + list);
  }

  std::int64_t integer(const YAML::Node& raw, const std::string& key, const Env& env) const {
    const YAML::Node v = resolve(raw, key, env);
    try {
      if (v.IsScalar()) return v.as<std::int64_t>();
    } catch (const YAML::Exception&) {
    }
    fail(raw, key, "expected an integer, got " + text(v));
  }

  static std::string text(const YAML::Node& v) {
    if (v.IsScalar()) return "'" + v.Scalar() + "'";
    if (v.IsSequence()) return "a list";
    if (v.IsMap()) return "a mapping";
    return "null";
  }

  MapReader& model_;
  Env base_env_;
  std::map<std::string, YAML::Node> definitions_;
  std::vector<std::string> stack_;  // definitions being expanded, outermost first
  std::int64_t count_ = 0;          // layers made so far
};
}  // namespace

std::vector<LayerSpec> read_layers(MapReader& model, std::int64_t num_classes) {
  LayerReader reader(model, num_classes);
  reader.read_blocks(model.node("blocks"));
  return reader.read_top(model.node("layers"));
}

}  // namespace syncbn::config::detail
