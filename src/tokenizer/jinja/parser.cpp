#include "tokenizer/jinja/parser.h"

#include <set>
#include <utility>

#include "chronos/core/error.h"

namespace chronos::jinja {
namespace {

// Deeper nesting than any template needs is refused: the parser and the interpreter recurse per level.
constexpr int kMaxNesting = 128;

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const std::string& name) : tokens_(tokens), name_(name) {}

  NodePtr program() {
    auto root = make(NodeKind::Program, 1);
    while (pos_ < tokens_.size()) root->body.push_back(any());
    return root;
  }

 private:
  enum class ArgMode { call, parameters };

  // Counts one level of recursion for as long as it lives.
  struct Nesting {
    explicit Nesting(Parser& p) : parser(p) {
      if (++parser.depth_ > kMaxNesting) parser.fail(cat("the template nests deeper than ", kMaxNesting, " levels"));
    }
    ~Nesting() { --parser.depth_; }
    Parser& parser;
  };
  // A left-deep chain (a + b + c, x|f|g, obj.a.b): every link is one more level of the tree.
  struct Chain {
    explicit Chain(Parser& p) : parser(p) {}
    void link() {
      ++links;
      if (++parser.depth_ > kMaxNesting) parser.fail(cat("the template nests deeper than ", kMaxNesting, " levels"));
    }
    ~Chain() { parser.depth_ -= links; }
    Parser& parser;
    int links = 0;
  };

  [[noreturn]] void fail(const std::string& what) const {
    const int line = pos_ < tokens_.size() ? tokens_[pos_].line : (tokens_.empty() ? 1 : tokens_.back().line);
    throw FormatError(cat(name_, ":", line, ": ", what));
  }

  int line() const { return pos_ < tokens_.size() ? tokens_[pos_].line : (tokens_.empty() ? 1 : tokens_.back().line); }
  NodePtr make(NodeKind kind, int at) const { return std::make_unique<Node>(kind, at); }

  const Token& peek(size_t ahead = 0) const {
    if (pos_ + ahead >= tokens_.size()) fail("unexpected end of the template (a tag is not closed, or an {% end... %} is missing)");
    return tokens_[pos_ + ahead];
  }
  bool is(TokenType type, size_t ahead = 0) const { return pos_ + ahead < tokens_.size() && tokens_[pos_ + ahead].type == type; }
  bool is_identifier(const char* name, size_t ahead = 0) const {
    return is(TokenType::Identifier, ahead) && tokens_[pos_ + ahead].value == name;
  }
  bool is_statement(std::initializer_list<const char*> names) const {
    if (!is(TokenType::OpenStatement) || !is(TokenType::Identifier, 1)) return false;
    for (const char* n : names)
      if (tokens_[pos_ + 1].value == n) return true;
    return false;
  }
  const Token& expect(TokenType type, const char* what) {
    const Token& t = peek();
    if (t.type != type) fail(cat("expected ", what, ", found ", describe(t)));
    ++pos_;
    return t;
  }
  void expect_identifier(const char* name) {
    if (!is_identifier(name)) fail(cat("expected '", name, "', found ", describe(peek())));
    ++pos_;
  }
  static std::string describe(const Token& t) {
    if (t.type == TokenType::Identifier || t.type == TokenType::NumericLiteral) return cat("'", t.value, "'");
    if (t.type == TokenType::StringLiteral) return cat("the string '", t.value, "'");
    return token_type_name(t.type);
  }
  // Statements until one of `names` opens; fails at the end of the template naming what is missing.
  void block_until(std::vector<NodePtr>& into, std::initializer_list<const char*> names, const char* opened, int opened_line) {
    while (!is_statement(names)) {
      if (pos_ >= tokens_.size()) {
        std::string expected;
        for (const char* n : names) expected += cat(expected.empty() ? "" : " or ", "{% ", n, " %}");
        throw FormatError(cat(name_, ":", opened_line, ": {% ", opened, " %} is never closed (expected ", expected, ")"));
      }
      into.push_back(any());
    }
  }

