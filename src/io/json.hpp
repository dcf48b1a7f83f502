#pragma once
// Strict JSON (RFC 8259) for safetensors headers, private to syncbn. Headers come from untrusted
// files, so every input either parses or throws JsonError. The grammar, escapes and UTF-8
// validation are nlohmann-json's (its SAX parser, which keeps no recursion of its own); this
// layer adds what safetensors needs on top: duplicate object keys are refused (the spec forbids
// them), nesting depth and the number of values are bounded, and numbers keep their literal text
// so messages quote what the file says ("got 1e1", not "got 10.0").
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "syncbn/error.hpp"

namespace syncbn::io::json {

class JsonError : public Error {
 public:
  using Error::Error;
};

struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  // String: the decoded UTF-8 text. Number: the literal exactly as written.
  std::string text;
  std::vector<Value> items;
  // Document order; keys are unique.
  std::vector<std::pair<std::string, Value>> members;
};

const char* kind_name(Value::Kind kind);

// Parses one JSON value surrounded by optional whitespace. Throws JsonError ("... at byte N",
// N counted from 0). At most `max_depth` arrays and objects may nest. The tree costs about 100
// bytes per value, so `max_values` bounds the memory hostile input can claim (a 100 MB array of
// single digits would otherwise need gigabytes). A byte order mark is refused.
Value parse(std::string_view text, std::size_t max_depth = 32, std::size_t max_values = 1u << 21);

// The value of a Number that is a non-negative integer literal fitting in 64 bits; nullopt for
// anything else (fraction, exponent, sign, overflow, another kind).
std::optional<std::uint64_t> as_uint64(const Value& value);

// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view text);

// A JSON string literal for `text` (quotes included); control characters are escaped. Throws
// JsonError when `text` is not valid UTF-8 (callers check first).
std::string quote(std::string_view text);

}  // namespace syncbn::io::json
