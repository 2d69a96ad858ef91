#include "chronos/tokenizer/jinja_template.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "chronos/core/error.h"

namespace chronos {
namespace {

using nlohmann::ordered_json;

std::string render(const std::string& source, const std::string& context_json = "{}") {
  return JinjaTemplate(source, "t").render(ordered_json::parse(context_json));
}

// Template, context, and what @huggingface/jinja 0.5.11 renders for them (recorded from it).
struct Case {
  const char* source;
  const char* context;
  const char* expected;
};

TEST(JinjaTemplate, RendersAsTheReferenceEngine) {
  const Case cases[] = {
      {"{{ 'a' + 'b' }}|{{ 1 + 2 }}|{{ 1.5 + 1 }}|{{ 7 // 2 }}|{{ 7 / 2 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}",
       "{}",
       "ab|3|2.5|3|3.5|-1|1024"},
      {"{{ true }} {{ none }}x{{ undefined_name }}y {{ 3.0 }} {{ [1, 'a', none] }} {{ {'k': 1.0} }}",
       "{}",
       "true xy 3.0 [1, \"a\", null] {\"k\": 1}"},
      {"{% for m in messages %}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ m.role }};{% endfor %}",
       "{\"messages\": [{\"role\": \"user\"}, {\"role\": \"assistant\"}]}",
       "0truefalseuser;1falsetrueassistant;"},
      {"{%- set ns = namespace(n=0) -%}{%- for x in [1, 2, 3] -%}{%- set ns.n = ns.n + x -%}{%- endfor -%}{{ ns.n }}",
       "{}",
       "6"},
      {"{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}",
       "{}",
       "1"},
      {"{{ '  pad\\n'.strip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'Hello'.startswith('He') }}|{{ 'x'.upper() }}",
       "{}",
       "pad|[\"a\", \"b\", \"\", \"c\"]|[\"a\", \"b\"]|true|X"},
      {"{{ messages[::-1][0].content }}{{ messages[-1]['content'] }}{{ 'abcdef'[1:4] }}",
       "{\"messages\": [{\"content\": \"first\"}, {\"content\": \"last\"}]}",
       "lastlastbcd"},
      {"{{ tools | tojson }}",
       "{\"tools\": [{\"name\": \"f\", \"args\": {\"x\": 1, \"y\": [true, null, \"ü\\n\"]}}]}",
       "[{\"name\": \"f\", \"args\": {\"x\": 1, \"y\": [true, null, \"ü\\n\"]}}]"},
      {"{{ d | tojson(indent=2) }}",
       "{\"d\": {\"a\": [1, 2], \"b\": {}}}",
       "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}"},
      {"{% if x is defined %}d{% else %}u{% endif %}{% if y is none %}n{% endif %}{% if 'a' is string %}s{% endif %}",
       "{\"y\": null}",
       "uns"},
      {"{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', punct='?') }}",
       "{}",
       "Hi Ann! Hi Bo?"},
      {"a\n  {% if true %}\n  b\n  {% endif %}\nc",
       "{}",
       "a\n  b\nc"},
      {"{{- '  x  ' -}}   {#- comment -#}   {{ 'y' }}",
       "{}",
       "  x  y"},
      {"{{ 'yes' if flag else 'no' }}{{ 'sel' if flag }}",
       "{\"flag\": false}",
       "no"},
      {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d | length }}{{ 'ab' | length }}",
       "{\"d\": {\"b\": 1, \"a\": 2}}",
       "b=1;a=2;22"},
      {"{{ [3, 1, 2] | sort | join(',') }} {{ ['a', 'B'] | sort | first }} {{ range(3) | list }}",
       "{}",
       "1,2,3 a [0, 1, 2]"},
      {"{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
       "{}",
       "13"},
      {"{{ 'a' in 'cat' }}{{ 1 in [1, 2] }}{{ 'k' in {'k': 1} }}{{ 'z' not in 'cat' }}",
       "{}",
       "truetruetruetrue"},
      {"{{ x | default('dflt') }}{{ '' | default('e', true) }}",
       "{}",
       "dflte"},
      {"{{ 1 == 1.0 }}{{ 'a' == 'a' }}{{ none == undefined_name }}{{ 1 != 2 }}",
       "{}",
       "truetruetruetrue"},
  };
  for (const Case& c : cases) EXPECT_EQ(render(c.source, c.context), c.expected) << c.source;
}

void expect_error_at(const std::string& source, const std::string& context, const std::string& fragment) {
  try {
    render(source, context);
    FAIL() << "rendered: " << source;
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(JinjaTemplate, SyntaxErrorsNameTheLine) {
  expect_error_at("line one\n{% if x %}\nno end", "{}", "t:2: {% if %} is never closed");
  expect_error_at("a\nb\n{{ 1 + }}", "{}", "t:3:");
  expect_error_at("{% while true %}{% endwhile %}", "{}", "t:1: unknown statement {% while %}");
  expect_error_at("ok\n{{ 'unterminated }}", "{}", "t:2: a string literal is never closed");
  expect_error_at("{{ x | nosuchfilter }}", R"({"x": "s"})", "t:1: unknown filter 'nosuchfilter' for a string");
  expect_error_at("\n\n{{ x is nosuchtest }}", "{}", "t:3: unknown test 'nosuchtest'");
  expect_error_at("{{ 1 + none }}", "{}", "cannot apply '+' to none");
  expect_error_at("{% set x.y = 1 %}", R"({"x": {"y": 0}})", "only of a namespace()");
}

// The parser and the interpreter recurse per level: deep nesting and endless macro recursion are
// refused with an error instead of running out of stack (found by the jinja fuzz target).
TEST(JinjaTemplate, DepthIsBounded) {
  expect_error_at("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}", "{}", "t:1: the template nests deeper than 128 levels");
  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i) chain += "+1";
  expect_error_at(chain + " }}", "{}", "nests deeper than 128 levels");
  std::string elifs = "{% if a %}";
  for (int i = 0; i < 5000; ++i) elifs += "{% elif b %}";
  expect_error_at(elifs + "{% endif %}", "{}", "nests deeper than 128 levels");
  expect_error_at("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "{}", "calls nest deeper than 64");
  EXPECT_EQ(render("{{ " + std::string(40, '(') + "1" + std::string(40, ')') + " }}"), "1");
}

TEST(JinjaTemplate, RaiseExceptionIsTheInputsFault) {
  try {
    render("ok\n{{ raise_exception('roles must alternate') }}");
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()), "t:2: the template refused its input: roles must alternate");
  }
}

TEST(JinjaTemplate, ContextMustBeAnObject) {
  EXPECT_THROW(JinjaTemplate("x").render(ordered_json::array()), InvalidArgument);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The Mixtral-Instruct template, written from its public definition (tests/data/chat/).
TEST(JinjaTemplate, MixtralInstruct) {
  const std::string path = CHRONOS_SOURCE_DIR "/tests/data/chat/mixtral_instruct.jinja";
  const JinjaTemplate mixtral(read_file(path), "mixtral");
  const ordered_json ok = ordered_json::parse(
      R"({"bos_token": "<s>", "eos_token": "</s>", "messages": [{"role": "user", "content": "Hi"},
          {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}]})");
  EXPECT_EQ(mixtral.render(ok), "<s>[INST] Hi [/INST]Hello</s>[INST] Bye [/INST]");
  ordered_json twice = ok;
  twice["messages"][1]["role"] = "user";
  EXPECT_THROW(mixtral.render(twice), InvalidArgument);
}

}  // namespace
}  // namespace chronos
