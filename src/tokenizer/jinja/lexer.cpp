#include "tokenizer/jinja/lexer.h"

#include <cstdint>
#include <utility>

#include "chronos/core/error.h"
#include "tokenizer/unicode.h"

namespace chronos::jinja {
namespace {

// The template after preprocessing, with the original line of every byte for error messages.
struct Source {
  std::string text;
  std::vector<int> line;

  size_t size() const { return text.size(); }
  char at(size_t i) const { return i < text.size() ? text[i] : '\0'; }
  bool starts(size_t i, const char* s) const { return text.compare(i, std::char_traits<char>::length(s), s) == 0; }
};

Source with_lines(const std::string& text) {
  Source s{text, std::vector<int>(text.size())};
  int line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    s.line[i] = line;
    if (text[i] == '\n') ++line;
  }
  return s;
}

// Keeps the bytes whose `keep` flag is set.
Source filtered(const Source& s, const std::vector<bool>& keep) {
  Source out;
  out.text.reserve(s.size());
  out.line.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i)
    if (keep[i]) {
      out.text.push_back(s.text[i]);
      out.line.push_back(s.line[i]);
    }
  return out;
}

// Where a JavaScript multiline ^ matches: after \n, \r, U+2028 or U+2029.
bool after_line_terminator(const std::string& t, size_t i) {
  if (i == 0) return true;
  if (t[i - 1] == '\n' || t[i - 1] == '\r') return true;
  return i >= 3 && static_cast<unsigned char>(t[i - 3]) == 0xE2 && static_cast<unsigned char>(t[i - 2]) == 0x80 &&
         (static_cast<unsigned char>(t[i - 1]) == 0xA8 || static_cast<unsigned char>(t[i - 1]) == 0xA9);
}