  NodePtr any() {
    const Token& t = peek();
    switch (t.type) {
      case TokenType::Comment: {
        auto node = make(NodeKind::Comment, t.line);
        ++pos_;
        return node;
      }
      case TokenType::Text: {
        auto node = make(NodeKind::StringLiteral, t.line);
        node->text = t.value;
        ++pos_;
        return node;
      }
      case TokenType::OpenStatement: return statement();
      case TokenType::OpenExpression: {
        ++pos_;
        NodePtr e = expression();
        expect(TokenType::CloseExpression, "'}}'");
        return e;
      }
      default: fail(cat("unexpected ", describe(t), " outside a tag"));
    }
  }

  NodePtr statement() {
    const Nesting nesting(*this);
    const int at = line();
    expect(TokenType::OpenStatement, "'{%'");
    if (!is(TokenType::Identifier)) fail(cat("expected a statement name after '{%', found ", describe(peek())));
    const std::string name = peek().value;
    ++pos_;
    NodePtr result;
    if (name == "set") {
      result = set_statement(at);
    } else if (name == "if") {
      result = if_statement(at);
      close_with("endif");
    } else if (name == "macro") {
      result = macro_statement(at);
      close_with("endmacro");
    } else if (name == "for") {
      result = for_statement(at);
      close_with("endfor");
    } else if (name == "call") {
      result = make(NodeKind::CallBlock, at);
      if (is(TokenType::OpenParen)) {
        result->computed = true;  // has caller parameters
        result->args = arguments(ArgMode::parameters);
      }
      NodePtr callee = primary();
      if (callee->kind != NodeKind::Identifier) fail("expected a macro name after {% call %}");
      auto call = make(NodeKind::Call, at);
      call->a = std::move(callee);
      call->args = arguments(ArgMode::call);
      result->a = std::move(call);
      expect(TokenType::CloseStatement, "'%}'");
      block_until(result->body, {"endcall"}, "call", at);
      close_with("endcall");
    } else if (name == "break" || name == "continue") {
      expect(TokenType::CloseStatement, "'%}'");
      result = make(name == "break" ? NodeKind::Break : NodeKind::Continue, at);
    } else if (name == "filter") {
      result = make(NodeKind::FilterBlock, at);
      NodePtr filter = primary();
      if (filter->kind == NodeKind::Identifier && is(TokenType::OpenParen)) filter = call_expression(std::move(filter));
      result->a = std::move(filter);
      expect(TokenType::CloseStatement, "'%}'");
      block_until(result->body, {"endfilter"}, "filter", at);
      close_with("endfilter");
    } else {
      --pos_;
      fail(cat("unknown statement {% ", name, " %} (supported: set, if, for, macro, call, filter, break, continue)"));
    }
    return result;
  }

  void close_with(const char* end) {
    expect(TokenType::OpenStatement, "'{%'");
    expect_identifier(end);
    expect(TokenType::CloseStatement, "'%}'");
  }

  NodePtr set_statement(int at) {
    auto node = make(NodeKind::Set, at);
    node->a = expression_sequence(false);
    if (is(TokenType::Equals)) {
      ++pos_;
      node->b = expression_sequence(false);
    } else {
      expect(TokenType::CloseStatement, "'=' or '%}'");
      block_until(node->body, {"endset"}, "set", at);
      expect(TokenType::OpenStatement, "'{%'");
      expect_identifier("endset");
    }
    expect(TokenType::CloseStatement, "'%}'");
    return node;
  }

  NodePtr if_statement(int at) {
    const Nesting nesting(*this);
    auto node = make(NodeKind::If, at);
    node->a = expression();
    expect(TokenType::CloseStatement, "'%}'");
    block_until(node->body, {"elif", "else", "endif"}, "if", at);
    if (is_statement({"elif"})) {
      const int elif_line = line();
      pos_ += 2;
      node->alternate.push_back(if_statement(elif_line));
    } else if (is_statement({"else"})) {
      pos_ += 2;
      expect(TokenType::CloseStatement, "'%}'");
      block_until(node->alternate, {"endif"}, "if", at);
    }
    return node;
  }

  NodePtr macro_statement(int at) {
    auto node = make(NodeKind::Macro, at);
    NodePtr name = primary();
    if (name->kind != NodeKind::Identifier) fail("expected a macro name after {% macro");
    node->text = name->text;
    node->args = arguments(ArgMode::parameters);
    expect(TokenType::CloseStatement, "'%}'");
    block_until(node->body, {"endmacro"}, "macro", at);
    return node;
  }

