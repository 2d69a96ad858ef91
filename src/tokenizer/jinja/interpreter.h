// Private to the chat-template engine: evaluates a syntax tree against a context, with the
// statements, operators, filters, tests and methods of @huggingface/jinja. Errors name the template
// and the line: FormatError for what the template does wrong, InvalidArgument for raise_exception
// (the template refusing its input, e.g. roles that do not alternate).
#pragma once

#include <string>
#include <unordered_map>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/value.h"

namespace chronos::jinja {

class Environment {
 public:
  explicit Environment(Environment* parent = nullptr) : parent_(parent) {}
  void set(const std::string& name, ValuePtr value) { variables_[name] = std::move(value); }
  ValuePtr lookup(const std::string& name) const;

 private:
  Environment* parent_;
  std::unordered_map<std::string, ValuePtr> variables_;
};

// The globals every render starts from: true/false/none (and True/False/None), namespace(),
// raise_exception(), range(), strftime_now().
void add_globals(Environment& env);

// Renders `program` (a NodeKind::Program) in `env`.
std::string render(const Node& program, Environment& env, const std::string& name);

}  // namespace chronos::jinja
