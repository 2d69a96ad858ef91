// Private to the chat-template engine: the syntax tree of a template. One node type; which fields a
// kind uses is listed beside it.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace chronos::jinja {

enum class NodeKind {
  Program,          // body: statements
  If,               // a: test, body, alternate
  For,              // a: loop variable (Identifier or Tuple), b: iterable, body, alternate: the else block
  Set,              // a: target, b: value (null: the block form, body)
  Macro,            // text: name, args: parameters (Identifier or KeywordArgument), body
  CallBlock,        // a: the CallExpression, args: caller parameters, body
  FilterBlock,      // a: filter (Identifier or CallExpression), body
  Break,
  Continue,
  Comment,
  IntegerLiteral,   // number
  FloatLiteral,     // number
  StringLiteral,    // text (template text is a StringLiteral too)
  ArrayLiteral,     // args: items
  TupleLiteral,     // args: items
  ObjectLiteral,    // args: keys, body: values
  Identifier,       // text
  Member,           // a: object, b: property, computed
  Call,             // a: callee, args
  Binary,           // text: operator, a, b
  Unary,            // text: operator, a
  Filter,           // a: operand, b: filter (Identifier or Call)
  Test,             // a: operand, text: test name, negate
  Select,           // a: value, b: condition ("x if c" without else)
  Ternary,          // a: condition, b: if true, c: if false
  Slice,            // a: start, b: stop, c: step (each may be null)
  KeywordArgument,  // text: name, a: value
  Spread,           // a: *value
  KeywordSpread,    // a: **value
};

struct Node;
using NodePtr = std::unique_ptr<Node>;

struct Node {
  NodeKind kind;
  int line = 0;
  std::string text;
  double number = 0;
  bool computed = false;
  bool negate = false;
  NodePtr a, b, c;
  std::vector<NodePtr> args, body, alternate;

  Node(NodeKind k, int l) : kind(k), line(l) {}
};

}  // namespace chronos::jinja
