#include "tokenizer/post_processor.h"

#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace chronos::tokenizer_detail {
namespace {

// Leading and trailing characters of a token that are 'Ġ' (U+0120) or white space.
std::pair<size_t, size_t> space_runs(const std::string& token) {
  std::vector<char32_t> chars;
  const auto* p = reinterpret_cast<const unsigned char*>(token.data());
  for (size_t i = 0; i < token.size();) {
    char32_t cp;
    bool ok;
    i += utf8_step(p + i, token.size() - i, cp, ok);
    chars.push_back(ok ? cp : 0xFFFD);
  }
  auto space = [](char32_t c) { return c == 0x120 || is_unicode_space(c); };
  size_t leading = 0, trailing = 0;
  while (leading < chars.size() && space(chars[leading])) ++leading;
  while (trailing < chars.size() && space(chars[chars.size() - 1 - trailing])) ++trailing;
  return {leading, trailing};
}

}  // namespace

void PostProcessor::add(const nlohmann::json& section, const JsonReader& r, const std::string& where, const IdLookup& id_of) {
  const std::string type = r.type_of(section, where);
  Step step;
  if (r.sequence(section, type, "processors", where, [&](const nlohmann::json& item, const std::string& path) { add(item, r, path, id_of); })) return;
  if (type == "ByteLevel") {
    r.only_keys(section, {"type", "add_prefix_space", "trim_offsets", "use_regex"}, where);
    step.kind = Step::Kind::byte_level;
    step.trim_offsets = r.flag(section, "trim_offsets", true, where);
    step.add_prefix_space = r.flag(section, "add_prefix_space", true, where);
    r.flag(section, "use_regex", true, where);
  } else if (type == "TemplateProcessing") {
    r.only_keys(section, {"type", "single", "pair", "special_tokens"}, where);
    step.kind = Step::Kind::template_single;
    r.array(section, "pair", where);  // pairs are never encoded here; the key must still be well-formed
    const auto specials = section.find("special_tokens");
    if (specials == section.end() || !specials->is_object()) r.fail(cat(where, ".special_tokens must be an object"));
    const nlohmann::json& single = r.array(section, "single", where);
    bool has_sequence = false;
    for (size_t i = 0; i < single.size(); ++i) {
      const std::string at = cat(where, ".single[", i, "]");
      const nlohmann::json& piece = single[i];
      if (piece.is_object() && piece.contains("Sequence")) {
        const nlohmann::json& seq = piece["Sequence"];
        if (!seq.is_object() || seq.value("id", "") != "A") r.fail(cat(at, ".Sequence must be {\"id\": \"A\", ...}"));
        step.pieces.emplace_back();
        has_sequence = true;
      } else if (piece.is_object() && piece.contains("SpecialToken")) {
        const nlohmann::json& special = piece["SpecialToken"];
        const std::string key = special.is_object() && special.contains("id") && special["id"].is_string() ? special["id"].get<std::string>() : "";
        const auto entry = specials->find(key);
        if (entry == specials->end()) r.fail(cat(at, ".SpecialToken '", key, "' is not in ", where, ".special_tokens"));
        const std::string entry_at = cat(where, ".special_tokens['", key, "']");
        const nlohmann::json& ids = r.array(*entry, "ids", entry_at);
        const nlohmann::json& tokens = r.array(*entry, "tokens", entry_at);
        if (ids.empty() || ids.size() != tokens.size()) r.fail(cat(entry_at, " needs as many ids as tokens, at least one"));
        std::vector<int32_t> piece_ids;
        for (size_t k = 0; k < ids.size(); ++k) {
          if (!ids[k].is_number_integer() || !tokens[k].is_string()) r.fail(cat(entry_at, ": ids must be integers and tokens strings"));
          const int64_t id = ids[k].get<int64_t>();
          if (id_of(tokens[k].get<std::string>()) != id)
            r.fail(cat(entry_at, ": token '", tokens[k].get<std::string>(), "' does not have id ", id, " in this vocabulary"));
          piece_ids.push_back(static_cast<int32_t>(id));
        }
        step.pieces.push_back(std::move(piece_ids));
      } else {
        r.fail(cat(at, " must be {\"Sequence\": ...} or {\"SpecialToken\": ...}"));
      }
    }
    if (!has_sequence) r.fail(cat(where, ".single has no {\"Sequence\": {\"id\": \"A\"}}"));
  } else {
    r.fail(cat(where, ".type '", type, "' is not supported (Chronos implements TemplateProcessing, ByteLevel and Sequence)"));
  }
  steps_.push_back(std::move(step));
}

void PostProcessor::trim(std::vector<Token>& tokens, bool add_prefix_space, const std::function<std::string(size_t)>& token_string) const {
  size_t index = 0;  // position within the sequence, not counting template tokens
  for (size_t i = 0; i < tokens.size(); ++i) {
    Token& t = tokens[i];
    if (t.special_added) continue;
    auto [leading, trailing] = space_runs(token_string(i));
    auto& [start, end] = t.offsets;
    if (leading > 0) {
      if ((index == 0 || start == 0) && add_prefix_space && leading == 1) leading = 0;
      start = std::min<uint32_t>(start + static_cast<uint32_t>(leading), end);
    }
    if (trailing > 0 && end >= trailing) end = std::max<uint32_t>(end - static_cast<uint32_t>(trailing), start);
    ++index;
  }
}

}  // namespace chronos::tokenizer_detail
