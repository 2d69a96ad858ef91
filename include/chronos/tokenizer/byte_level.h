// The GPT-2 byte-level alphabet: each of the 256 byte values has a printable stand-in character, so a
// BPE vocabulary of strings can hold any byte sequence. tokenizer.json stores tokens in this form
// (a space is "Ġ", a newline "Ċ"); Chronos works on raw bytes inside and converts at the file boundary.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace chronos {

// The stand-in character of a byte (bytes 33..126, 161..172 and 174..255 stand for themselves).
char32_t byte_to_symbol(uint8_t byte);

// UTF-8 text of the stand-ins of `bytes`: "a b" -> "aĠb".
std::string bytes_to_symbols(std::string_view bytes);

// Inverse of bytes_to_symbols: appends the bytes to `out` and returns true when every character of
// `symbols` is a stand-in; returns false (out unchanged) otherwise, or when `symbols` is not UTF-8.
bool symbols_to_bytes(std::string_view symbols, std::string& out);

// What HF's ByteLevel decoder makes of one token: the bytes its stand-ins denote, or the token's own
// UTF-8 when some character is not a stand-in (e.g. an added token with a space in it).
std::string byte_level_decode_token(std::string_view token);

}  // namespace chronos
