#include "chronos/tokenizer/byte_level.h"

#include <array>

#include "tokenizer/unicode.h"

namespace chronos {
namespace {

using tokenizer_detail::append_utf8;
using tokenizer_detail::utf8_step;

// The GPT-2 mapping: printable Latin-1 bytes keep their code point; the other 68 bytes (controls,
// space, DEL, NBSP, soft hyphen) get 256, 257, ... in byte order, so every stand-in is printable.
struct Alphabet {
  std::array<char32_t, 256> symbol{};
  std::array<int16_t, 324> byte_of{};  // stand-ins are all below 256 + 68

  Alphabet() {
    byte_of.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      symbol[b] = printable ? char32_t(b) : next++;
      byte_of[symbol[b]] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet instance;
  return instance;
}

}  // namespace

char32_t byte_to_symbol(uint8_t byte) { return alphabet().symbol[byte]; }

std::string bytes_to_symbols(std::string_view bytes) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) append_utf8(out, a.symbol[b]);
  return out;
}

bool symbols_to_bytes(std::string_view symbols, std::string& out) {
  const Alphabet& a = alphabet();
  const auto* p = reinterpret_cast<const unsigned char*>(symbols.data());
  const size_t start = out.size();
  for (size_t i = 0; i < symbols.size();) {
    char32_t cp;
    bool ok;
    i += utf8_step(p + i, symbols.size() - i, cp, ok);
    if (!ok || cp >= a.byte_of.size() || a.byte_of[cp] < 0) {
      out.resize(start);
      return false;
    }
    out.push_back(static_cast<char>(a.byte_of[cp]));
  }
  return true;
}

std::string byte_level_decode_token(std::string_view token) {
  std::string bytes;
  if (symbols_to_bytes(token, bytes)) return bytes;
  return std::string(token);
}

}  // namespace chronos
