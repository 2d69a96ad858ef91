#include "tokenizer/decoder.h"

#include "chronos/tokenizer/byte_level.h"
#include "chronos/tokenizer/utf8.h"
#include "tokenizer/unicode.h"

namespace chronos::tokenizer_detail {
namespace {

// "<0xAB>": exactly six bytes, two hex digits of either case.
bool byte_token(const std::string& token, unsigned char& value) {
  if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return false;
  auto hex = [](char c) { return (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1; };
  const int hi = hex(token[3]), lo = hex(token[4]);
  if (hi < 0 || lo < 0) return false;
  value = static_cast<unsigned char>(hi * 16 + lo);
  return true;
}

std::vector<std::string> characters(const std::string& s) {
  std::vector<std::string> out;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    bool ok;
    const size_t n = utf8_step(p + i, s.size() - i, cp, ok);
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace

Decoder::Decoder(const nlohmann::json& section, const JsonReader& reader) {
  if (section.is_null()) return;
  json_ = type_first(section);
  add(section, reader, "decoder");
}

void Decoder::add(const nlohmann::json& section, const JsonReader& r, const std::string& where) {
  const std::string type = r.type_of(section, where);
  Step step;
  if (r.sequence(section, type, "decoders", where, [&](const nlohmann::json& item, const std::string& path) { add(item, r, path); })) return;
  if (type == "ByteLevel") {
    r.only_keys(section, {"type", "add_prefix_space", "trim_offsets", "use_regex"}, where);
    for (const char* key : {"add_prefix_space", "trim_offsets", "use_regex"}) r.flag(section, key, true, where);
  } else if (type == "Replace") {
    r.only_keys(section, {"type", "pattern", "content"}, where);
    step.kind = Step::Kind::replace;
    if (!section.contains("pattern")) r.fail(cat(where, ".pattern is missing"));
    step.pattern = Pattern::parse(section["pattern"], r, cat(where, ".pattern"));
    step.content = r.string(section, "content", where);
  } else if (type == "ByteFallback" || type == "Fuse") {
    r.only_keys(section, {"type"}, where);
    step.kind = type == "Fuse" ? Step::Kind::fuse : Step::Kind::byte_fallback;
  } else if (type == "Strip") {
    r.only_keys(section, {"type", "content", "start", "stop"}, where);
    step.kind = Step::Kind::strip;
    step.content = r.string(section, "content", where);
    if (characters(step.content).size() != 1) r.fail(cat(where, ".content must be one character"));
    step.start = static_cast<size_t>(r.integer(section, "start", 0, 1 << 20, where));
    step.stop = static_cast<size_t>(r.integer(section, "stop", 0, 1 << 20, where));
  } else if (type == "Metaspace") {
    r.only_keys(section, {"type", "replacement", "prepend_scheme", "split", "add_prefix_space", "str_rep"}, where);
    step.kind = Step::Kind::metaspace;
    step.content = r.string(section, "replacement", where);
    const std::string scheme = section.contains("prepend_scheme") ? r.string(section, "prepend_scheme", where) : "always";
    if (scheme != "always" && scheme != "first" && scheme != "never")
      r.fail(cat(where, ".prepend_scheme '", scheme, "' is not one of always, first, never"));
    step.prepend_never = scheme == "never";
  } else {
    r.fail(cat(where, ".type '", type, "' is not supported (Chronos implements ByteLevel, Replace, ByteFallback, Fuse, Strip, "
                                       "Metaspace and Sequence)"));
  }
  steps_.push_back(std::move(step));
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  if (steps_.empty()) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  for (const Step& step : steps_) {
    std::vector<std::string> next;
    switch (step.kind) {
      case Step::Kind::byte_level: {
        std::string bytes;
        for (const std::string& t : tokens) bytes += byte_level_decode_token(t);
        next.push_back(to_valid_utf8(bytes));
        break;
      }
      case Step::Kind::replace:
        for (const std::string& t : tokens) {
          std::vector<std::pair<size_t, size_t>> matches;
          step.pattern.find_all(t, matches);
          std::string out;
          size_t copied = 0;
          for (const auto& [start, end] : matches) {
            out.append(t, copied, start - copied);
            out += step.content;
            copied = end;
          }
          out.append(t, copied, std::string::npos);
          next.push_back(std::move(out));
        }
        break;
      case Step::Kind::byte_fallback: {
        std::string bytes;
        size_t count = 0;
        auto flush = [&] {
          if (count == 0) return;
          if (is_valid_utf8(bytes)) {
            next.push_back(bytes);
          } else {
            for (size_t k = 0; k < count; ++k) next.push_back("\xEF\xBF\xBD");
          }
          bytes.clear();
          count = 0;
        };
        for (const std::string& t : tokens) {
          unsigned char value;
          if (byte_token(t, value)) {
            bytes.push_back(static_cast<char>(value));
            ++count;
          } else {
            flush();
            next.push_back(t);
          }
        }
        flush();
        break;
      }
      case Step::Kind::fuse: {
        std::string all;
        for (const std::string& t : tokens) all += t;
        next.push_back(std::move(all));
        break;
      }
      case Step::Kind::strip:
        for (const std::string& t : tokens) {
          const std::vector<std::string> chars = characters(t);
          size_t start = 0, end = chars.size();
          while (start < chars.size() && start < step.start && chars[start] == step.content) ++start;
          size_t trailing = 0;
          while (trailing < step.stop && end > 0 && chars[end - 1] == step.content) {
            --end;
            ++trailing;
          }
          std::string out;
          for (size_t k = start; k < end; ++k) out += chars[k];  // crossing cuts (HF panics) give ""
          next.push_back(std::move(out));
        }
        break;
      case Step::Kind::metaspace:
        for (size_t i = 0; i < tokens.size(); ++i) {
          const bool drop = i == 0 && !step.prepend_never;
          std::string out;
          for (const std::string& c : characters(tokens[i])) out += c == step.content ? (drop ? "" : " ") : c;
          next.push_back(std::move(out));
        }
        break;
    }
    tokens = std::move(next);
  }
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

}  // namespace chronos::tokenizer_detail