  NodePtr for_statement(int at) {
    auto node = make(NodeKind::For, at);
    node->a = expression_sequence(true);
    if (node->a->kind != NodeKind::Identifier && node->a->kind != NodeKind::TupleLiteral)
      fail("expected a name or names after {% for");
    if (!is_identifier("in")) fail(cat("expected 'in' after the loop variable, found ", describe(peek())));
    ++pos_;
    node->b = expression();
    expect(TokenType::CloseStatement, "'%}'");
    block_until(node->body, {"endfor", "else"}, "for", at);
    if (is_statement({"else"})) {
      pos_ += 2;
      expect(TokenType::CloseStatement, "'%}'");
      block_until(node->alternate, {"endfor"}, "for", at);
    }
    return node;
  }

  NodePtr expression_sequence(bool primary_only) {
    const int at = line();
    std::vector<NodePtr> items;
    items.push_back(primary_only ? primary() : expression());
    const bool tuple = is(TokenType::Comma);
    while (tuple) {
      ++pos_;
      items.push_back(primary_only ? primary() : expression());
      if (!is(TokenType::Comma)) break;
    }
    if (!tuple) return std::move(items[0]);
    auto node = make(NodeKind::TupleLiteral, at);
    node->args = std::move(items);
    return node;
  }

  NodePtr expression() {
    const Nesting nesting(*this);
    return if_expression();
  }

  NodePtr if_expression() {
    NodePtr value = or_expression();
    if (!is_identifier("if")) return value;
    const int at = line();
    ++pos_;
    NodePtr test = or_expression();
    if (is_identifier("else")) {
      ++pos_;
      auto node = make(NodeKind::Ternary, at);
      node->a = std::move(test);
      node->b = std::move(value);
      node->c = if_expression();
      return node;
    }
    auto node = make(NodeKind::Select, at);
    node->a = std::move(value);
    node->b = std::move(test);
    return node;
  }

  NodePtr binary(std::string op, NodePtr left, NodePtr right, int at) {
    auto node = make(NodeKind::Binary, at);
    node->text = std::move(op);
    node->a = std::move(left);
    node->b = std::move(right);
    return node;
  }

  NodePtr or_expression() {
    NodePtr left = and_expression();
    Chain chain(*this);
    while (is_identifier("or")) {
      chain.link();
      const int at = line();
      ++pos_;
      left = binary("or", std::move(left), and_expression(), at);
    }
    return left;
  }

  NodePtr and_expression() {
    NodePtr left = not_expression();
    Chain chain(*this);
    while (is_identifier("and")) {
      chain.link();
      const int at = line();
      ++pos_;
      left = binary("and", std::move(left), not_expression(), at);
    }
    return left;
  }

  NodePtr not_expression() {
    if (!is_identifier("not")) return comparison();
    const Nesting nesting(*this);
    const int at = line();
    ++pos_;
    auto node = make(NodeKind::Unary, at);
    node->text = "not";
    node->a = not_expression();
    return node;
  }

  NodePtr comparison() {
    NodePtr left = additive();
    Chain chain(*this);
    while (true) {
      const int at = line();
      std::string op;
      if (is_identifier("not") && is_identifier("in", 1)) {
        op = "not in";
        pos_ += 2;
      } else if (is_identifier("in")) {
        op = "in";
        ++pos_;
      } else if (is(TokenType::ComparisonBinaryOperator)) {
        op = tokens_[pos_++].value;
      } else {
        break;
      }
      chain.link();
      left = binary(op, std::move(left), additive(), at);
    }
    return left;
  }

  NodePtr additive() {
    NodePtr left = multiplicative();
    Chain chain(*this);
    while (is(TokenType::AdditiveBinaryOperator)) {
      chain.link();
      const int at = line();
      const std::string op = tokens_[pos_++].value;
      left = binary(op, std::move(left), multiplicative(), at);
    }
    return left;
  }

  NodePtr multiplicative() {
    NodePtr left = power();
    Chain chain(*this);
    while (is(TokenType::MultiplicativeBinaryOperator)) {
      chain.link();
      const int at = line();
      const std::string op = tokens_[pos_++].value;
      left = binary(op, std::move(left), power(), at);
    }
    return left;
  }

  NodePtr power() {
    NodePtr left = test_expression();
    Chain chain(*this);
    while (is(TokenType::ExponentiationBinaryOperator)) {
      chain.link();
      const int at = line();
      ++pos_;
      left = binary("**", std::move(left), test_expression(), at);
    }
    return left;
  }