Source preprocess(const std::string& template_text) {
  Source s = with_lines(template_text);
  if (!s.text.empty() && s.text.back() == '\n') {
    s.text.pop_back();
    s.line.pop_back();
  }
  // lstrip_blocks: spaces and tabs from a line start up to "{%", "{#" or "{-".
  std::vector<bool> keep(s.size(), true);
  for (size_t i = 0; i < s.size(); ++i) {
    if (!after_line_terminator(s.text, i)) continue;
    size_t j = i;
    while (j < s.size() && (s.text[j] == ' ' || s.text[j] == '\t')) ++j;
    if (j > i && s.at(j) == '{' && (s.at(j + 1) == '#' || s.at(j + 1) == '%' || s.at(j + 1) == '-'))
      for (size_t k = i; k < j; ++k) keep[k] = false;
  }
  s = filtered(s, keep);
  // trim_blocks: the newline right after "#}", "%}" or "-}".
  keep.assign(s.size(), true);
  for (size_t i = 0; i + 2 < s.size(); ++i)
    if ((s.text[i] == '#' || s.text[i] == '%' || s.text[i] == '-') && s.text[i + 1] == '}' && s.text[i + 2] == '\n') {
      keep[i + 2] = false;
      i += 2;
    }
  s = filtered(s, keep);
  // {% generation %} / {% endgeneration %}: dropped with the white space around them, which their
  // own "-" markers say to drop too; otherwise that white space stays.
  keep.assign(s.size(), true);
  size_t from = 0;
  while (true) {
    const size_t open = s.text.find("{%", from);
    if (open == std::string::npos) break;
    size_t p = open + 2;
    const bool lstrip = s.at(p) == '-';
    if (lstrip) ++p;
    while (size_t n = js_space_at(s.text, p)) p += n;
    if (s.starts(p, "end")) p += 3;
    if (!s.starts(p, "generation")) {
      from = open + 2;
      continue;
    }
    p += 10;
    while (size_t n = js_space_at(s.text, p)) p += n;
    const bool rstrip = s.at(p) == '-';
    if (rstrip) ++p;
    if (!s.starts(p, "%}")) {
      from = open + 2;
      continue;
    }
    const size_t close = p + 2;
    size_t before = open;
    while (before > from) {  // white space before the tag, not already part of an earlier match
      size_t start = before - 1;
      while (start > from && (static_cast<unsigned char>(s.text[start]) & 0xC0) == 0x80) --start;
      if (js_space_at(s.text, start) != before - start) break;
      before = start;
    }
    size_t after = close;
    while (size_t n = js_space_at(s.text, after)) after += n;
    for (size_t k = open; k < close; ++k) keep[k] = false;
    if (lstrip)
      for (size_t k = before; k < open; ++k) keep[k] = false;
    if (rstrip)
      for (size_t k = close; k < after; ++k) keep[k] = false;
    from = after;
  }
  return filtered(s, keep);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

struct MappedToken {
  const char* text;
  TokenType type;
};

// Tried in this order at each position (two-character operators before their prefixes).
const MappedToken kMapped[] = {
    {"{%", TokenType::OpenStatement},
    {"%}", TokenType::CloseStatement},
    {"{{", TokenType::OpenExpression},
    {"}}", TokenType::CloseExpression},
    {"(", TokenType::OpenParen},
    {")", TokenType::CloseParen},
    {"{", TokenType::OpenCurlyBracket},
    {"}", TokenType::CloseCurlyBracket},
    {"[", TokenType::OpenSquareBracket},
    {"]", TokenType::CloseSquareBracket},
    {",", TokenType::Comma},
    {".", TokenType::Dot},
    {":", TokenType::Colon},
    {"|", TokenType::Pipe},
    {"<=", TokenType::ComparisonBinaryOperator},
    {">=", TokenType::ComparisonBinaryOperator},
    {"==", TokenType::ComparisonBinaryOperator},
    {"!=", TokenType::ComparisonBinaryOperator},
    {"<", TokenType::ComparisonBinaryOperator},
    {">", TokenType::ComparisonBinaryOperator},
    {"+", TokenType::AdditiveBinaryOperator},
    {"-", TokenType::AdditiveBinaryOperator},
    {"~", TokenType::AdditiveBinaryOperator},
    {"**", TokenType::ExponentiationBinaryOperator},
    {"*", TokenType::MultiplicativeBinaryOperator},
    {"//", TokenType::MultiplicativeBinaryOperator},
    {"/", TokenType::MultiplicativeBinaryOperator},
    {"%", TokenType::MultiplicativeBinaryOperator},
    {"=", TokenType::Equals},
};

class Lexer {
 public:
  Lexer(Source src, const std::string& name) : src_(std::move(src)), name_(name) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      if (tokens_.empty() || last_is(TokenType::CloseStatement) || last_is(TokenType::CloseExpression) ||
          last_is(TokenType::Comment)) {
        const size_t start = pos_;
        while (pos_ < src_.size() && !(src_.at(pos_) == '{' && (src_.at(pos_ + 1) == '%' || src_.at(pos_ + 1) == '{' ||
                                                                src_.at(pos_ + 1) == '#')))
          ++pos_;
        if (pos_ > start) {
          push(src_.text.substr(start, pos_ - start), TokenType::Text, start);
          continue;
        }
      }
      if (src_.at(pos_) == '{' && src_.at(pos_ + 1) == '#') {
        comment();
        continue;
      }
      if (src_.starts(pos_, "{%-")) {
        strip_trailing_space();
        push("{%", TokenType::OpenStatement, pos_);
        pos_ += 3;
        continue;
      }
      if (src_.starts(pos_, "{{-")) {
        strip_trailing_space();
        push("{{", TokenType::OpenExpression, pos_);
        curly_depth_ = 0;
        pos_ += 3;
        continue;
      }
      while (size_t n = js_space_at(src_.text, pos_)) pos_ += n;
      if (pos_ >= src_.size()) fail(src_.size() ? src_.size() - 1 : 0, "unexpected end of the template inside a tag");
      if (src_.starts(pos_, "-%}")) {
        push("%}", TokenType::CloseStatement, pos_);
        pos_ += 3;
        skip_leading_space();
        continue;
      }
      if (src_.starts(pos_, "-}}")) {
        push("}}", TokenType::CloseExpression, pos_);
        pos_ += 3;
        skip_leading_space();
        continue;
      }
      const char c = src_.at(pos_);
      if ((c == '-' || c == '+') && unary_sign(c)) continue;
      if (mapped()) continue;
      if (c == '\'' || c == '"') {
        string_literal(c);
        continue;
      }
      if (is_digit(c)) {
        const size_t start = pos_;
        std::string number = digits();
        if (!last_is(TokenType::Dot) && src_.at(pos_) == '.' && is_digit(src_.at(pos_ + 1))) {
          ++pos_;
          number += "." + digits();
        }
        push(number, TokenType::NumericLiteral, start);
        continue;
      }
      if (is_word(c)) {
        const size_t start = pos_;
        while (pos_ < src_.size() && is_word(src_.at(pos_))) ++pos_;
        push(src_.text.substr(start, pos_ - start), TokenType::Identifier, start);
        continue;
      }
      fail(pos_, cat("unexpected character '", std::string(1, c), "'"));
    }
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& what) const {
    const int line = src_.line.empty() ? 1 : src_.line[std::min(at, src_.line.size() - 1)];
    throw FormatError(cat(name_, ":", line, ": ", what));
  }

  bool last_is(TokenType type) const { return !tokens_.empty() && tokens_.back().type == type; }

  void push(std::string value, TokenType type, size_t at) {
    const int line = src_.line.empty() ? 1 : src_.line[std::min(at, src_.line.size() - 1)];
    tokens_.push_back({std::move(value), type, line});
  }

  void strip_trailing_space() {
    if (!last_is(TokenType::Text)) return;
    tokens_.back().value = js_trim_end(tokens_.back().value);
    if (tokens_.back().value.empty()) tokens_.pop_back();
  }

  void skip_leading_space() {
    while (size_t n = js_space_at(src_.text, pos_)) pos_ += n;
  }

  void comment() {
    const size_t start = pos_;
    pos_ += 2;
    const bool strip_before = src_.at(pos_) == '-';
    if (strip_before) ++pos_;
    const size_t close = src_.text.find("#}", pos_);
    if (close == std::string::npos) fail(start, "a comment {# is never closed with #}");
    std::string text = src_.text.substr(pos_, close - pos_);
    const bool strip_after = !text.empty() && text.back() == '-';
    if (strip_after) text.pop_back();
    if (strip_before) strip_trailing_space();
    push(std::move(text), TokenType::Comment, start);
    pos_ = close + 2;
    if (strip_after) skip_leading_space();
  }

  // A sign is unary unless it follows an operand; "-2" and "-2.5" become numbers.
  bool unary_sign(char c) {
    if (tokens_.empty() || last_is(TokenType::Text)) fail(pos_, cat("unexpected character '", std::string(1, c), "'"));
    switch (tokens_.back().type) {
      case TokenType::Identifier:
      case TokenType::NumericLiteral:
      case TokenType::StringLiteral:
      case TokenType::CloseParen:
      case TokenType::CloseSquareBracket:
        return false;
      default:
        break;
    }
    const size_t start = pos_++;
    std::string number = digits();
    if (!number.empty() && src_.at(pos_) == '.' && is_digit(src_.at(pos_ + 1))) {
      ++pos_;
      number += "." + digits();
    }
    push(std::string(1, c) + number, number.empty() ? TokenType::UnaryOperator : TokenType::NumericLiteral, start);
    return true;
  }

  bool mapped() {
    for (const MappedToken& m : kMapped) {
      if (m.type == TokenType::CloseExpression && curly_depth_ > 0) continue;
      if (!src_.starts(pos_, m.text)) continue;
      push(m.text, m.type, pos_);
      if (m.type == TokenType::OpenExpression) curly_depth_ = 0;
      if (m.type == TokenType::OpenCurlyBracket) ++curly_depth_;
      if (m.type == TokenType::CloseCurlyBracket) --curly_depth_;
      pos_ += std::char_traits<char>::length(m.text);
      return true;
    }
    return false;
  }

  std::string digits() {
    const size_t start = pos_;
    while (pos_ < src_.size() && is_digit(src_.at(pos_))) ++pos_;
    return src_.text.substr(start, pos_ - start);
  }

  void string_literal(char quote) {
    const size_t start = pos_++;
    std::string value;
    while (true) {
      if (pos_ >= src_.size()) fail(start, "a string literal is never closed");
      const char c = src_.at(pos_);
      if (c == quote) break;
      if (c != '\\') {
        value.push_back(c);
        ++pos_;
        continue;
      }
      if (++pos_ >= src_.size()) fail(start, "a string literal ends in a backslash");
      const char e = src_.at(pos_++);
      if (e == 'x' || e == 'u') {
        const size_t length = e == 'x' ? 2 : 4;
        char32_t cp = 0;
        for (size_t k = 0; k < length; ++k) {
          const char h = src_.at(pos_ + k);
          const int v = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
          if (v < 0) fail(pos_, cat("invalid \\", std::string(1, e), " escape in a string literal"));
          cp = cp * 16 + static_cast<char32_t>(v);
        }
        pos_ += length;
        tokenizer_detail::append_utf8(value, cp);
        continue;
      }
      switch (e) {
        case 'n': value.push_back('\n'); break;
        case 't': value.push_back('\t'); break;
        case 'r': value.push_back('\r'); break;
        case 'b': value.push_back('\b'); break;
        case 'f': value.push_back('\f'); break;
        case 'v': value.push_back('\v'); break;
        case '\'': case '"': case '\\': value.push_back(e); break;
        default: fail(pos_ - 1, cat("unknown escape \\", std::string(1, e), " in a string literal"));
      }
    }
    ++pos_;  // the closing quote
    push(std::move(value), TokenType::StringLiteral, start);
  }

  Source src_;
  const std::string& name_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int curly_depth_ = 0;
};

}  // namespace

