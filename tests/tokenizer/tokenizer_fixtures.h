// Helpers for the tokenizer tests: MiniMind's tokenizer (tests/data/minimind; a test reports a skip if it is missing),
// the HF reference fixture, and a small hand-made tokenizer.json that needs no outside file.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "chronos/io/json_file.h"
#include "chronos/tokenizer/byte_level.h"
#include "chronos/tokenizer/tokenizer.h"

namespace chronos::testing {

inline std::string minimind_dir() { return CHRONOS_SOURCE_DIR "/tests/data/minimind"; }
inline bool have_minimind() { return std::filesystem::is_regular_file(minimind_dir() + "/tokenizer.json"); }

#define CHRONOS_REQUIRE_MINIMIND()                                                        \
  do {                                                                                    \
    if (!::chronos::testing::have_minimind())                                             \
      GTEST_SKIP() << "MiniMind tokenizer not found at " << ::chronos::testing::minimind_dir(); \
  } while (0)

inline const Tokenizer& minimind() {
  static const Tokenizer tokenizer = Tokenizer::from_file(minimind_dir() + "/tokenizer.json");
  return tokenizer;
}

inline const nlohmann::json& hf_reference() {
  static const nlohmann::json doc = read_json_file(CHRONOS_SOURCE_DIR "/tests/data/tokenizer/hf_reference.json");
  return doc;
}

// A tokenizer.json with the 256 byte symbols (ids 0..255 in byte order), the merges
// "Ġ t" -> "Ġt", "h e" -> "he", "Ġt he" -> "Ġthe", and two added tokens: <s> (id 261, special)
// and <x> (id 262, not special). The added tokens are in the vocabulary too, at those ids, as HF
// assigns an added token its vocabulary id (ids 259 and 260 stay unused).
inline nlohmann::json small_tokenizer_json() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[bytes_to_symbols(std::string(1, static_cast<char>(b)))] = b;
  vocab["Ġt"] = 256;
  vocab["he"] = 257;
  vocab["Ġthe"] = 258;
  vocab["<s>"] = 261;
  vocab["<x>"] = 262;
  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens",
       {{{"id", 261}, {"content", "<s>"}, {"single_word", false}, {"lstrip", false}, {"rstrip", false}, {"normalized", false}, {"special", true}},
        {{"id", 262}, {"content", "<x>"}, {"single_word", false}, {"lstrip", false}, {"rstrip", false}, {"normalized", false}, {"special", false}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", nlohmann::json::array({nlohmann::json::array({"Ġ", "t"}), nlohmann::json::array({"h", "e"}),
                                          nlohmann::json::array({"Ġt", "he"})})}}},
  };
}

}  // namespace chronos::testing
