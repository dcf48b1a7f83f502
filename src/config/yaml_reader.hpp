#pragma once
// Strict, schema-by-code reading of a YAML mapping: each read() names a key the caller knows;
// finish() rejects every key nobody asked for, suggesting the nearest known one; a key given
// twice in one mapping is an error at construction. All messages carry
// "<origin>:<line>: <dotted.key>: ...", or "<option>: <dotted.key>: ..." for a value a
// command-line override put there.
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "syncbn/error.hpp"

namespace syncbn::config::detail {

// A node an override put into the document, with the option that did it ("--epochs 0"). The
// value, and any mapping the override had to create on its way to the key.
struct OverrideNode {
  YAML::Node node;
  std::string origin;
};
using OverrideNodes = std::vector<OverrideNode>;

class MapReader {
 public:
  // `overrides` (may be null) must outlive the reader and every reader made from it.
  MapReader(YAML::Node node, std::string path, std::string origin,
            const OverrideNodes* overrides = nullptr);

  // Reads `key` into `out` when present; `valid` (optional) returns "" or what was expected.
  template <typename T>
  void read(const std::string& key, T& out,
            const std::function<std::string(const T&)>& valid = {}) {
    known_.insert(key);
    const YAML::Node value = node_[key];
    if (!value) return;
    T parsed{};
    try {
      parsed = convert<T>(value);
    } catch (const YAML::Exception&) {
      fail(value, key,
           "expected " + describe_type(static_cast<const T*>(nullptr)) + ", got '" +
               scalar_text(value) + "'");
    }
    // yaml-cpp reads .inf and .nan; no key means either, and a range check that tests for the
    // bad case (`v > 1`) lets NaN through, since every comparison with NaN is false.
    if constexpr (std::is_floating_point_v<T>)
      if (!std::isfinite(parsed))
        fail(value, key, "expected a finite number, got '" + scalar_text(value) + "'");
    if (valid) {
      const std::string problem = valid(parsed);
      if (!problem.empty())
        fail(value, key, "expected " + problem + ", got '" + scalar_text(value) + "'");
    }
    out = parsed;
  }

  // The mapping under `key` (an empty one when absent).
  MapReader child(const std::string& key);
  // The sequence under `key`, one reader per mapping element.
  std::vector<MapReader> children(const std::string& key);
  bool has(const std::string& key) const { return static_cast<bool>(node_[key]); }
  // Marks `key` as known without reading it (its value is read elsewhere, or checked later).
  void allow(const std::string& key) { known_.insert(key); }
  // The raw value of `key` (a null node when absent), marked as known: for values that are
  // not plain settings (the model language's layers, `$` expressions).
  YAML::Node node(const std::string& key) {
    known_.insert(key);
    return node_[key];
  }
  const YAML::Node& node() const { return node_; }
  const std::string& path() const { return path_; }
  const std::string& origin() const { return origin_; }
  const OverrideNodes* overrides() const { return overrides_; }
  // "<origin>:<line>" of `at` (or the option that put it there), as messages begin.
  std::string where(const YAML::Node& at) const;
  // Throws on any key that was not read.
  void finish() const;
  [[noreturn]] void fail(const YAML::Node& at, const std::string& key,
                         const std::string& what) const;
  // Fails at the value of `key` (at the mapping when the key is absent).
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

 private:
  // A key with no value (`metrics:`) is YAML's null, which yaml-cpp turns into the string
  // "null"; for a string key it means the empty string, which the key's check then judges.
  template <typename T>
  static T convert(const YAML::Node& value) {
    if constexpr (std::is_same_v<T, std::string>)
      if (value.IsNull()) return std::string();
    return value.as<T>();
  }
  static std::string describe_type(const std::int64_t*) { return "an integer"; }
  static std::string describe_type(const std::uint64_t*) { return "a non-negative integer"; }
  static std::string describe_type(const double*) { return "a number"; }
  static std::string describe_type(const bool*) { return "true or false"; }
  static std::string describe_type(const std::string*) { return "a string"; }
  static std::string describe_type(const std::vector<std::int64_t>*) {
    return "a list of integers";
  }
  static std::string describe_type(const std::vector<double>*) { return "a list of numbers"; }
  static std::string scalar_text(const YAML::Node& node);
  void check_unique_keys() const;
  // The option that put `at` into the document ("" when it came from the file).
  std::string override_origin(const YAML::Node& at) const;
  std::string dotted(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

  YAML::Node node_;
  std::string path_, origin_;
  const OverrideNodes* overrides_;
  std::set<std::string> known_;
};

// The shortest text that reads back as the same double ("0.1", not "0.10000000000000001");
// YAML's .inf, -.inf and .nan for the non-finite values.
std::string format_double(double v);

// Edit distance, for "did you mean" suggestions.
std::size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace syncbn::config::detail