const char* token_type_name(TokenType type) {
  switch (type) {
    case TokenType::Text: return "text";
    case TokenType::NumericLiteral: return "a number";
    case TokenType::StringLiteral: return "a string";
    case TokenType::Identifier: return "a name";
    case TokenType::Equals: return "'='";
    case TokenType::OpenParen: return "'('";
    case TokenType::CloseParen: return "')'";
    case TokenType::OpenStatement: return "'{%'";
    case TokenType::CloseStatement: return "'%}'";
    case TokenType::OpenExpression: return "'{{'";
    case TokenType::CloseExpression: return "'}}'";
    case TokenType::OpenSquareBracket: return "'['";
    case TokenType::CloseSquareBracket: return "']'";
    case TokenType::OpenCurlyBracket: return "'{'";
    case TokenType::CloseCurlyBracket: return "'}'";
    case TokenType::Comma: return "','";
    case TokenType::Dot: return "'.'";
    case TokenType::Colon: return "':'";
    case TokenType::Pipe: return "'|'";
    case TokenType::AdditiveBinaryOperator: return "an operator";
    case TokenType::MultiplicativeBinaryOperator: return "an operator";
    case TokenType::ExponentiationBinaryOperator: return "'**'";
    case TokenType::ComparisonBinaryOperator: return "a comparison";
    case TokenType::UnaryOperator: return "a sign";
    case TokenType::Comment: return "a comment";
  }
  return "a token";
}

