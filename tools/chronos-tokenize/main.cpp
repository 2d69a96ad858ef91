// chronos-tokenize: text <-> token ids with a tokenizer.json, one input line at a time.
//   encode (default): each stdin line (without its newline) -> its ids, space-separated
//   --decode:         each line of ids (space- or comma-separated) -> the text they decode to
//   --json:           one JSON object per line instead ({"text", "ids"}), for scripts
//   --chat FILE:      a JSON list of messages rendered with the chat template beside the tokenizer
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <iostream>
#include <string>
#include <vector>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/io/json_text.h"
#include "chronos/io/regular_file.h"
#include "chronos/tokenizer/chat_formatter.h"
#include "chronos/tokenizer/tokenizer.h"
#include "chronos/tokenizer/utf8.h"
#include "common/environment.h"
#include "common/tool_main.h"

namespace {

using namespace chronos;

struct Flags {
  std::string tokenizer;
  bool decode = false;
  bool json = false;
  bool skip_special = false;
  bool plain = false;
  bool add_special = false;
  std::string chat;
  bool add_generation_prompt = false;
  bool ids = false;
  std::string log_level;
};

std::vector<TokenId> parse_ids(const std::string& line, int64_t line_number) {
  std::vector<TokenId> ids;
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == ',' || line[i] == '\t' || line[i] == '\r') {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < line.size() && line[end] != ' ' && line[end] != ',' && line[end] != '\t' && line[end] != '\r') ++end;
    const std::string word = line.substr(i, end - i);
    size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || value < INT32_MIN || value > INT32_MAX)
      throw InvalidArgument(cat("stdin:", line_number, ": '", word, "' is not a token id"));
    ids.push_back(static_cast<TokenId>(value));
    i = end;
  }
  return ids;
}

// --chat: the conversation in FILE (a list of messages, or {"messages": [...], "tools": [...]}) as
// the prompt text the model's chat template makes of it, or its ids.
int render_chat_file(const Flags& flags, const Tokenizer& tokenizer) {
  const nlohmann::ordered_json doc = parse_ordered_json(read_regular_file(flags.chat), flags.chat);
  nlohmann::ordered_json messages = doc, tools = nullptr;
  if (doc.is_object()) {
    if (!doc.contains("messages")) throw FormatError(cat(flags.chat, ": expected a list of messages or an object with \"messages\""));
    messages = doc["messages"];
    if (doc.contains("tools")) tools = doc["tools"];
  }
  if (!messages.is_array()) throw FormatError(cat(flags.chat, ": \"messages\" must be a list"));
  const ChatFormatter formatter = ChatFormatter::for_tokenizer(flags.tokenizer);
  std::string text;
  try {
    text = formatter.render(messages, flags.add_generation_prompt, tools);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(cat(flags.chat, ": ", e.what()));
  }
  if (!flags.ids) {
    std::cout << text;
    return 0;
  }
  const std::vector<TokenId> ids = tokenizer.encode(text);
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << '\n';
  return 0;
}

int run(const Flags& flags) {
  tools::apply_log_level_from_env();
  if (!flags.log_level.empty()) log::set_level(log::parse_level(flags.log_level));
  const Tokenizer tokenizer = Tokenizer::from_file(flags.tokenizer);
  if (!flags.chat.empty()) return render_chat_file(flags, tokenizer);
  // Interactive use wants each answer at once; a pipe is faster with buffered output.
  const bool interactive = isatty(STDIN_FILENO) != 0;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (flags.decode) {
      const std::vector<TokenId> ids = parse_ids(line, line_number);
      std::string text;
      try {
        text = tokenizer.decode(ids, flags.skip_special);
      } catch (const InvalidArgument& e) {
        throw InvalidArgument(cat("stdin:", line_number, ": ", e.what()));
      }
      if (flags.json) std::cout << nlohmann::json{{"ids", ids}, {"text", to_valid_utf8(text)}}.dump() << '\n';
      else std::cout << text << '\n';
    } else {
      const std::vector<TokenId> ids = tokenizer.encode(line, !flags.plain, flags.add_special);
      if (flags.json) {
        std::cout << nlohmann::json{{"text", to_valid_utf8(line)}, {"ids", ids}}.dump() << '\n';
      } else {
        for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
        std::cout << '\n';
      }
    }
    if (interactive) std::cout.flush();
  }
  std::cout.flush();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return chronos::tools::run_tool("chronos-tokenize", [&] {
    Flags flags;
    CLI::App app{"chronos-tokenize: encode stdin lines to token ids, or decode ids back to text"};
    app.add_option("--tokenizer", flags.tokenizer, "tokenizer.json, or a folder holding one")->required();
    CLI::Option* decode = app.add_flag("--decode", flags.decode, "Read ids (one sequence per line) and print the text");
    app.add_flag("--json", flags.json, "Print one JSON object per line: {\"text\", \"ids\"}");
    app.add_flag("--skip-special", flags.skip_special, "With --decode: leave special tokens out")->needs(decode);
    app.add_flag("--plain", flags.plain, "Encode added tokens in the text as plain text (no <|im_start|> ids)")->excludes(decode);
    app.add_flag("--add-special", flags.add_special, "Add the tokenizer's post-processor tokens (e.g. Llama's <s>), as HF does by default")
        ->excludes(decode);
    CLI::Option* chat = app.add_option("--chat", flags.chat,
                                       "Render this JSON list of messages with the chat template of the tokenizer_config.json beside "
                                       "the tokenizer (the built-in template without one) and print the text")
                            ->excludes(decode);
    app.add_flag("--add-generation-prompt", flags.add_generation_prompt, "With --chat: end with the assistant's turn opening")->needs(chat);
    app.add_flag("--ids", flags.ids, "With --chat: print the rendered text's ids instead of the text")->needs(chat);
    app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error or off (default: CHRONOS_LOG_LEVEL or info)");
    if (auto code = chronos::tools::parse_command_line(app, argc, argv, "chronos-tokenize")) return *code;
    return run(flags);
  });
}
