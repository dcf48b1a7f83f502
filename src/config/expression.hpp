#pragma once
// The model language's `$` expressions: integers, identifiers, + - * and / (floor division,
// as Python's //), unary minus and parentheses, with the usual precedence. Overflow and
// division by zero are errors, not wrap-arounds.
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace syncbn::config::detail {

// What went wrong in an expression; the caller adds the file, line and key.
class ExpressionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The value of an identifier; throws ExpressionError itself for an unknown or non-integer one.
using Lookup = std::function<std::int64_t(const std::string& identifier)>;

// Evaluates `text` (without the leading `$`). Throws ExpressionError.
std::int64_t evaluate(const std::string& text, const Lookup& lookup);

// Whether `text` is one identifier ([A-Za-z_][A-Za-z0-9_]*), which `$name` substitutes whole
// (so an argument may carry a bool or a number, not only an integer).
bool is_identifier(const std::string& text);

}  // namespace syncbn::config::detail
