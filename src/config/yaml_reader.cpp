#include "yaml_reader.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>

namespace syncbn::config::detail {

namespace {
// Whether `at` is `root` or inside it.
bool contains(const YAML::Node& root, const YAML::Node& at) {
  if (root.is(at)) return true;
  if (root.IsSequence())
    for (const auto& element : root)
      if (contains(element, at)) return true;
  if (root.IsMap())
    for (const auto& entry : root)
      if (contains(entry.first, at) || contains(entry.second, at)) return true;
  return false;
}

std::string line_of(const YAML::Node& node) {
  return node.Mark().line >= 0 ? std::to_string(node.Mark().line + 1) : "?";
}
}  // namespace

MapReader::MapReader(YAML::Node node, std::string path, std::string origin,
                     const OverrideNodes* overrides)
    : node_(std::move(node)),
      path_(std::move(path)),
      origin_(std::move(origin)),
      overrides_(overrides) {
  if (node_ && !node_.IsNull() && !node_.IsMap())
    fail(node_, "", "expected a mapping of keys to values");
  check_unique_keys();
}

// yaml-cpp keeps both entries of a repeated key and node[key] finds the first, so without this
// check `epochs: 1` ... `epochs: 7` silently trains 1 epoch.
void MapReader::check_unique_keys() const {
  if (!node_ || !node_.IsMap()) return;
  std::map<std::string, YAML::Node> seen;
  for (const auto& entry : node_) {
    if (!entry.first.IsScalar()) continue;  // finish() reports non-name keys
    const auto [first, fresh] = seen.emplace(entry.first.Scalar(), entry.first);
    if (!fresh)
      fail(entry.first, entry.first.Scalar(),
           "duplicate key (first at line " + line_of(first->second) + ")");
  }
}

MapReader MapReader::child(const std::string& key) {
  known_.insert(key);
  return MapReader(node_[key] ? node_[key] : YAML::Node(YAML::NodeType::Map), dotted(key), origin_,
                   overrides_);
}

std::vector<MapReader> MapReader::children(const std::string& key) {
  known_.insert(key);
  std::vector<MapReader> out;
  const YAML::Node seq = node_[key];
  if (!seq) return out;
  if (!seq.IsSequence()) fail(seq, key, "expected a list");
  for (std::size_t i = 0; i < seq.size(); ++i)
    out.emplace_back(seq[i], dotted(key) + "[" + std::to_string(i) + "]", origin_, overrides_);
  return out;
}

void MapReader::finish() const {
  if (!node_ || !node_.IsMap()) return;
  for (const auto& entry : node_) {
    // YAML allows a list or mapping as a key ("? [a, b]"); as<std::string>() would throw
    // yaml-cpp's TypedBadConversion for it, which is not a ConfigError; report it here.
    if (entry.first.IsSequence() || entry.first.IsMap())
      fail(entry.first, "", "keys must be names, got " + scalar_text(entry.first) + " as a key");
    const std::string key = entry.first.as<std::string>();
    if (known_.count(key)) continue;
    std::string hint;
    std::size_t best = 3;  // suggest only close matches
    for (const auto& k : known_) {
      const std::size_t d = edit_distance(key, k);
      if (d < best) best = d, hint = " (did you mean '" + dotted(k) + "'?)";
    }
    std::string valid;
    for (const auto& k : known_) valid += (valid.empty() ? "" : ", ") + k;
    // The key node an override adds carries no mark; its value says which option it was.
    fail(override_origin(entry.second).empty() ? entry.first : entry.second, key,
         "unknown key" + hint + "; valid keys here: " + valid);
  }
}

void MapReader::fail(const YAML::Node& at, const std::string& key, const std::string& what) const {
  const std::string name = key.empty() ? (path_.empty() ? "<top level>" : path_) : dotted(key);
  throw ConfigError(where(at) + ": " + name + ": " + what);
}

void MapReader::fail(const std::string& key, const std::string& what) const {
  fail(node_[key] ? node_[key] : node_, key, what);
}

std::string MapReader::override_origin(const YAML::Node& at) const {
  // Latest first: a later override replaces what an earlier one set, and a mapping an override
  // created holds only its own value and those of later overrides.
  if (overrides_)
    for (auto o = overrides_->rbegin(); o != overrides_->rend(); ++o)
      if (contains(o->node, at)) return o->origin;
  return "";
}

std::string MapReader::where(const YAML::Node& at) const {
  if (std::string option = override_origin(at); !option.empty()) return option;
  return at.Mark().line >= 0 ? origin_ + ":" + std::to_string(at.Mark().line + 1) : origin_;
}

std::string MapReader::scalar_text(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsSequence()) return "<list>";
  if (node.IsMap()) return "<mapping>";
  return "<null>";
}

std::string format_double(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  char buffer[32];  // the longest shortest form, e.g. -2.2250738585072014e-308, is 24
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
  return std::string(buffer, result.ptr);
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), 0);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace syncbn::config::detail
