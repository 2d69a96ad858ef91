// Private to the chat-template engine: tokens to a syntax tree, with the grammar and operator
// precedence of @huggingface/jinja. Throws FormatError "name:LINE: ..." for syntax it does not accept.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace chronos::jinja {

NodePtr parse(const std::vector<Token>& tokens, const std::string& name);

}  // namespace chronos::jinja
