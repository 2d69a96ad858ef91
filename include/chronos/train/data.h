// Training examples from JSONL records, per stage (docs/cli.md): pretrain text packed into
// fixed-length sequences, SFT/distill conversations with assistant-only labels, DPO/ORPO chosen and
// rejected conversations, GRPO prompts; and batches with padding masks that also keep padding out of
// every router regulariser. Records stream from disk in a seeded order (JsonlFile), so files larger
// than RAM work and a run can resume at any record.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chronos/core/error.h"
#include "chronos/tokenizer/tokenizer.h"
#include "chronos/train/jsonl.h"

namespace chronos {

class ChatFormatter;

enum class DataFormat { pretrain, sft, preference, prompt };

// One training sequence before padding: ids and (unshifted) labels, -100 where nothing is learnt.
struct Example {
  std::vector<int64_t> ids;
  std::vector<int64_t> labels;
  bool has_targets() const;  // at least one label != -100 (after the model's shift)
};

struct PreferenceExample {
  Example chosen, rejected;
};

// A padded batch (right padding with `pad_id`).
struct Batch {
  at::Tensor input_ids;       // [B,S] long
  at::Tensor labels;          // [B,S] long, -100 on padding and unsupervised tokens
  at::Tensor attention_mask;  // [B,S] long, 1 = real token
  int64_t tokens() const;     // real tokens in the batch
};

Batch make_batch(const std::vector<Example>& examples, int64_t pad_id);

struct EncoderOptions {
  int64_t max_seq_len = 512;
  TokenId bos_id = 1;  // <|im_start|>
  TokenId eos_id = 2;  // <|im_end|>
  // The model's own chat template (a Hugging Face family's): conversations render with it and each
  // assistant answer is supervised where the template puts it. Null: the built-in Chronos template
  // and its <|im_start|>assistant markers. Must outlive the encoder.
  const ChatFormatter* chat_template = nullptr;
};

// Encodes records of one format with a tokenizer. Every method throws FormatError "FILE:LINE: ..."
// (via the `where` argument) for a record that does not have the format's fields.
class ExampleEncoder {
 public:
  ExampleEncoder(const Tokenizer& tokenizer, EncoderOptions options);

  // Pretrain: [bos] + ids + [eos] of the record's text (not truncated: packing cuts sequences).
  std::vector<int64_t> pretrain_tokens(const nlohmann::json& record, const std::string& where) const;
  // SFT / distill: the rendered conversation, truncated; labels cover each assistant answer from
  // after "<|im_start|>assistant\n" through the closing "<|im_end|>\n"; with the model's chat
  // template, the text the template adds for each assistant message (rendering the conversation up
  // to it with the generation prompt, then with it; a turn the template renders differently later,
  // as Qwen3 drops earlier reasoning, is left unsupervised).
  Example conversation(const nlohmann::json& messages, const std::string& where) const;
  Example sft(const nlohmann::json& record, const std::string& where) const;
  PreferenceExample preference(const nlohmann::json& record, const std::string& where) const;
  // GRPO: the first user message with the generation prompt; returns the ids and the user text.
  std::pair<std::vector<int64_t>, std::string> prompt(const nlohmann::json& record, const std::string& where) const;

  const EncoderOptions& options() const { return options_; }

