// The calibration text an expert cache's co-activation clustering is computed from (chronos-pack,
// chronos-compare): token sequences read from JSONL.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chronos/model/config.h"
#include "chronos/tokenizer/tokenizer.h"

namespace chronos {

// Pretrain records {"text": ...} as [bos] text [eos], chat records {"conversations"/"messages": [...]}
// rendered with the chat template; each cut into pieces of at most seq_len tokens, in file order,
// until max_tokens. Throws IoError for a missing file, FormatError "FILE:LINE: ..." for a bad record,
// an empty file or records that hold no tokens.
std::vector<std::vector<int64_t>> read_calibration_sequences(const std::string& path, const Tokenizer& tokenizer, const ModelConfig& config,
                                                             int64_t seq_len, int64_t max_tokens);

}  // namespace chronos
