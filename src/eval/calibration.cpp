#include "chronos/eval/calibration.h"

#include <algorithm>

#include "chronos/core/error.h"
#include "chronos/train/data.h"
#include "chronos/train/jsonl.h"

namespace chronos {

std::vector<std::vector<int64_t>> read_calibration_sequences(const std::string& path, const Tokenizer& tokenizer, const ModelConfig& config,
                                                             int64_t seq_len, int64_t max_tokens) {
  const JsonlFile file(path);
  if (file.size() == 0) throw FormatError(cat(path, ": no calibration records (the file is empty)"));
  const ExampleEncoder encoder(tokenizer, EncoderOptions{std::max<int64_t>(max_tokens, 2), static_cast<TokenId>(config.bos_token_id),
                                                         static_cast<TokenId>(config.eos_token_id)});
  std::vector<std::vector<int64_t>> sequences;
  int64_t tokens = 0;
  for (size_t r = 0; r < file.size() && tokens < max_tokens; ++r) {
    const nlohmann::json record = file.parse(r);
    const bool chat = record.is_object() && (record.contains("conversations") || record.contains("messages"));
    const std::vector<int64_t> ids = chat ? encoder.sft(record, file.where(r)).ids : encoder.pretrain_tokens(record, file.where(r));
    for (size_t at = 0; at < ids.size() && tokens < max_tokens;) {
      const size_t n = static_cast<size_t>(std::min({seq_len, max_tokens - tokens, static_cast<int64_t>(ids.size() - at)}));
      sequences.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(at), ids.begin() + static_cast<std::ptrdiff_t>(at + n));
      at += n;
      tokens += static_cast<int64_t>(n);
    }
  }
  if (tokens == 0) throw FormatError(cat(path, ": the calibration records hold no tokens"));
  return sequences;
}

}  // namespace chronos
