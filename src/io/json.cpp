#include "json.hpp"

#include <charconv>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

namespace syncbn::io::json {
namespace {

// Hands nlohmann's lexer the bytes one at a time and counts them, so refusals raised in the SAX
// handler can say where they are. Before reporting a bracket or a string the lexer has read
// exactly up to its end (it reads one byte past a number only, and hands that byte to the next
// token), so the count then is the offset just past that token.
class CountingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIterator(const char* p, std::size_t* read) : p_(p), read_(read) {}
  reference operator*() const { return *p_; }
  CountingIterator& operator++() {
    ++p_, ++*read_;
    return *this;
  }
  bool operator==(const CountingIterator& other) const { return p_ == other.p_; }
  bool operator!=(const CountingIterator& other) const { return p_ != other.p_; }

 private:
  const char* p_;
  std::size_t* read_;
};

// nlohmann's message without its "[json.exception.parse_error.101] parse error at line 1,
// column 6: " prefix (our callers count bytes, not lines) and without the "; last read: '...'"
// tail, which repeats raw input of any length.
std::string library_message(const nlohmann::detail::exception& e) {
  std::string what = e.what();
  if (const auto at = what.find("] "); at != std::string::npos) what.erase(0, at + 2);
  if (what.rfind("parse error", 0) == 0)
    if (const auto at = what.find(": "); at != std::string::npos) what.erase(0, at + 2);
  if (const auto at = what.find("; last read:"); at != std::string::npos) what.resize(at);
  if (what.size() > 200) what = what.substr(0, 200) + "...";
  return what;
}

// The SAX handler: builds the Value tree and enforces what nlohmann does not (unique keys,
// bounded depth and value count). Refusals throw JsonError straight out of the parser.
class TreeBuilder {
 public:
  TreeBuilder(const std::size_t& read, std::size_t max_depth, std::size_t max_values)
      : read_(read), max_depth_(max_depth), max_values_(max_values) {}
  Value take_root() { return std::move(root_); }

  bool null() { return add(Value{}); }
  bool boolean(bool b) {
    Value v{Value::Kind::Bool, b, {}, {}, {}};
    return add(std::move(v));
  }
  // The lexer reports only literals that start with '-' as signed integers, so an int64 0 was
  // written "-0"; every other integer's literal is its decimal form (JSON allows no leading zero
  // or '+'). Literals that overflow 64 bits arrive as floats, with their text.
  bool number_integer(std::int64_t n) { return add(number(n == 0 ? "-0" : std::to_string(n))); }
  bool number_unsigned(std::uint64_t n) { return add(number(std::to_string(n))); }
  bool number_float(double, const std::string& literal) { return add(number(literal)); }
  bool string(std::string& s) {
    Value v{Value::Kind::String, false, std::move(s), {}, {}};
    return add(std::move(v));
  }
  bool binary(nlohmann::json::binary_t&) { return false; }  // JSON text has no binary values
  bool start_object(std::size_t) { return open(Value::Kind::Object); }
  bool start_array(std::size_t) { return open(Value::Kind::Array); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(std::string& k) {
    Frame& frame = stack_.back();
    if (!frame.keys.insert(k).second)
      throw JsonError("duplicate key " + quote(k) + " ending at byte " + std::to_string(read_ - 1));
    frame.pending_key = std::move(k);
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    // `position` counts the bytes read, the offending one included.
    throw JsonError(library_message(e) + " at byte " + std::to_string(position ? position - 1 : 0));
  }

 private:
  struct Frame {
    Value* value;
    std::set<std::string> keys;  // a set keeps duplicate detection O(n log n) on huge headers
    std::string pending_key;
  };

  static Value number(std::string literal) {
    return Value{Value::Kind::Number, false, std::move(literal), {}, {}};
  }

  // Puts `v` in the innermost open container (or makes it the root); returns where it now lives.
  // Only the innermost container grows, so the pointers held by outer frames stay valid.
  Value* place(Value&& v) {
    if (++values_ > max_values_)
      throw JsonError("more than " + std::to_string(max_values_) + " values at byte " +
                      std::to_string(read_ - 1));
    if (stack_.empty()) return &(root_ = std::move(v));
    Value& parent = *stack_.back().value;
    if (parent.kind == Value::Kind::Array) return &parent.items.emplace_back(std::move(v));
    return &parent.members.emplace_back(std::move(stack_.back().pending_key), std::move(v)).second;
  }
  bool add(Value&& v) {
    place(std::move(v));
    return true;
  }
  bool open(Value::Kind kind) {
    if (stack_.size() >= max_depth_)
      throw JsonError("nesting deeper than " + std::to_string(max_depth_) + " at byte " +
                      std::to_string(read_ - 1));
    Value v;
    v.kind = kind;
    stack_.push_back(Frame{place(std::move(v)), {}, {}});
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  const std::size_t& read_;
  std::size_t max_depth_;
  std::size_t max_values_;
  std::size_t values_ = 0;
  std::vector<Frame> stack_;
  Value root_;
};

}  // namespace

Value parse(std::string_view text, std::size_t max_depth, std::size_t max_values) {
  // nlohmann would skip a UTF-8 byte order mark; RFC 8259 lets a parser refuse one instead.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") throw JsonError("byte order mark at byte 0");
  std::size_t read = 0;
  TreeBuilder builder(read, max_depth, max_values);
  const CountingIterator first(text.data(), &read), last(text.data() + text.size(), &read);
  // strict: the value must be followed by nothing but whitespace.
  if (!nlohmann::json::sax_parse(first, last, &builder, nlohmann::json::input_format_t::json,
                                 /*strict=*/true, /*ignore_comments=*/false))
    throw JsonError("JSON parser stopped at byte " + std::to_string(read));  // not reached
  return builder.take_root();
}

const char* kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::Null:
      return "null";
    case Value::Kind::Bool:
      return "a boolean";
    case Value::Kind::Number:
      return "a number";
    case Value::Kind::String:
      return "a string";
    case Value::Kind::Array:
      return "an array";
    case Value::Kind::Object:
      return "an object";
  }
  return "?";
}

std::optional<std::uint64_t> as_uint64(const Value& value) {
  if (value.kind != Value::Kind::Number) return std::nullopt;
  const std::string& s = value.text;
  std::uint64_t n = 0;
  // from_chars takes no sign, space or "0x" for unsigned types; it fails on overflow.
  const auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || error != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return n;
}

std::string quote(std::string_view text) {
  try {
    return nlohmann::json(std::string(text)).dump();
  } catch (const nlohmann::json::type_error& e) {  // 316: invalid UTF-8
    throw JsonError(std::string("cannot quote: ") + e.what());
  }
}

bool is_valid_utf8(std::string_view text) {
  try {
    quote(text);
    return true;
  } catch (const JsonError&) {
    return false;
  }
}

}  // namespace syncbn::io::json