 private:
  std::vector<int64_t> encode(const std::string& text) const;
  Example templated_conversation(const nlohmann::json& messages, const std::string& where) const;
  const Tokenizer& tokenizer_;
  EncoderOptions options_;
  std::vector<int64_t> assistant_marker_;  // ids of "<|im_start|>assistant\n"
  std::vector<int64_t> turn_end_;          // ids of "<|im_end|>\n"
};

// Where a stream stands: which epoch and how many records of that epoch's order were consumed.
struct DataCursor {
  int64_t epoch = 0;
  int64_t position = 0;
  int64_t bad_records = 0;  // records skipped with --skip-bad-lines
};

// A cursor as checkpoints store it ({"epoch", "position", "bad_records"}), and back; throws
// FormatError when a field is missing or not a non-negative integer.
nlohmann::json cursor_to_json(const DataCursor& cursor);
DataCursor cursor_from_json(const nlohmann::json& json);
// A stage's own count in its data state (0 when absent); FormatError when not a non-negative integer.
int64_t optional_state_count(const nlohmann::json& state, const char* key);

// A rank's part of the data in data-parallel training: of each epoch's seeded order (the same on
// every rank), the records at positions rank, rank + count, rank + 2*count, ... Every rank gets
// floor(records / count) of them, so the ranks walk their epochs in step; the few left over are a
// different few each epoch (the order is reshuffled).
struct DataShard {
  int64_t rank = 0, count = 1;
};

// A rank's data cursor saved by a run of `from_ranks` ranks, for a run of `to_ranks`: the position
// keeps its share of the epoch (records consumed are about the same fraction of each shard), a
// pretrain carry is dropped. The data order differs from an uninterrupted run (the caller warns).
nlohmann::json reshard_data_state(const nlohmann::json& state, int64_t from_ranks, int64_t to_ranks);

// Records of a JSONL file in a per-epoch seeded order, with bad-record handling.
class RecordStream {
 public:
  RecordStream(const std::string& path, uint64_t seed, bool shuffle, bool skip_bad_lines);

  // Reads only this rank's part of every epoch from now on (call it before the first record);
  // throws InvalidArgument when the file has fewer records than ranks.
  void set_shard(const DataShard& shard);

  // The next record as (json, "FILE:LINE"); cycles into the next epoch at the end. A line that is
  // not valid JSON (or that `accept` rejects by throwing FormatError) throws, or is counted and skipped
  // with skip_bad_lines. Throws FormatError when a whole epoch yields no usable record.
  template <typename Fn>
  auto next(Fn&& accept) -> decltype(accept(nlohmann::json(), std::string()));

  const DataCursor& cursor() const { return cursor_; }
  void seek(const DataCursor& cursor);
  size_t records() const { return file_.size(); }
  // Records per epoch of this stream's shard (all of them without one).
  size_t records_per_epoch() const { return file_.size() / static_cast<size_t>(shard_.count); }
  const std::string& path() const { return file_.path(); }

 private:
  void start_epoch();
  JsonlFile file_;
  uint64_t seed_;
  bool shuffle_, skip_bad_;
  std::vector<size_t> order_;
  DataShard shard_;
  DataCursor cursor_;
  int64_t failures_in_a_row_ = 0;
};

// The next `batch_size` SFT-format examples that keep at least one supervised token; records that
// truncation left without one are skipped (B9) and counted in `dropped`. Throws FormatError when a
// whole pass over the file yields none.
std::vector<Example> next_supervised_batch(RecordStream& records, const ExampleEncoder& encoder, int64_t batch_size,
                                           int64_t& dropped);

// Pretrain sequences: documents packed back to back and cut into max_seq_len tokens.
class PackedTextStream {
 public:
  PackedTextStream(RecordStream& records, const ExampleEncoder& encoder);
  Example next();
  // Tokens carried over from a cut document (kept in checkpoints so a resume continues exactly).
  const std::vector<int64_t>& carry() const { return carry_; }
  void set_carry(std::vector<int64_t> carry) { carry_ = std::move(carry); }

 private:
  RecordStream& records_;
  const ExampleEncoder& encoder_;
  std::vector<int64_t> carry_;
};

// ---- implementation of the template ----
template <typename Fn>
auto RecordStream::next(Fn&& accept) -> decltype(accept(nlohmann::json(), std::string())) {
  while (true) {
    if (cursor_.position >= static_cast<int64_t>(order_.size())) {
      ++cursor_.epoch;
      cursor_.position = 0;
      start_epoch();
    }
    const size_t record = order_[static_cast<size_t>(cursor_.position++)];
    try {
      auto result = accept(file_.parse(record), file_.where(record));
      failures_in_a_row_ = 0;
      return result;
    } catch (const FormatError&) {
      if (!skip_bad_) throw;
      ++cursor_.bad_records;
      if (++failures_in_a_row_ >= static_cast<int64_t>(records_per_epoch()))
        throw FormatError(cat(file_.path(), ": no usable record (", file_.size(), " lines, every one skipped)"));
    }
  }
}

}  // namespace chronos
