#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include "tokenizer/unicode.h"

namespace chronos::tokenizer_detail {

bool is_unicode_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

Normalizer::Normalizer(const nlohmann::json& section, const JsonReader& reader) {
  if (section.is_null()) return;
  json_ = type_first(section);
  add(section, reader, "normalizer");
}

void Normalizer::add(const nlohmann::json& section, const JsonReader& r, const std::string& where) {
  const std::string type = r.type_of(section, where);
  Step step;
  if (r.sequence(section, type, "normalizers", where, [&](const nlohmann::json& item, const std::string& path) { add(item, r, path); })) return;
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    r.only_keys(section, {"type"}, where);
    step.form = type == "NFC" ? NormalForm::nfc : type == "NFD" ? NormalForm::nfd : type == "NFKC" ? NormalForm::nfkc : NormalForm::nfkd;
  } else if (type == "Lowercase") {
    r.only_keys(section, {"type"}, where);
    step.kind = Step::Kind::lowercase;
  } else if (type == "Strip") {
    r.only_keys(section, {"type", "strip_left", "strip_right"}, where);
    step.kind = Step::Kind::strip;
    step.left = r.required_flag(section, "strip_left", where);
    step.right = r.required_flag(section, "strip_right", where);
  } else if (type == "Replace") {
    r.only_keys(section, {"type", "pattern", "content"}, where);
    step.kind = Step::Kind::replace;
    if (!section.contains("pattern")) r.fail(cat(where, ".pattern is missing"));
    step.pattern = Pattern::parse(section["pattern"], r, cat(where, ".pattern"));
    step.content = r.string(section, "content", where);
  } else if (type == "Prepend") {
    r.only_keys(section, {"type", "prepend"}, where);
    step.kind = Step::Kind::prepend;
    step.content = r.string(section, "prepend", where);
  } else {
    r.fail(cat(where, ".type '", type, "' is not supported (Chronos implements NFC, NFD, NFKC, NFKD, Lowercase, Strip, Replace, Prepend "
                                       "and Sequence)"));
  }
  steps_.push_back(std::move(step));
}

void Normalizer::apply(NormalizedText& text) const {
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Step::Kind::normal_form: {
        std::vector<CharChange> changes;
        if (normalize(text.text(), step.form, changes)) text.transform(changes);
        break;
      }
      case Step::Kind::lowercase: {
        // Rust's char::to_lowercase, one character at a time: the simple mapping, except U+0130,
        // whose lower case is two characters (both aligned with it).
        const std::string& s = text.text();
        const auto* p = reinterpret_cast<const unsigned char*>(s.data());
        std::vector<CharChange> changes;
        bool changed = false;
        for (size_t i = 0; i < s.size();) {
          char32_t cp;
          bool ok;
          const size_t n = utf8_step(p + i, s.size() - i, cp, ok);
          if (!ok) {
            changes.push_back({kRawByte + p[i], 0});
          } else if (cp == 0x130) {
            changes.push_back({U'i', 0});
            changes.push_back({0x307, 1});
            changed = true;
          } else {
            const auto lower = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
            changed = changed || lower != cp;
            changes.push_back({lower, 0});
          }
          i += n;
        }
        if (changed) text.transform(changes);
        break;
      }
      case Step::Kind::strip: {
        const std::string& s = text.text();
        const auto* p = reinterpret_cast<const unsigned char*>(s.data());
        size_t start = 0, end = s.size();
        if (step.left)
          while (start < end) {
            char32_t cp;
            bool ok;
            const size_t n = utf8_step(p + start, end - start, cp, ok);
            if (!ok || !is_unicode_space(cp)) break;
            start += n;
          }
        if (step.right)
          while (end > start) {
            size_t b = end - 1;
            while (b > start && (p[b] & 0xC0) == 0x80) --b;
            char32_t cp;
            bool ok;
            const size_t n = utf8_step(p + b, end - b, cp, ok);
            if (!ok || b + n != end || !is_unicode_space(cp)) break;
            end = b;
          }
        text.keep(start, end);
        break;
      }
      case Step::Kind::replace: {
        std::vector<std::pair<size_t, size_t>> matches;
        step.pattern.find_all(text.text(), matches);
        text.replace(matches, step.content);
        break;
      }
      case Step::Kind::prepend:
        text.prepend(step.content);
        break;
    }
  }
}

}  // namespace chronos::tokenizer_detail
