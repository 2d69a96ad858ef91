// Private to the chat-template engine: the tokens of a Jinja template, produced the way
// @huggingface/jinja (the reference transformers.js and the compat tests use) produces them, after
// the same preprocessing: one trailing newline dropped, lstrip_blocks and trim_blocks applied, and the
// transformers-specific {% generation %} tags removed.
#pragma once

#include <string>
#include <vector>

namespace chronos::jinja {

enum class TokenType {
  Text,
  NumericLiteral,
  StringLiteral,
  Identifier,
  Equals,
  OpenParen,
  CloseParen,
  OpenStatement,
  CloseStatement,
  OpenExpression,
  CloseExpression,
  OpenSquareBracket,
  CloseSquareBracket,
  OpenCurlyBracket,
  CloseCurlyBracket,
  Comma,
  Dot,
  Colon,
  Pipe,
  AdditiveBinaryOperator,        // + - ~
  MultiplicativeBinaryOperator,  // * / // %
  ExponentiationBinaryOperator,  // **
  ComparisonBinaryOperator,      // < > <= >= == !=
  UnaryOperator,                 // - + (before an operand)
  Comment,
};

const char* token_type_name(TokenType type);

struct Token {
  std::string value;
  TokenType type;
  int line;  // 1-based line of the token's first character in the template as written
};

// Throws FormatError "name:LINE: ..." for text that is not a template (an unterminated tag or string,
// an unexpected character).
std::vector<Token> tokenize(const std::string& source, const std::string& name);

// JavaScript's idea of white space (String.prototype.trim, /\s/): the characters of Unicode's
// White_Space minus U+0085, plus U+FEFF. Returns the byte length of the white-space character at
// text[at], or 0 when there is none.
size_t js_space_at(const std::string& text, size_t at);
std::string js_trim_start(const std::string& text);
std::string js_trim_end(const std::string& text);

}  // namespace chronos::jinja
