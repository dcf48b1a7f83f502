#include "expression.hpp"

#include <cctype>
#include <limits>

namespace syncbn::config::detail {
namespace {

// Recursive descent over:  sum := product (('+' | '-') product)*
//                          product := unary (('*' | '/') unary)*
//                          unary := '-' unary | '+' unary | atom
//                          atom := integer | identifier | '(' sum ')'
class Parser {
 public:
  Parser(const std::string& text, const Lookup& lookup) : s_(text), lookup_(lookup) {}

  std::int64_t parse() {
    const std::int64_t v = sum();
    skip_space();
    if (i_ != s_.size()) fail("unexpected '" + s_.substr(i_, 1) + "'");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw ExpressionError(what + " at position " + std::to_string(i_ + 1) + " of '$" + s_ + "'");
  }
  void skip_space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool take(char c) {
    skip_space();
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  void check(bool overflowed) const {
    if (overflowed) throw ExpressionError("'$" + s_ + "' overflows a 64-bit integer");
  }

  std::int64_t sum() {
    std::int64_t v = product();
    for (;;) {
      if (take('+'))
        check(__builtin_add_overflow(v, product(), &v));
      else if (take('-'))
        check(__builtin_sub_overflow(v, product(), &v));
      else
        return v;
    }
  }

  std::int64_t product() {
    std::int64_t v = unary();
    for (;;) {
      if (take('*')) {
        check(__builtin_mul_overflow(v, unary(), &v));
      } else if (take('/')) {
        const std::int64_t r = unary();
        v = floor_div(v, r);
      } else {
        return v;
      }
    }
  }

  std::int64_t floor_div(std::int64_t a, std::int64_t b) const {
    if (b == 0) throw ExpressionError("division by zero in '$" + s_ + "'");
    check(a == std::numeric_limits<std::int64_t>::min() && b == -1);
    std::int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;  // round toward -inf, as Python's //
    return q;
  }

  std::int64_t unary() {
    if (take('-')) {
      const std::int64_t v = unary();
      check(v == std::numeric_limits<std::int64_t>::min());
      return -v;
    }
    if (take('+')) return unary();
    return atom();
  }

  std::int64_t atom() {
    skip_space();
    if (take('(')) {
      const std::int64_t v = sum();
      if (!take(')')) fail("expected ')'");
      return v;
    }
    if (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) return integer();
    if (i_ < s_.size() && (std::isalpha(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_'))
      return lookup_(identifier());
    fail(i_ < s_.size() ? "unexpected '" + s_.substr(i_, 1) + "'" : "unexpected end");
  }

  std::int64_t integer() {
    std::int64_t v = 0;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) {
      const bool over =
          __builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s_[i_] - '0', &v);
      check(over);
      ++i_;
    }
    return v;
  }

  std::string identifier() {
    const std::size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_'))
      ++i_;
    return s_.substr(start, i_ - start);
  }

  const std::string& s_;
  const Lookup& lookup_;
  std::size_t i_ = 0;
};
}  // namespace

std::int64_t evaluate(const std::string& text, const Lookup& lookup) {
  return Parser(text, lookup).parse();
}

bool is_identifier(const std::string& text) {
  if (text.empty() || !(std::isalpha(static_cast<unsigned char>(text[0])) || text[0] == '_'))
    return false;
  for (char c : text)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

}  // namespace syncbn::config::detail