size_t js_space_at(const std::string& text, size_t at) {
  if (at >= text.size()) return 0;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data()) + at;
  if (p[0] < 0x80) return (p[0] == ' ' || (p[0] >= '\t' && p[0] <= '\r')) ? 1 : 0;
  char32_t cp;
  bool ok;
  const size_t n = tokenizer_detail::utf8_step(p, text.size() - at, cp, ok);
  if (!ok) return 0;
  const bool space = cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
                     cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
  return space ? n : 0;
}

std::string js_trim_start(const std::string& text) {
  size_t i = 0;
  while (size_t n = js_space_at(text, i)) i += n;
  return text.substr(i);
}

std::string js_trim_end(const std::string& text) {
  size_t end = 0, i = 0;  // end: just after the last character that is not white space
  while (i < text.size()) {
    const size_t n = js_space_at(text, i);
    if (n) {
      i += n;
      continue;
    }
    char32_t cp;
    bool ok;
    i += tokenizer_detail::utf8_step(reinterpret_cast<const unsigned char*>(text.data()) + i, text.size() - i, cp, ok);
    end = i;
  }
  return text.substr(0, end);
}

std::vector<Token> tokenize(const std::string& source, const std::string& name) {
  return Lexer(preprocess(source), name).run();
}

}  // namespace chronos::jinja
