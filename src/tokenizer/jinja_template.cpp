#include "chronos/tokenizer/jinja_template.h"

#include <nlohmann/json.hpp>

#include "chronos/core/error.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

namespace chronos {

struct JinjaTemplate::Impl {
  std::string name;
  jinja::NodePtr program;
};

JinjaTemplate::JinjaTemplate(const std::string& source, const std::string& name) {
  auto impl = std::make_shared<Impl>();
  impl->name = name;
  impl->program = jinja::parse(jinja::tokenize(source, name), name);
  impl_ = std::move(impl);
}

std::string JinjaTemplate::render(const nlohmann::ordered_json& context) const {
  if (!context.is_object()) throw InvalidArgument(cat(impl_->name, ": the render context must be a JSON object"));
  jinja::Environment globals;
  jinja::add_globals(globals);
  jinja::Environment env(&globals);
  for (auto it = context.begin(); it != context.end(); ++it) env.set(it.key(), jinja::from_json(it.value()));
  return jinja::render(*impl_->program, env, impl_->name);
}

const std::string& JinjaTemplate::name() const { return impl_->name; }

}  // namespace chronos