  NodePtr test_expression() {
    NodePtr operand = filter_expression();
    Chain chain(*this);
    while (is_identifier("is")) {
      chain.link();
      const int at = line();
      ++pos_;
      const bool negate = is_identifier("not");
      if (negate) ++pos_;
      NodePtr test = primary();
      if (test->kind != NodeKind::Identifier) fail("expected a test name after 'is'");
      auto node = make(NodeKind::Test, at);
      node->a = std::move(operand);
      node->text = test->text;
      node->negate = negate;
      operand = std::move(node);
    }
    return operand;
  }

  NodePtr filter_expression() {
    NodePtr operand = sign_expression();
    Chain chain(*this);
    while (is(TokenType::Pipe)) {
      chain.link();
      const int at = line();
      ++pos_;
      NodePtr filter = primary();
      if (filter->kind != NodeKind::Identifier) fail("expected a filter name after '|'");
      if (is(TokenType::OpenParen)) filter = call_expression(std::move(filter));
      auto node = make(NodeKind::Filter, at);
      node->a = std::move(operand);
      node->b = std::move(filter);
      operand = std::move(node);
    }
    return operand;
  }

  NodePtr sign_expression() {
    if (pos_ < tokens_.size() && (is(TokenType::UnaryOperator) || is(TokenType::AdditiveBinaryOperator)) &&
        (tokens_[pos_].value == "-" || tokens_[pos_].value == "+")) {
      const Nesting nesting(*this);
      const int at = line();
      auto node = make(NodeKind::Unary, at);
      node->text = tokens_[pos_++].value;
      node->a = sign_expression();
      return node;
    }
    return call_member_expression();
  }

  NodePtr call_member_expression() {
    NodePtr member = member_expression(primary());
    if (is(TokenType::OpenParen)) return call_expression(std::move(member));
    return member;
  }

  NodePtr call_expression(NodePtr callee) {
    const Nesting nesting(*this);
    auto node = make(NodeKind::Call, line());
    node->a = std::move(callee);
    node->args = arguments(ArgMode::call);
    NodePtr result = member_expression(std::move(node));
    if (is(TokenType::OpenParen)) result = call_expression(std::move(result));
    return result;
  }

  std::vector<NodePtr> arguments(ArgMode mode) {
    expect(TokenType::OpenParen, "'('");
    std::vector<NodePtr> args;
    std::set<std::string> names;
    bool saw_keyword = false, saw_spread = false;
    while (!is(TokenType::CloseParen)) {
      const int at = line();
      const bool keyword_spread = is(TokenType::ExponentiationBinaryOperator);
      const bool positional_spread = is(TokenType::MultiplicativeBinaryOperator) && peek().value == "*";
      if (mode == ArgMode::parameters && (keyword_spread || positional_spread)) fail("argument unpacking is not allowed in parameters");
      if (keyword_spread) {
        ++pos_;
        auto node = make(NodeKind::KeywordSpread, at);
        node->a = expression();
        args.push_back(std::move(node));
        if (is(TokenType::Comma)) ++pos_;
        if (!is(TokenType::CloseParen)) fail("'**' must unpack the last argument");
        break;
      }
      NodePtr argument;
      if (positional_spread) {
        if (saw_spread) fail("only one '*' argument unpacking is allowed");
        saw_spread = true;
        ++pos_;
        argument = make(NodeKind::Spread, at);
        argument->a = expression();
      } else {
        argument = expression();
        if (is(TokenType::Equals)) {
          ++pos_;
          if (argument->kind != NodeKind::Identifier)
            fail(mode == ArgMode::parameters ? "expected a parameter name before '='" : "expected a keyword name before '='");
          auto keyword = make(NodeKind::KeywordArgument, at);
          keyword->text = argument->text;
          keyword->a = expression();
          argument = std::move(keyword);
        }
        if (mode == ArgMode::parameters) {
          if (argument->kind != NodeKind::Identifier && argument->kind != NodeKind::KeywordArgument)
            fail("expected a parameter name");
          if (!names.insert(argument->text).second) fail(cat("duplicate parameter name '", argument->text, "'"));
        }
        if (argument->kind == NodeKind::KeywordArgument) {
          saw_keyword = true;
        } else if (saw_keyword) {
          fail(mode == ArgMode::call ? "positional arguments must come before keyword arguments"
                                     : "a parameter without a default follows one with a default");
        } else if (saw_spread) {
          fail("positional arguments must not follow '*' unpacking");
        }
      }
      args.push_back(std::move(argument));
      if (is(TokenType::Comma)) ++pos_;
      if (pos_ >= tokens_.size()) fail("an argument list is never closed with ')'");
    }
    expect(TokenType::CloseParen, "')'");
    return args;
  }

  // obj[key] or a slice obj[a:b:c].
  NodePtr subscript() {
    const int at = line();
    std::vector<NodePtr> parts;
    bool slice = false;
    while (!is(TokenType::CloseSquareBracket)) {
      if (pos_ >= tokens_.size()) fail("'[' is never closed with ']'");
      if (is(TokenType::Colon)) {
        parts.push_back(nullptr);
        ++pos_;
        slice = true;
      } else {
        parts.push_back(expression());
        if (is(TokenType::Colon)) {
          ++pos_;
          slice = true;
        }
      }
    }
    if (parts.empty()) fail("expected an index or a slice inside '[]'");
    if (!slice) return std::move(parts[0]);
    if (parts.size() > 3) fail("a slice takes at most three parts (start:stop:step)");
    auto node = make(NodeKind::Slice, at);
    node->a = std::move(parts[0]);
    if (parts.size() > 1) node->b = std::move(parts[1]);
    if (parts.size() > 2) node->c = std::move(parts[2]);
    return node;
  }

  NodePtr member_expression(NodePtr object) {
    Chain chain(*this);
    while (is(TokenType::Dot) || is(TokenType::OpenSquareBracket)) {
      chain.link();
      const int at = line();
      const bool computed = is(TokenType::OpenSquareBracket);
      ++pos_;
      NodePtr property;
      if (computed) {
        property = subscript();
        expect(TokenType::CloseSquareBracket, "']'");
      } else {
        property = primary();
        if (property->kind != NodeKind::Identifier && property->kind != NodeKind::IntegerLiteral)
          fail("expected a name or an integer after '.'");
      }
      auto node = make(NodeKind::Member, at);
      node->a = std::move(object);
      node->b = std::move(property);
      node->computed = computed;
      object = std::move(node);
    }
    return object;
  }

  NodePtr primary() {
    const Token& t = peek();
    const int at = t.line;
    ++pos_;
    switch (t.type) {
      case TokenType::NumericLiteral: {
        auto node = make(t.value.find('.') != std::string::npos ? NodeKind::FloatLiteral : NodeKind::IntegerLiteral, at);
        node->number = std::stod(t.value);
        return node;
      }
      case TokenType::StringLiteral: {
        auto node = make(NodeKind::StringLiteral, at);
        node->text = t.value;
        while (is(TokenType::StringLiteral)) node->text += tokens_[pos_++].value;  // 'a' 'b' is 'ab'
        return node;
      }
      case TokenType::Identifier: {
        auto node = make(NodeKind::Identifier, at);
        node->text = t.value;
        return node;
      }
      case TokenType::OpenParen: {
        NodePtr e = expression_sequence(false);
        expect(TokenType::CloseParen, "')'");
        return e;
      }
      case TokenType::OpenSquareBracket: {
        auto node = make(NodeKind::ArrayLiteral, at);
        while (!is(TokenType::CloseSquareBracket)) {
          if (pos_ >= tokens_.size()) fail("a list '[' is never closed with ']'");
          node->args.push_back(expression());
          if (is(TokenType::Comma)) ++pos_;
        }
        ++pos_;
        return node;
      }
      case TokenType::OpenCurlyBracket: {
        auto node = make(NodeKind::ObjectLiteral, at);
        while (!is(TokenType::CloseCurlyBracket)) {
          if (pos_ >= tokens_.size()) fail("a mapping '{' is never closed with '}'");
          node->args.push_back(expression());
          expect(TokenType::Colon, "':' between a key and its value");
          node->body.push_back(expression());
          if (is(TokenType::Comma)) ++pos_;
        }
        ++pos_;
        return node;
      }
      default:
        --pos_;
        fail(cat("unexpected ", describe(t)));
    }
  }

  const std::vector<Token>& tokens_;
  const std::string& name_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

NodePtr parse(const std::vector<Token>& tokens, const std::string& name) { return Parser(tokens, name).program(); }

}  // namespace chronos::jinja
